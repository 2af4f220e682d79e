"""Studies of the real small model (Gemma 3 270M): held-out loss, replies side by side, multi-turn
intervals. Findings: docs/results.md."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def emit(text: str, target: Path | None) -> str:
    """Print a study's markdown and, when asked, write it to ``target`` as well."""
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    print(text)
    return text


def read_jsonl(path: Path) -> dict[str, dict]:
    """A stored JSONL file of a report's cell, by ``id`` ({} when the file is missing)."""
    rows = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def percentile_interval(values: Iterable[float | None]) -> tuple[float, float] | None:
    """The 95% percentile interval of bootstrap draws (draws without a value left out)."""
    import numpy as np

    kept = [v for v in values if v is not None]
    return (float(np.percentile(kept, 2.5)), float(np.percentile(kept, 97.5))) if kept else None


def paired_difference(point: dict, samples: dict, row: str, baseline: str, key: str) -> tuple[float, tuple[float, float]] | None:
    """``row`` minus ``baseline`` on ``key``, and its 95% interval over the bootstrap draws in which
    both rows drew the same units; None when either has no value."""
    a, b = point[row][key], point[baseline][key]
    bounds = percentile_interval(x[key] - y[key] for x, y in zip(samples[row], samples[baseline], strict=True)
                                 if x[key] is not None and y[key] is not None)
    return None if a is None or b is None or bounds is None else (a - b, bounds)
