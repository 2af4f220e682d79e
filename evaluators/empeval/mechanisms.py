"""The three EPITOME empathy mechanisms and the paper's way of combining them.

Kept free of torch so that the CLI help, the summary maths and the tests stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Keys used everywhere (metrics.json, score lines, summary.json), in the paper's order E, I, X.
MECHANISMS: tuple[str, ...] = ("emotional_reactions", "interpretations", "explorations")
# EPITOME file stem of each mechanism under <data-dir>/epitome/.
EPITOME_FILES: Mapping[str, str] = {
    "emotional_reactions": "epitome/emotional-reactions-reddit.csv",
    "interpretations": "epitome/interpretations-reddit.csv",
    "explorations": "epitome/explorations-reddit.csv",
}
# The two-letter names of the docs' tables (EPITOME's ER / IP / EX).
SHORT_NAMES: Mapping[str, str] = {"emotional_reactions": "ER", "interpretations": "IP", "explorations": "EX"}
LEVELS: tuple[int, ...] = (0, 1, 2)  # no / weak / strong communication of the mechanism
# Table 1 of the paper: final = 0.2 * Empathy + 0.4 * Interpretation + 0.4 * Exploration.
PAPER_WEIGHTS: tuple[float, float, float] = (0.2, 0.4, 0.4)
# The paper sums levels over 1,000 inputs; sums are rescaled to this many inputs.
PAPER_INPUTS = 1000


def final_score(
    empathy: float, interpretation: float, exploration: float, weights: Sequence[float] = PAPER_WEIGHTS
) -> float:
    """Table 1's final score, e.g. final_score(1090, 20, 16) == 232.4."""
    w_e, w_i, w_x = weights
    # Rounded so that sums of integer levels give the paper's one-decimal figures exactly.
    return round(w_e * empathy + w_i * interpretation + w_x * exploration, 10)


def summarise_levels(levels: Mapping[str, Sequence[int]], n_skipped: int = 0) -> dict:
    """summary.json's content from the per-input levels of each mechanism."""
    counts = {len(levels[m]) for m in MECHANISMS}
    if len(counts) != 1:
        raise ValueError(f"mechanisms have different numbers of scored inputs: {counts}")
    (n,) = counts
    sums = {m: int(sum(levels[m])) for m in MECHANISMS}
    scaled = {m: (sums[m] * PAPER_INPUTS / n if n else 0.0) for m in MECHANISMS}
    return {
        "n": n,
        "n_skipped": n_skipped,
        "sums": sums,
        f"sums_per_{PAPER_INPUTS}": scaled,
        "weights": dict(zip(MECHANISMS, PAPER_WEIGHTS)),
        # Computed on the per-1,000 sums so it is comparable with Table 1 whatever n is.
        "final_score": final_score(*(scaled[m] for m in MECHANISMS)),
        "final_score_raw_sums": final_score(*(sums[m] for m in MECHANISMS)),
    }
