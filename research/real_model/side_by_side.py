"""Replies of several Table-1 rows to the same inputs, side by side, with their EMP-EVAL levels.

    python -m research.real_model.side_by_side runs/results-table1 --prompt standard \
        --rows base,annomi80,full_plus --n 4 --out docs/research/data/side-by-side-small.md

Inputs are drawn evenly across the cell's inputs (not the first few), seeded; replies are read from
each cell's ``generations.jsonl`` and levels from ``scores-empeval.jsonl``, so nothing is
regenerated. Replies are shown whole, as the model wrote them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from research.real_model import emit, read_jsonl

LEVELS = (("emotional_reactions", "E"), ("interpretations", "I"), ("explorations", "X"))


def side_by_side(out: Path, prompt: str, rows: list[str], n: int) -> str:
    cells = {row: out / "cells" / f"{row}__{prompt}" for row in rows}
    gens = {row: read_jsonl(cell / "generations.jsonl") for row, cell in cells.items()}
    scores = {row: read_jsonl(cell / "scores-empeval.jsonl") for row, cell in cells.items()}
    missing = [str(cells[row]) for row in rows if not gens[row]]
    if missing:
        raise SystemExit(f"error: no generations in {', '.join(missing)}")
    shared = sorted(set.intersection(*(set(g) for g in gens.values())))
    picked = [shared[int(i * len(shared) / n)] for i in range(min(n, len(shared)))]
    lines = [f"# Replies side by side ({out}, prompt `{prompt}`)", ""]
    for item in picked:
        lines += [f"## {item}", "", "**Post:** " + " ".join(gens[rows[0]][item]["text"].split()), ""]
        for row in rows:
            score = scores[row].get(item, {})
            levels = ", ".join(f"{short}={score[key]['level']}" for key, short in LEVELS if key in score)
            reply = " ".join(gens[row][item]["response"].split()) or "(empty)"
            lines += [f"- **{row}** ({levels or 'not scored'}): {reply}"]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a Table-1 output directory (holds cells/)")
    parser.add_argument("--prompt", default="standard")
    parser.add_argument("--rows", default="base,annomi80,full_plus")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--out", dest="target", type=Path, default=None, help="write the markdown here")
    args = parser.parse_args(argv)
    return emit(side_by_side(args.out, args.prompt, args.rows.split(","), args.n), args.target)


if __name__ == "__main__":
    main()
