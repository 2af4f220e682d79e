"""Side by side: the learned head on all-MiniLM-L6-v2 against all-mpnet-base-v2 (and variants of the
recipe), on the same training rows, the same dev split and the same held-out sets.

The rules do not depend on the head, so their verdicts and the head's gates are computed once per
text and cached; each variant then only trains a head (seconds) and re-decides. The decision is the
deployed one (``detector._graded``): rules, or p >= threshold on a plain message, or p >= the floor
on a figurative / joking / fictional one; never the head on a negated, resolved, medical or literal one.

    .venv/bin/python -m research.safety.compare_encoders [--variants minilm,mpnet] [--cache DIR]

Prints one JSON line per variant; nothing here is trained on a held-out set. The figures in
docs/safety.md ("Encoders, training data and threshold rules compared") came from
``--variants minilm,minilm-cap,mpnet,mpnet-cap`` (690 written rows) and ``--variants minilm,mpnet``
on the 544 rows before them; "-cap" is the per-source FPR cap.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from therapy_align.safety.config import SafetyTrainConfig
from therapy_align.safety.detector import detect_crisis_batch, head_gates, normalize
from therapy_align.safety.evaluate import bootstrap_interval, evaluation_sets
from therapy_align.safety.learned import choose_threshold, fit_on_dev_split, head_probabilities, training_rows

DEFAULT = SafetyTrainConfig()  # the variants set the encoder themselves


def rule_view(texts: list[str], cache: Path) -> dict[str, tuple[bool, str]]:
    """(rules flag, head gate) per text, cached by text."""
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    for start in range(0, len(missing), 256):
        chunk = missing[start:start + 256]
        verdicts = detect_crisis_batch(chunk)
        for text, verdict, gate in zip(chunk, verdicts, head_gates(chunk), strict=True):
            known[text] = [bool(verdict.crisis), gate]
        cache.write_text(json.dumps(known))
    return {t: tuple(known[t]) for t in texts}


def embeddings(encoder: str, texts: list[str], cache: Path) -> np.ndarray:
    from therapy_align.safety.learned import cached_embeddings

    return cached_embeddings(cache / f"{encoder}.npz", [normalize(t) for t in texts], encoder)


def decide(prob: np.ndarray, rules: np.ndarray, gates: np.ndarray, threshold: float, floor: float) -> np.ndarray:
    head = np.where(gates == "plain", prob >= threshold,
                    np.where(gates == "discounted", prob >= max(threshold, floor), False))
    return rules | head


def threshold_capped_per_source(probability, rule_flags, positive, sources, target_recall, max_added_fpr):
    """The per-source cap (``fpr_cap="per_source"``, now the training default) as the study ran it."""
    return choose_threshold(probability, rule_flags, positive, target_recall, max_added_fpr, sources)


def read_out(name: str, prob: np.ndarray, dev: list[int], rows, sets, score, cache: Path, per_source: bool = False,
             cfg: SafetyTrainConfig = DEFAULT) -> dict:
    """The threshold chosen on the dev split's crisis probabilities ``prob`` (the deployed decision,
    pooled or per-source cap), then recall and FPR with intervals on every held-out set, whose
    probabilities ``score(set_name)`` gives. T-SID test's FPR is on its ``none`` tweets."""
    texts = [r["text"] for r in rows]
    levels = np.array([r["level"] for r in rows])
    view = rule_view([texts[i] for i in dev], cache / "rules.json")
    rules = np.array([view[texts[i]][0] for i in dev])
    gates = np.array([view[texts[i]][1] for i in dev])
    gated = np.where(gates == "settled", -1.0,
                     np.where((gates == "discounted") & (prob < cfg.discounted_threshold_floor), -1.0, prob))
    positive = levels[dev] != 0
    if per_source:
        threshold = threshold_capped_per_source(gated, rules, positive, np.array([rows[i]["source"] for i in dev]),
                                                cfg.target_recall, cfg.max_added_fpr)
    else:
        threshold = choose_threshold(gated, rules, positive, cfg.target_recall, cfg.max_added_fpr)
    dev_flags = decide(prob, rules, gates, threshold, cfg.discounted_threshold_floor)
    out = {"variant": name, "threshold": round(float(threshold), 3),
           "dev_recall": round(float(dev_flags[positive].mean()), 3), "dev_fpr": round(float(dev_flags[~positive].mean()), 3)}
    for set_name, set_rows in sets.items():
        set_texts = [r["text"] for r in set_rows]
        v = rule_view(set_texts, cache / "rules.json")
        flags = decide(score(set_name), np.array([v[t][0] for t in set_texts]), np.array([v[t][1] for t in set_texts]),
                       threshold, cfg.discounted_threshold_floor)
        truth = np.array([r["crisis"] for r in set_rows])
        neg = flags[np.array([r["label"] == "none" for r in set_rows])] if set_name == "tsid_test" else flags[~truth]
        pos = flags[truth]
        out[set_name] = {"recall": round(float(pos.mean()), 3), "recall_ci": bootstrap_interval(pos.tolist()),
                         "fpr": round(float(neg.mean()), 3), "fpr_ci": bootstrap_interval(neg.tolist())}
    return out


def run_variant(name: str, encoder: str, cfg: SafetyTrainConfig, rows, sets, cache: Path, per_source=False) -> dict:
    feats = embeddings(encoder, [r["text"] for r in rows], cache)
    head, _, _, dev = fit_on_dev_split(feats, rows, cfg)

    def score(set_name: str) -> np.ndarray:
        return 1.0 - head_probabilities(head, embeddings(encoder, [r["text"] for r in sets[set_name]], cache))[:, 0]

    return read_out(name, 1.0 - head_probabilities(head, feats[dev])[:, 0], dev, rows, sets, score, cache, per_source, cfg)


VARIANTS = {
    "minilm": ("minilm", {}),
    "mpnet": ("mpnet", {}),
    "mpnet-h128": ("mpnet", {"hidden": 128}),
    "mpnet-m5": ("mpnet", {"members": 5}),
    "minilm-m5": ("minilm", {"members": 5}),
    "mpnet-w5": ("mpnet", {"written_weight": 5.0}),
    "mpnet-e60": ("mpnet", {"max_epochs": 60}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="minilm,mpnet")
    parser.add_argument("--cache", default="artifacts/research-safety")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = training_rows(DEFAULT)
    sets = evaluation_sets()
    for name in args.variants.split(","):
        encoder, overrides = VARIANTS[name.removesuffix("-cap")]
        started = time.time()
        result = run_variant(name, encoder, replace(DEFAULT, encoder=encoder, **overrides), rows, sets, cache,
                             per_source=name.endswith("-cap"))
        result["seconds"] = round(time.time() - started, 1)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
