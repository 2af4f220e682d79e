"""MITI 4.2.1 summary scores of a set of therapist turns: pure functions of their labels.

    R:Q  = (SR + CR) / Q                reflection-to-question ratio   fair >= 1:1, good >= 2:1
    %CR  = CR / (SR + CR) * 100         percent complex reflections    fair >= 40%, good >= 50%
    %OQ  = open Q / (open Q + closed Q) * 100   percent open questions (no threshold in MITI 4.2.1)

SR/CR = simple/complex reflections, Q = questions (open + closed). A ratio whose denominator is
zero is undefined and reported as None (JSON null), never as 0 or infinity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from miti.labels import LABELS

# MITI 4.2.1 (Moyers, Manuel & Ernst 2014, rev. 2015), Table "Summary score thresholds".
THRESHOLDS: Mapping[str, Mapping[str, float]] = {
    "r_q": {"fair": 1.0, "good": 2.0},
    "pct_complex_reflections": {"fair": 40.0, "good": 50.0},
}
METRICS = ("r_q", "pct_complex_reflections", "pct_open_questions")
# Report column of each metric (the Table-1 report and the multi-turn tables).
COLUMNS = {"r_q": "R:Q", "pct_complex_reflections": "%CR", "pct_open_questions": "open %"}


def count_labels(labels: Iterable[str]) -> dict[str, int]:
    """Counts of every label in LABELS (zeros included); an unknown label raises ValueError."""
    counts = Counter(labels)
    unknown = set(counts) - set(LABELS)
    if unknown:
        raise ValueError(f"unknown MI behaviour label(s) {sorted(unknown)}; expected one of {LABELS}")
    return {label: counts.get(label, 0) for label in LABELS}


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if denominator == 0 else scale * numerator / denominator


def reflection_question_ratio(counts: Mapping[str, int]) -> float | None:
    reflections = counts["reflection_simple"] + counts["reflection_complex"]
    return _ratio(reflections, counts["question_open"] + counts["question_closed"])


def percent_complex_reflections(counts: Mapping[str, int]) -> float | None:
    return _ratio(counts["reflection_complex"], counts["reflection_simple"] + counts["reflection_complex"], 100.0)


def percent_open_questions(counts: Mapping[str, int]) -> float | None:
    return _ratio(counts["question_open"], counts["question_open"] + counts["question_closed"], 100.0)


def rating(metric: str, value: float | None) -> str | None:
    """"good", "fair" or "below fair" against MITI 4.2.1's thresholds; None without a threshold or value."""
    if value is None or metric not in THRESHOLDS:
        return None
    levels = THRESHOLDS[metric]
    return "good" if value >= levels["good"] else "fair" if value >= levels["fair"] else "below fair"


def summarise_counts(counts: Mapping[str, int]) -> dict:
    values = {
        "r_q": reflection_question_ratio(counts),
        "pct_complex_reflections": percent_complex_reflections(counts),
        "pct_open_questions": percent_open_questions(counts),
    }
    return {
        "n": int(sum(counts.values())),
        **values,
        "counts": dict(counts),
        "ratings": {m: rating(m, values[m]) for m in THRESHOLDS},
        "thresholds": {m: dict(t) for m, t in THRESHOLDS.items()},
    }


def summarise(labels: Iterable[str]) -> dict:
    """summary.json's content: n, r_q, pct_complex_reflections, pct_open_questions, counts, ratings."""
    return summarise_counts(count_labels(labels))


def columns(summary: Mapping) -> dict[str, float | None]:
    """The report columns (R:Q, %CR, open %) of a summary."""
    return {COLUMNS[m]: summary[m] for m in METRICS}


def multicode_counts(reflection_subtypes: Iterable[object], question_subtypes: Iterable[object]) -> dict[str, int]:
    """Counts when every coded behaviour counts, as MITI does: an utterance whose annotator coded a
    reflection *and* a question adds one to each (AnnoMI's ``reflection_subtype``/``question_subtype``
    wherever present, not only the main behaviour). Labels other than R/Q are left at 0."""
    counts = dict.fromkeys(LABELS, 0)
    for value in reflection_subtypes:
        if value in ("simple", "complex"):
            counts[f"reflection_{value}"] += 1
    for value in question_subtypes:
        if value in ("open", "closed"):
            counts[f"question_{value}"] += 1
    return counts
