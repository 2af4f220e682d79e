"""Does the reply answer THIS post? A calibrated cosine between the seeker post and the reply.

all-MiniLM-L6-v2 (the offline backbone, used here unchanged as the sentence encoder it was
trained to be, on pairs that include Reddit posts and their replies) embeds the post and the
whole reply (mean-pooled, normalised, up to 256 tokens each); a logistic regression on their
cosine, fitted on training pairs against mismatched training pairs (a response after another
training seeker's post), turns it into P(fits). `Evaluator.score` gates a specific (level-2)
interpretation or exploration with it (see `empeval.evaluator.gate_by_fit`).

Why not the cross-encoder's own fits-the-post head: trained one epoch with the lower layers
frozen (the fast recipe), it learned nothing (P(fits) 0.647 on real and 0.642 on shuffled test
pairs, measured); the sentence encoder separates them without any training.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

MAX_TOKENS = 256


class PostFit:
    """The sentence encoder with a memo of the texts it has embedded (by text): a report scores the
    same seeker posts in every cell, and training scores the test responses again after shuffled
    posts, so most embeddings are asked for more than once."""

    MEMO_SIZE = 20_000  # texts (~1.5 kB each at 384 floats): bounded, oldest dropped first

    def __init__(self, backbone: str | None = None, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        from empeval.config import default_backbone

        path = backbone or default_backbone()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size
        self._memo: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t or "" for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        known = {t: self._memo[t] for t in texts if t in self._memo}
        known.update(zip(missing, self._encode(missing)))
        width = self.model.config.hidden_size
        out = np.stack([known[t] for t in texts]) if texts else np.zeros((0, width), dtype=np.float32)
        for text in missing:  # remembered after use: a call longer than the memo still gets every vector
            while len(self._memo) >= self.MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))
            self._memo[text] = known[text]
        return out

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in chunk], truncation=True, max_length=MAX_TOKENS,
                                   padding="longest", return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

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
    (the probe's `copy_seeker` scored 990 against 710 for the real replies). Restating is not
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

