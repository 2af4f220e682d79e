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


# ---------------------------------------------------------------------- the learned detector's evaluation

HELD_OUT_SETS = ("own", "graded", "indirect", "probe")  # written for the project; never trained on


def held_out_rows(name: str) -> list[dict[str, Any]]:
    """A held-out set written for the project: ``own`` (crisis_eval.jsonl), ``graded`` (30 messages per
    risk level), ``indirect`` (everyday, indirect wording, in another style than the training set) or
    ``probe`` (20 crisis and 20 look-alike messages written after the rules and the detector were frozen)."""
    from therapy_align.safety.learned import written_rows

    file = {"own": "crisis_eval.jsonl", "graded": "crisis_graded.jsonl", "indirect": "crisis_indirect.jsonl",
            "probe": "crisis_probe.jsonl"}[name]
    return written_rows(file)


def bootstrap_interval(flags: Sequence[bool], *, draws: int = 1000, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of the mean of ``flags`` (None when empty)."""
    import numpy as np

    values = np.asarray(flags, dtype=float)
    if len(values) == 0:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    return round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)


def set_figures(truth: Sequence[bool], flags: Sequence[bool], groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Recall and FPR with bootstrap intervals, the confusion matrix, and the flag rate per group."""
    pos = [f for t, f in zip(truth, flags, strict=True) if t]
    neg = [f for t, f in zip(truth, flags, strict=True) if not t]
    out: dict[str, Any] = {
        "n_crisis": len(pos), "n_other": len(neg),
        "recall": round(sum(pos) / len(pos), 3) if pos else None, "recall_ci": bootstrap_interval(pos),
        "fpr": round(sum(neg) / len(neg), 3) if neg else None, "fpr_ci": bootstrap_interval(neg),
        "confusion": {"crisis_flagged": sum(pos), "crisis_missed": len(pos) - sum(pos),
                      "other_flagged": sum(neg), "other_passed": len(neg) - sum(neg)},
    }
    if groups is not None:
        by: dict[str, list[bool]] = defaultdict(list)
        for group, flag in zip(groups, flags, strict=True):
            by[group].append(flag)
        out["flag_rate_by_group"] = {g: f"{sum(v)}/{len(v)}" for g, v in sorted(by.items())}
    return out


def evaluation_sets(data_dir=None) -> dict[str, list[dict[str, Any]]]:
    """Every reported set as rows with ``text``, ``crisis`` and a ``group`` (kind, level or T-SID label)."""
    sets = {"own": [{**r, "group": r["kind"]} for r in held_out_rows("own")]}
    sets["graded"] = [{**r, "group": r["level"]} for r in held_out_rows("graded")]
    for name in ("indirect", "probe"):
        sets[name] = [{**r, "group": "crisis" if r["crisis"] else "tricky"} for r in held_out_rows(name)]
    sets["tsid_test"] = [{**r, "crisis": r["label"] == TSID_CRISIS_LABEL, "group": r["label"]}
                         for r in load_tsid(data_dir) if r["split"] == "test"]
    return sets


def evaluate_detector(learned=None, data_dir=None, *, sets: dict | None = None) -> dict[str, Any]:
    """Figures of the decision in use (rules alone when ``learned`` is None) on every reported set,
    the graded set's level confusion matrix, and per-set (threshold, recall, FPR) curves of the learned
    detector's probability joined with the rules."""
    import numpy as np

    from therapy_align.safety.levels import LEVELS

    sets = sets or evaluation_sets(data_dir)
    figures: dict[str, Any] = {"decision": "rules" if learned is None else f"rules + learned ({learned.threshold:.3f})"}
    curves: dict[str, list] = {}
    for name, rows in sets.items():
        texts = [r["text"] for r in rows]
        verdicts = detect_crisis_batch(texts, learned=learned)
        truth, flags = [r["crisis"] for r in rows], [v.crisis for v in verdicts]
        result = set_figures(truth, flags, [r["group"] for r in rows])
        if name == "tsid_test":
            none = [f for r, f in zip(rows, flags, strict=True) if r["label"] == "none"]
            result["none_fpr"], result["none_fpr_ci"] = round(sum(none) / len(none), 3), bootstrap_interval(none)
        if name == "graded":
            matrix = {t: {p: 0 for p in LEVELS} for t in LEVELS}
            for r, v in zip(rows, verdicts, strict=True):
                matrix[r["level"]][v.level] += 1
            result["level_confusion"] = matrix
            result["level_exact"] = round(sum(matrix[level][level] for level in LEVELS) / len(rows), 3)
            withheld = ("high", "imminent")
            urgent = [v.level in withheld for r, v in zip(rows, verdicts, strict=True) if r["level"] in withheld]
            result["urgent_withheld"] = f"{sum(urgent)}/{len(urgent)}"
        result["errors"] = [{"text": r["text"], "crisis": r["crisis"], "reason": v.reason}
                            for r, v in zip(rows, verdicts, strict=True) if v.crisis != r["crisis"]]
        figures[name] = result
        if learned is not None:
            rules_only = np.array([v.crisis for v in detect_crisis_batch(texts)])
            from therapy_align.safety.detector import normalize

            probability = 1.0 - learned.probabilities([normalize(t) for t in texts])[:, 0]
            truth_array = np.array(truth)
            points = []
            for t in np.linspace(0.0, 1.0, 41):
                combined = rules_only | (probability >= t)
                points.append([round(float(t), 3),
                               round(float(combined[truth_array].mean()), 3) if truth_array.any() else None,
                               round(float(combined[~truth_array].mean()), 3) if (~truth_array).any() else None])
            curves[name] = points
    figures["curves"] = curves
    return figures


def plot_curves(curves: dict[str, list], path: str | Path, *, marks: dict[str, tuple[float, float]] | None = None) -> Path:
    """Recall against false-positive rate as the learned threshold moves, one line per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        pts = [(fpr, rec) for _, rec, fpr in points if rec is not None and fpr is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    for name, (fpr, rec) in (marks or {}).items():
        ax.scatter([fpr], [rec], marker="x", color="black")
        ax.annotate(name, (fpr, rec), fontsize=7, xytext=(3, -10), textcoords="offset points")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("recall")
    ax.set_xlim(-0.02, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Rules + learned detector: recall vs FPR as the threshold moves")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def leave_one_source_out(cfg, work_dir: str | Path, data_dir=None, *, log=print) -> dict[str, Any]:
    """Train without each training source in turn and test on that source: how the detector does on
    wording of a kind it has not seen. T-SID is tested on its ``test`` split, the written set and
    CounselChat on all their rows; each beside the rules alone on the same rows."""
    from therapy_align.safety.learned import LearnedDetector, counselchat_rows, train_detector, written_rows

    out: dict[str, Any] = {}
    for source in cfg.sources:
        if source == "tsid":
            rows = [{"text": r["text"], "crisis": r["label"] == TSID_CRISIS_LABEL, "group": r["label"]}
                    for r in load_tsid(data_dir) if r["split"] == "test"]
        elif source == "written":
            rows = [{"text": r["text"], "crisis": r["level"] != "none", "group": r["level"]} for r in written_rows()]
        else:
            rows = [{"text": r["text"], "crisis": r["level"] != 0, "group": "self-harm" if r["level"] else "other"}
                    for r in counselchat_rows(data_dir, cfg.max_counselchat, cfg.seed)]
        artifact = Path(work_dir) / f"without-{source}"
        train_detector(cfg, artifact, data_dir=data_dir, exclude=source, log=log)
        learned = LearnedDetector(artifact)
        texts, truth = [r["text"] for r in rows], [r["crisis"] for r in rows]
        groups = [r["group"] for r in rows]
        combined = [v.crisis for v in detect_crisis_batch(texts, learned=learned)]
        rules = [v.crisis for v in detect_crisis_batch(texts)]
        out[source] = {"combined": set_figures(truth, combined, groups), "rules": set_figures(truth, rules, groups),
                       "threshold": learned.threshold}
        log(f"without {source}: combined recall {out[source]['combined']['recall']} FPR {out[source]['combined']['fpr']}; "
            f"rules recall {out[source]['rules']['recall']} FPR {out[source]['rules']['fpr']}")
    return out
