"""How well the detector does: the project's own labelled set and the public T-SID tweets.

* ``data/crisis_eval.jsonl`` (in the package): messages written for this project, each with
  ``crisis`` (bool), ``category`` (crisis) and ``kind`` (what makes it tricky), and ``split``
  (``tune``: thresholds may be chosen on it; ``holdout``: reported only).
* T-SID (``../shared/data/crisis/t-sid.jsonl``): 959 tweets with weak, keyword-derived labels
  ``suicide_or_self_harm`` / ``depression`` / ``ptsd`` / ``none`` and a ``dev``/``test`` split.
  ``suicide_or_self_harm`` counts as crisis; recall is measured on it, and the flag rate on each
  other label is reported as that label's false-positive rate.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from therapy_align.safety.detector import DEFAULT_THRESHOLDS, Thresholds, detect_crisis_batch

TSID_FILE = "crisis/t-sid.jsonl"
TSID_CRISIS_LABEL = "suicide_or_self_harm"


def own_eval_set() -> list[dict[str, Any]]:
    text = resources.files("therapy_align.safety").joinpath("data/crisis_eval.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_tsid(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    from therapy_align.paths import resolve_data_dir

    path = Path(resolve_data_dir(data_dir)) / TSID_FILE
    from therapy_align.files import read_jsonl

    rows, _ = read_jsonl(path, fields={"id": str, "text": str, "label": str, "split": str})
    return rows


def rates(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    """Recall on the positives and false-positive rate on the negatives."""
    pos = [p for t, p in zip(truth, predicted, strict=True) if t]
    neg = [p for t, p in zip(truth, predicted, strict=True) if not t]
    return {"n_crisis": len(pos), "n_other": len(neg),
            "recall": sum(pos) / len(pos) if pos else float("nan"),
            "fpr": sum(neg) / len(neg) if neg else float("nan")}


def evaluate_own(thresholds: Thresholds = DEFAULT_THRESHOLDS, *, split: str | None = None,
                 verdicts=None) -> dict[str, Any]:
    """Recall / FPR on the project's set (``split`` = tune, holdout or None for all), per kind too,
    and the misclassified messages."""
    rows = [r for r in own_eval_set() if split is None or r["split"] == split]
    verdicts = verdicts or detect_crisis_batch([r["text"] for r in rows], thresholds=thresholds)
    predicted = [v.crisis for v in verdicts]
    result = rates([r["crisis"] for r in rows], predicted)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for row, flag in zip(rows, predicted, strict=True):
        by_kind[row["kind"]].append(flag)
    result["flag_rate_by_kind"] = {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())}
    result["errors"] = [{"id": r["id"], "text": r["text"], "crisis": r["crisis"], "reason": v.reason}
                        for r, v in zip(rows, verdicts, strict=True) if v.crisis != r["crisis"]]
    category_hits = [v.category == r["category"] for r, v in zip(rows, verdicts, strict=True) if r["crisis"] and v.crisis]
    result["category_accuracy"] = sum(category_hits) / len(category_hits) if category_hits else float("nan")
    return result


def evaluate_tsid(rows: Sequence[dict[str, Any]], thresholds: Thresholds = DEFAULT_THRESHOLDS, *, verdicts=None) -> dict[str, Any]:
    """Recall on ``suicide_or_self_harm`` and the flag rate (false-positive rate) on each other label."""
    verdicts = verdicts or detect_crisis_batch([r["text"] for r in rows], thresholds=thresholds)
    by_label: dict[str, list[bool]] = defaultdict(list)
    for row, verdict in zip(rows, verdicts, strict=True):
        by_label[row["label"]].append(verdict.crisis)
    out: dict[str, Any] = {"n": len(rows), "labels": dict(Counter(r["label"] for r in rows))}
    for label, flags in sorted(by_label.items()):
        key = "recall" if label == TSID_CRISIS_LABEL else "fpr"
        out[f"{label}_{key}"] = sum(flags) / len(flags)
    others = [f for label, flags in by_label.items() if label != TSID_CRISIS_LABEL for f in flags]
    out["fpr_all_other"] = sum(others) / len(others) if others else float("nan")
    return out


def tune(tsid_dev: Sequence[dict[str, Any]], *, max_own_fpr: float = 0.10, max_tsid_none_fpr: float = 0.10) -> tuple[Thresholds, list[dict]]:
    """Grid over the semantic margins on T-SID ``dev`` and the ``tune`` half of the own set.

    Objective: the highest (own recall + T-SID dev recall - own FPR - T-SID ``none`` FPR), subject to own-set FPR
    <= ``max_own_fpr`` and T-SID ``none`` FPR <= ``max_tsid_none_fpr``; ties go to the larger
    (more conservative about flagging) margins. Embeddings are computed once, then every grid
    point re-decides from them.
    """
    from therapy_align.safety import detector as D
    from therapy_align.safety import patterns as P
    from therapy_align.safety.semantic import message_bank

    own = [r for r in own_eval_set() if r["split"] == "tune"]
    texts = [r["text"] for r in own] + [r["text"] for r in tsid_dev]
    normalized = [D.normalize(t) for t in texts]
    hits = [D.find_hits(t, P.MESSAGE_RULES) for t in normalized]
    nearest = message_bank().nearest(normalized)
    truth_own = [r["crisis"] for r in own]
    truth_tsid = [r["label"] == TSID_CRISIS_LABEL for r in tsid_dev]
    none_mask = [r["label"] == "none" for r in tsid_dev]
    grid = []
    for no_hit, min_sim, weak, discounted in itertools.product(
        (0.04, 0.06, 0.08, 0.10, 0.12, 0.15), (0.45, 0.50, 0.55, 0.60), (-0.05, 0.0, 0.05), (0.06, 0.09, 0.12, 0.15, 0.2)
    ):
        th = dataclasses.replace(DEFAULT_THRESHOLDS, no_hit_margin=no_hit, no_hit_min_sim=min_sim,
                                 weak_hit_margin=weak, discounted_margin=discounted)
        flags = [D._decide(t, h, n, D.SEVERITY, weak_margin=weak, discounted_margin=discounted,
                           no_hit_margin=no_hit, no_hit_min_sim=min_sim, what="crisis")[0]
                 for t, h, n in zip(normalized, hits, nearest, strict=True)]
        own_r = rates(truth_own, flags[:len(own)])
        tsid_flags = flags[len(own):]
        tsid_r = rates(truth_tsid, tsid_flags)
        none_flags = [f for f, m in zip(tsid_flags, none_mask, strict=True) if m]
        none_fpr = sum(none_flags) / len(none_flags) if none_flags else 0.0
        grid.append({"thresholds": th, "own_recall": own_r["recall"], "own_fpr": own_r["fpr"],
                     "tsid_recall": tsid_r["recall"], "tsid_none_fpr": none_fpr, "tsid_fpr_all": tsid_r["fpr"]})
    feasible = [g for g in grid if g["own_fpr"] <= max_own_fpr and g["tsid_none_fpr"] <= max_tsid_none_fpr] or grid
    best = max(feasible, key=lambda g: (round(g["own_recall"] + g["tsid_recall"] - g["own_fpr"] - g["tsid_none_fpr"], 6),
                                        g["thresholds"].no_hit_margin + g["thresholds"].discounted_margin))
    return best["thresholds"], grid
