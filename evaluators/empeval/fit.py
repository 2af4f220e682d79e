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

from collections.abc import Sequence

import numpy as np
import torch

MAX_TOKENS = 256


class PostFit:
    def __init__(self, backbone: str | None = None, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        from empeval.config import default_backbone

        path = backbone or default_backbone()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t or "" for t in texts]
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


def regate(artifact, n_calibration: int = 300, data_dir=None) -> dict:
    """Give an existing artifact the cosine gate: calibrate on its training split, retune the
    decision offsets on dev, rescore test (metrics.json, with the previous headline kept under
    `before_cosine_gate`) and rewrite the artifact atomically. Returns the new metrics."""
    import json
    import shutil
    from pathlib import Path

    from therapy_align.files import atomic_write_json

    from empeval.artifact import CONFIG_FILE, METRICS_FILE, SPLIT_FILE, publish_dir, read_artifact
    from empeval.epitome_data import load_epitome
    from empeval.evaluator import Evaluator
    from empeval.mechanisms import MECHANISMS
    from empeval.probe import shuffle_drop, shuffled_seekers
    from empeval.training import split_metrics_of, tune_offsets
    from empeval.windows import encode_views

    artifact = Path(artifact)
    model, tokenizer, settings = read_artifact(artifact)
    split = json.loads((artifact / SPLIT_FILE).read_text())
    frame = load_epitome(data_dir)
    rows = {k: np.flatnonzero(frame["rp_id"].isin(set(v)).to_numpy()) for k, v in split.items()}
    seed = int(settings["train_config"]["seed"])
    post_fit = PostFit()
    calibration = calibrate_on_training_pairs(post_fit, frame, rows["train"], seed, n_calibration)
    new = {**settings, "fit_gate": "cosine", "fit_calibration": calibration}
    evaluator = Evaluator(model, tokenizer, new)
    evaluator._post_fit = post_fit
    labels = frame[list(MECHANISMS)].to_numpy()

    def texts(name):
        r = rows[name]
        return frame["seeker_post"].iloc[r].tolist(), frame["response_post"].iloc[r].tolist(), labels[r]

    dev_s, dev_r, dev_y = texts("dev")
    views, owners = encode_views(tokenizer, dev_s, dev_r, evaluator.max_length)
    from empeval.evaluator import gate_by_fit

    raw, _ = evaluator.raw_view_outputs(views, 64)
    fit = evaluator.pair_fit_logits(dev_s, dev_r)[np.asarray(owners)]
    offsets = tune_offsets(gate_by_fit(raw, fit, True), owners, dev_y)
    new["decision_offsets"] = dict(zip(MECHANISMS, offsets))
    evaluator = Evaluator(model, tokenizer, new)
    evaluator._post_fit = post_fit
    test_s, test_r, test_y = texts("test")
    zero, tuned = np.zeros((3, 3)), np.asarray(offsets)
    test = evaluator.score_variants(test_s, test_r, {"whole_reply_cosine_gate_no_offsets": (True, zero),
                                                     "whole_reply_cosine_gate_dev_offsets": (True, tuned),
                                                     "whole_reply_no_gate_dev_offsets": (False, tuned)})
    sp_ids = frame["sp_id"].iloc[rows["test"]].tolist()
    shuffled = evaluator.score_variants(shuffled_seekers(test_s, sp_ids, seed), test_r,
                                        {"gated": (True, tuned), "ungated": (False, tuned)})
    metrics = json.loads((artifact / METRICS_FILE).read_text())
    before = {m: metrics[m] for m in MECHANISMS}
    variants = {k: split_metrics_of(v, test_y) for k, v in test.items()}
    headline = variants["whole_reply_cosine_gate_dev_offsets"]
    metrics.update({
        **headline,
        "macro_f1_mean": float(np.mean([headline[m]["macro_f1"] for m in MECHANISMS])),
        "decision_offsets": new["decision_offsets"],
        "before_cosine_gate": {"headline": before, "seeker_shuffle": metrics.get("seeker_shuffle"),
                               "decision_offsets": settings.get("decision_offsets")},
        "seeker_shuffle": shuffle_drop(test["whole_reply_cosine_gate_dev_offsets"], shuffled["gated"]),
        "seeker_shuffle_without_fit_gate": shuffle_drop(test["whole_reply_no_gate_dev_offsets"], shuffled["ungated"]),
        "fit_calibration": calibration,
    })
    metrics.setdefault("variants", {}).update(variants)
    tmp = artifact.with_name(f".{artifact.name}.regate")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(artifact, tmp)
    atomic_write_json(tmp / CONFIG_FILE, new)
    atomic_write_json(tmp / METRICS_FILE, metrics)
    publish_dir(tmp, artifact)
    return metrics


if __name__ == "__main__":
    import json
    import os
    import sys

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for path in sys.argv[1:]:
        result = regate(path)
        print(path, json.dumps({k: result[k] for k in ("seeker_shuffle", "fit_calibration", "decision_offsets")}))
        print({m: round(result[m]["macro_f1"], 4) for m in ("emotional_reactions", "interpretations", "explorations")})
