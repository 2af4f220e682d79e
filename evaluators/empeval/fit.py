"""Does the reply answer THIS post? A calibrated cosine between the seeker post and the reply.

all-MiniLM-L6-v2 (the offline backbone, used here unchanged as the sentence encoder it was
trained to be, on pairs that include Reddit posts and their replies) embeds the post and the
whole reply (mean-pooled, normalised, up to 256 tokens each); a logistic regression on their
cosine, fitted on training pairs against mismatched training pairs (a response after another
training seeker's post), turns it into P(fits). `Evaluator.score` gates a specific (level-2)
interpretation or exploration with it (see `empeval.evaluator.gate_by_fit`).

Why not the cross-encoder's own fits-the-post head: trained one epoch with the lower layers
frozen (the fast recipe), it did not tell real from shuffled test pairs
(docs/research/evaluator-studies.md); the sentence encoder separates them without any training.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

MAX_TOKENS = 256


class PostFit:
    """The cosine between post and reply, from the process-wide sentence encoder
    (`therapy_align.sentence_embedding`), whose memo serves a text embedded once to every reader: a
    report scores the same seeker posts in every cell, training scores the test responses again
    after shuffled posts, and the report's specificity guard reads the same posts and replies."""

    def __init__(self, backbone: str | None = None):
        from therapy_align.sentence_embedding import SentenceEncoder

        from empeval.config import default_backbone

        self.encoder = SentenceEncoder.shared(backbone or default_backbone(), max_length=MAX_TOKENS)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def cosine(self, seekers: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return (self.embed(seekers) * self.embed(responses)).sum(-1).astype(np.float64)


def fit_logits(cosines: np.ndarray, calibration: dict) -> np.ndarray:
    return calibration["slope"] * np.asarray(cosines) + calibration["intercept"]


_WORD = re.compile(r"[a-z0-9']+")
COPY_NGRAM = 3


def copied_fraction(seekers: Sequence[str], responses: Sequence[str], n: int = COPY_NGRAM) -> np.ndarray:
    """Per pair, the share of the reply's word n-grams (lower-cased) that occur in the seeker's
    post: 0 for a reply in its own words, 1 for the post pasted back.

    Why the gate needs it: a reply that restates the post has a cosine near 1 with it, so the
    cosine alone calls it a perfect fit, and its first-person feelings read as interpretations
    (the probe's `copy_seeker` scored above the real replies without this guard). Restating is not
    interpreting: `Evaluator` multiplies P(fits) by (1 - this share). Replies shorter than n
    words have no n-gram and count as not copied."""
    out = np.zeros(len(responses), dtype=np.float64)
    for i, (seeker, response) in enumerate(zip(seekers, responses)):
        reply = _WORD.findall((response or "").lower())
        grams = [tuple(reply[k : k + n]) for k in range(len(reply) - n + 1)]
        if grams:
            post = _WORD.findall((seeker or "").lower())
            post_grams = {tuple(post[k : k + n]) for k in range(len(post) - n + 1)}
            out[i] = sum(g in post_grams for g in grams) / len(grams)
    return out


def calibrate(real: np.ndarray, mismatched: np.ndarray) -> dict:
    """Logistic regression P(fits | cosine), real pairs 1 and mismatched pairs 0, equal weight."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([real, mismatched])[:, None]
    y = np.concatenate([np.ones(len(real)), np.zeros(len(mismatched))])
    model = LogisticRegression(class_weight="balanced").fit(x, y)
    from sklearn.metrics import roc_auc_score

    return {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0]),
            "auc": float(roc_auc_score(y, x[:, 0])), "n_real": int(len(real)), "n_mismatched": int(len(mismatched))}


def calibrate_on_training_pairs(post_fit: PostFit, frame, train_rows: np.ndarray, seed: int, n: int = 300) -> dict:
    """Calibration from n real training pairs and n mismatched ones (fixed by the seed)."""
    from empeval.datamodule import mismatched_rows

    rng = np.random.default_rng((seed, 271))
    rows = np.sort(rng.choice(train_rows, size=min(n, len(train_rows)), replace=False))
    answers, seekers = mismatched_rows(frame["sp_id"].to_numpy(), train_rows, min(1.0, n / len(train_rows)), seed)
    s, r = frame["seeker_post"].tolist(), frame["response_post"].tolist()
    real = post_fit.cosine([s[i] for i in rows], [r[i] for i in rows])
    mismatched = post_fit.cosine([s[i] for i in seekers], [r[i] for i in answers])
    return calibrate(real, mismatched)

