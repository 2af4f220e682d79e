"""Bootstrap 95% intervals of a report's per-input scores, and paired differences between rows.

A report column such as Table 1's ``final`` is a mean over inputs (EMP-EVAL's sums per 1,000 are
1,000 x the mean level), so its uncertainty comes from which inputs were drawn. Each interval here
resamples the inputs with replacement (``draws`` times, a seeded generator) and takes the 2.5th and
97.5th percentiles of the resampled means (the percentile bootstrap).

* :func:`bootstrap_interval`: one row's column (every input of its cell).
* :func:`paired_difference`: two rows scored on the same inputs (two models under one prompt, or
  one model under two prompts): each draw resamples the shared inputs once and takes the mean of
  ``a - b`` over them, so input difficulty, which both rows share, cancels. The difference is
  significant when its interval excludes 0. Reference rows (given replies) have their own inputs,
  so they have intervals but no paired difference.

Per-input values come from a scorer's ``per_input(scores)`` (``{column: [value per input]}``, whose
means are the column's figures): :func:`row_intervals` and :func:`row_differences` take cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DRAWS = 1000
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float  # the mean over all inputs
    lo: float
    hi: float

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0 (read on a difference)."""
        return self.lo > 0 or self.hi < 0


def _check(draws: int, level: float) -> None:
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_interval(values: Sequence[float] | np.ndarray, *, draws: int = DRAWS, seed: int = SEED,
                       level: float = LEVEL) -> Interval:
    """The mean of ``values`` with its percentile-bootstrap interval over the inputs."""
    _check(draws, level)
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"need a non-empty 1-d array of per-input values, got shape {values.shape}")
    if np.all(values == values[0]):
        # No spread, no uncertainty: every resample's mean is this value. Said directly, because a
        # float sum of n copies divided by n can land an ulp away from it.
        return Interval(float(values[0]), float(values[0]), float(values[0]))
    estimate = float(values.mean())
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(draws, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Interval(estimate, float(lo), float(hi))


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], *, draws: int = DRAWS, seed: int = SEED,
                      level: float = LEVEL) -> tuple[Interval, int]:
    """Mean of ``a[id] - b[id]`` over the ids both hold, with its paired bootstrap interval, and
    how many ids were shared. ``a`` and ``b`` map input id -> that input's value."""
    shared = [key for key in a if key in b]
    if not shared:
        raise ValueError("the two rows share no inputs: no paired difference")
    differences = np.array([float(a[key]) - float(b[key]) for key in shared])
    return bootstrap_interval(differences, draws=draws, seed=seed, level=level), len(shared)


# --------------------------------------------------------------------------------------------
# Cells -> report rows
# --------------------------------------------------------------------------------------------


def per_input_values(cell, scorers) -> dict[str, dict[str, float]]:
    """``{column: {input id: value}}`` for every column whose scorer gives per-input values."""
    out: dict[str, dict[str, float]] = {}
    ids = [str(record["id"]) for record in cell.records]
    for scorer in scorers:
        if not hasattr(scorer, "per_input") or scorer.name not in cell.scores:
            continue
        for column, values in scorer.per_input(cell.scores[scorer.name]).items():
            if len(values) != len(ids):
                raise ValueError(f"scorer {scorer.name!r} gave {len(values)} values of {column!r} "
                                 f"for {len(ids)} inputs")
            out[column] = dict(zip(ids, (float(v) for v in values)))
    return out


def row_intervals(cell, scorers, *, draws: int = DRAWS, seed: int = SEED) -> dict[str, float]:
    """``{<column>_lo, <column>_hi}`` for every column with per-input values."""
    out: dict[str, float] = {}
    for column, values in per_input_values(cell, scorers).items():
        if not values:
            continue
        interval = bootstrap_interval(list(values.values()), draws=draws, seed=seed)
        out[f"{column}_lo"], out[f"{column}_hi"] = interval.lo, interval.hi
    return out


def comparisons(cells) -> list[tuple[Any, Any, str]]:
    """The pairs of generated cells to compare, ``(a, b, kind)`` read as ``a - b``: each later model
    row against each earlier one under the same prompt (``kind`` "model"), then each model under
    each later prompt against its first prompt (``kind`` "prompt"). Reference cells are left out."""
    generated = [cell for cell in cells if not cell.spec.is_reference]
    rows = list(dict.fromkeys(cell.spec.row for cell in generated))
    prompts = list(dict.fromkeys(cell.spec.prompt for cell in generated))
    by_key = {(cell.spec.row, cell.spec.prompt): cell for cell in generated}
    out = []
    for prompt in prompts:
        present = [row for row in rows if (row, prompt) in by_key]
        for j, later in enumerate(present):
            for earlier in present[:j]:
                out.append((by_key[(later, prompt)], by_key[(earlier, prompt)], "model"))
    for row in rows:
        present = [prompt for prompt in prompts if (row, prompt) in by_key]
        for later in present[1:]:
            out.append((by_key[(row, later)], by_key[(row, present[0])], "prompt"))
    return out


def row_differences(cells, scorers, *, columns: Sequence[str] = ("final", "judge_final"), draws: int = DRAWS,
                    seed: int = SEED) -> list[dict[str, Any]]:
    """One dict per comparison (:func:`comparisons`) and column present in both cells:
    ``{kind, a, b, a_row, b_row, a_prompt, b_prompt, column, n, diff, lo, hi, significant}``."""
    values = {id(cell): per_input_values(cell, scorers) for cell in cells if not cell.spec.is_reference}
    out = []
    for a, b, kind in comparisons(cells):
        for column in columns:
            if column not in values[id(a)] or column not in values[id(b)]:
                continue
            try:
                interval, n = paired_difference(values[id(a)][column], values[id(b)][column], draws=draws, seed=seed)
            except ValueError:  # no shared inputs (cells from other input files): nothing to pair
                continue
            out.append({"kind": kind, "a": a.spec.slug, "b": b.spec.slug, "a_row": a.spec.row, "b_row": b.spec.row,
                        "a_prompt": a.spec.prompt, "b_prompt": b.spec.prompt, "column": column, "n": n,
                        "diff": interval.estimate, "lo": interval.lo, "hi": interval.hi,
                        "significant": interval.significant})
    return out
