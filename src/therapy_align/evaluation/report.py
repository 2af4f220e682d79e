"""Reports of scored generations: Table-1-style tables (Markdown, CSV), a bar chart, examples.

Used by ``recipes/eval_paper.py`` (the 3x2 grid beside the paper's Table 1) and by the prompt
sweep (one row per prompt, sorted by final score). Rows are plain dicts so both can share it::

    {"model": "annomi80", "prompt": "new", "n": 32, "empathy": 1488.0, "interpretation": 46.0,
     "exploration": 266.0, "final": 421.8, "paper_empathy": ..., "paper_final": ...}
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS: tuple[str, ...] = ("empathy", "interpretation", "exploration", "final")
METRIC_LABELS: dict[str, str] = {
    "empathy": "Empathy",
    "interpretation": "Interpretation",
    "exploration": "Exploration",
    "final": "Final",
}


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def sort_by_final(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best final score first; ties broken by name so the order is stable."""
    return sorted(rows, key=lambda row: (-float(row["final"]), str(row.get("prompt", "")), str(row.get("model", ""))))


def table_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    columns = ["model", "prompt", "n", *METRICS]
    if any("paper_final" in row for row in rows):
        columns += [f"paper_{metric}" for metric in METRICS]
    extra = [key for row in rows for key in row if key not in columns and not key.startswith("_")]
    return columns + list(dict.fromkeys(extra))


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or table_columns(rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row.get(key, "") for key in columns})
    return buffer.getvalue()


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, headers: dict[str, str] | None = None) -> str:
    columns = list(columns or table_columns(rows))
    headers = headers or {}
    names = [headers.get(c, METRIC_LABELS.get(c, c.replace("_", " ").capitalize())) for c in columns]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(
    rows: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    *,
    title: str,
    label_key=lambda row: f"{row['model']} / {row['prompt']}",
    with_paper: bool = True,
) -> Path:
    """Grouped bars: E, I, X (per 1,000 inputs) and the final score for each row; the paper's
    figures as hatched bars beside them where rows carry ``paper_*`` values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [label_key(row) for row in rows]
    paper = with_paper and any(row.get("paper_final") not in (None, "") for row in rows)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 1.2 + 0.45 * max(4, len(rows))), sharey=True)
    height = 0.38 if paper else 0.7
    for axis, metric in zip(axes, METRICS, strict=True):
        positions = range(len(rows))
        ours = [float(row[metric]) for row in rows]
        axis.barh([p - (height / 2 if paper else 0) for p in positions], ours, height, label="this run", color="#3b7dd8")
        if paper:
            theirs = [float(row.get(f"paper_{metric}") or 0.0) for row in rows]
            axis.barh([p + height / 2 for p in positions], theirs, height, label="paper Table 1", color="#bbbbbb", hatch="//")
        axis.set_title(METRIC_LABELS[metric] + ("" if metric == "final" else " (sum per 1,000)"))
        axis.set_yticks(list(positions))
        axis.set_yticklabels(labels)
        axis.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # first row on top (the y axis is shared: invert once)
    handles, names = axes[0].get_legend_handles_labels()
    if paper:
        fig.legend(handles, names, loc="lower center", ncol=2, fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if paper else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def examples_markdown(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]], max_chars: int = 700) -> str:
    """Example responses per cell: ``sections`` is ``[(title, [generation record + levels]), ...]``."""
    out = ["# Example responses\n"]
    for title, records in sections:
        out.append(f"## {title}\n")
        for record in records:
            text = record["text"] if len(record["text"]) <= max_chars else record["text"][:max_chars] + " …"
            response = record.get("response", "")
            response = response if len(response) <= max_chars else response[:max_chars] + " …"
            levels = ", ".join(
                f"{short}={record[key]}"
                for key, short in (("emotional_reactions", "E"), ("interpretations", "I"), ("explorations", "X"))
                if key in record
            )
            out.append(f"**{record['id']}** — client: {text}\n")
            out.append(f"> {response or '(empty response)'}\n")
            if levels:
                out.append(f"EMP-EVAL levels: {levels}\n")
        out.append("")
    return "\n".join(out)


def pick_examples(records: Sequence[dict[str, Any]], scores: dict[str, dict[str, Any]], k: int, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``k`` records (those in ``ids`` first, e.g. the same inputs for every cell), with levels."""
    by_id = {str(r["id"]): r for r in records}
    chosen = [i for i in (ids or []) if i in by_id][:k]
    for record in sorted(by_id):
        if len(chosen) >= k:
            break
        if record not in chosen:
            chosen.append(record)
    return [{**by_id[i], **{k2: v for k2, v in scores.get(i, {}).items() if not k2.endswith("probabilities")}} for i in chosen]


def write_text(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
