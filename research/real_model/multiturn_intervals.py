"""Intervals for a multi-turn report: MITI and EMP-EVAL per row, bootstrapped over sessions.

    python -m research.real_model.multiturn_intervals runs/results-multiturn --rows human,base,annomi80 \
        --out docs/research/data/multiturn-small.md

Turns of one session are not independent (one client, one topic), so the unit resampled is the
session: each draw takes sessions with replacement and pools their turns, then computes R:Q, %CR,
open % (``miti.summary``) and the EMP-EVAL final (0.2 E + 0.4 I + 0.4 X per 1,000 turns). The rows
answer the same client turns, so differences are paired (the same sessions in both rows of a draw).
Read from each row's stored ``cells/<row>/scores-{miti,empeval}.jsonl``; nothing is regenerated.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from miti.summary import COLUMNS, summarise

from research.real_model import emit, paired_difference
from research.real_model import percentile_interval as interval

EMPEVAL_KEYS = ("emotional_reactions", "interpretations", "explorations")
WEIGHTS = (0.2, 0.4, 0.4)


def read_row(out: Path, row: str) -> dict[str, list[tuple[str, float]]]:
    """session -> [(MITI label, EMP-EVAL final per 1,000) per turn]."""
    cell = out / "cells" / row
    labels = {r["id"]: r["label"] for r in map(json.loads, (cell / "scores-miti.jsonl").read_text().splitlines())}
    finals = {}
    for r in map(json.loads, (cell / "scores-empeval.jsonl").read_text().splitlines()):
        finals[r["id"]] = 1000 * sum(w * r[k]["level"] for w, k in zip(WEIGHTS, EMPEVAL_KEYS, strict=True))
    sessions: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for turn in sorted(labels):
        sessions[turn.rsplit("-", 1)[0]].append((labels[turn], finals[turn]))
    return dict(sessions)


def metrics(turns: list[tuple[str, float]]) -> dict[str, float | None]:
    summary = summarise([label for label, _ in turns])
    out = {COLUMNS[m]: summary.get(m) for m in COLUMNS}
    out["final"] = float(np.mean([final for _, final in turns]))
    return out


def bootstrap(rows: dict[str, dict], *, draws: int = 1000, seed: int = 0) -> dict:
    sessions = sorted(set.intersection(*(set(r) for r in rows.values())))
    rng = np.random.default_rng(seed)
    samples: dict[str, list[dict]] = {name: [] for name in rows}
    for _ in range(draws):
        pick = [sessions[i] for i in rng.integers(0, len(sessions), len(sessions))]
        for name, row in rows.items():
            samples[name].append(metrics([turn for s in pick for turn in row[s]]))
    point = {name: metrics([turn for s in sessions for turn in row[s]]) for name, row in rows.items()}
    return {"sessions": len(sessions), "point": point, "samples": samples}


def report(result: dict, names: list[str], baseline: str) -> str:
    cols = ["final", *COLUMNS.values()]
    lines = [f"Bootstrap over {result['sessions']} sessions (1,000 draws, seed 0), 95% percentile intervals.", "",
             "| row | turns | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name in names:
        cells = []
        for col in cols:
            value = result["point"][name][col]
            bounds = interval(s[col] for s in result["samples"][name])
            cells.append("–" if value is None else f"{value:.1f} [{bounds[0]:.1f}, {bounds[1]:.1f}]" if bounds else f"{value:.1f}")
        lines.append(f"| {name} | {result['turns'][name]} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired differences against `{baseline}` (same sessions in each draw):", "",
              "| difference | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name in names:
        if name == baseline:
            continue
        cells = []
        for col in cols:
            found = paired_difference(result["point"], result["samples"], name, baseline, col)
            if found is None:
                cells.append("–")
                continue
            diff, bounds = found
            mark = " **sig.**" if bounds[0] > 0 or bounds[1] < 0 else ""
            cells.append(f"{diff:+.1f} [{bounds[0]:+.1f}, {bounds[1]:+.1f}]{mark}")
        lines.append(f"| {name} - {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a multi-turn output directory (holds cells/)")
    parser.add_argument("--rows", default="human,base,annomi80")
    parser.add_argument("--baseline", default="base")
    parser.add_argument("--out", dest="target", type=Path, default=None)
    args = parser.parse_args(argv)
    names = args.rows.split(",")
    rows = {name: read_row(args.out, name) for name in names}
    result = bootstrap(rows)
    result["turns"] = {name: sum(len(t) for t in row.values()) for name, row in rows.items()}
    return emit(report(result, names, args.baseline), args.target)


if __name__ == "__main__":
    main()
