"""Reports of evaluated cells: tables (Markdown, CSV), a bar chart, examples.

One writer serves the Table-1 grid and the prompt sweep. Rows are plain dicts: a few identity
keys and every metric column a cell's scorers returned, plus ``paper_<column>`` where the paper
printed a figure for that cell::

    {"model": "80% Model", "prompt": "New", "model_ref": "runs/x", "n": 32,
     "E": 1488.0, "I": 46.0, "X": 266.0, "final": 421.8, "judge_final": ..., "paper_final": 421.8}

Every metric column a row has appears in the table, the CSV and the chart (one panel each). A
column with a bootstrap interval (``<column>_lo``, ``<column>_hi`` beside it in the row;
:mod:`therapy_align.evaluation.intervals`) gets both bounds in the CSV and error bars in the chart;
the Markdown table prints final scores as ``187.5 [150.2, 226.0]`` and keeps the other columns
short. :func:`differences_markdown` renders the paired differences between rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from therapy_align.files import atomic_write_text

IDENTITY_COLUMNS = ("rank", "model", "prompt", "n")
NOT_METRICS = {"rank", "model", "prompt", "n", "row", "model_ref", "label", "quick_evaluator"}
HEADERS: dict[str, str] = {"E": "Empathy", "I": "Interpretation", "X": "Exploration", "final": "Final",
                           "paper_E": "Paper E", "paper_I": "Paper I", "paper_X": "Paper X",
                           "paper_final": "Paper final", "n": "n", "model": "Model", "prompt": "Prompt",
                           "rank": "#"}
TINY_NOTE = ("**TINY MODEL**: these rows come from the random-init ~4M-parameter Llama-2 (a few SFT steps at "
             "most): the numbers show that the machinery runs, not the quality of any model.")
GEMMA_270M = "gemma-3-270m"  # the registry's name of the small real model (therapy_align.training.model_registry)
GEMMA_NOTE = ("**MODEL**: Gemma 3 270M (google/gemma-3-270m, base pretrained model, dequantised from the PyPI "
              "GGUF); Gemma is provided under and subject to the Gemma Terms of Use found at "
              "ai.google.dev/gemma/terms")
INTERVAL_BOUNDS = ("_lo", "_hi")


def is_interval_bound(key: str, row: dict[str, Any]) -> bool:
    """``final_lo`` / ``final_hi`` beside ``final``: a bound of that column's interval, not a column."""
    return key.endswith(INTERVAL_BOUNDS) and key[:-3] in row


def shows_interval(column: str) -> bool:
    """Which columns the Markdown table prints with their interval: the final scores (the rest stay
    readable; their bounds are in the CSV)."""
    return column == "final" or column.endswith("_final")


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def metric_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every numeric column of the rows other than identity keys and ``paper_*``, first seen first."""
    seen: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key in NOT_METRICS or key.startswith(("paper_", "_")) or is_interval_bound(key, row):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                seen.setdefault(key, None)
    return list(seen)


def table_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Identity columns, every metric column, and the paper's figures beside them."""
    lead = [c for c in IDENTITY_COLUMNS if any(c in row for row in rows)]
    metrics = metric_columns(rows)
    paper = [f"paper_{m}" for m in metrics if any(row.get(f"paper_{m}") not in (None, "") for row in rows)]
    return lead + metrics + paper


def with_interval_columns(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """``columns`` with ``<column>_lo``, ``<column>_hi`` after each column that has an interval in any row."""
    out = []
    for column in columns:
        out.append(column)
        if any(f"{column}_lo" in row for row in rows):
            out += [f"{column}_lo", f"{column}_hi"]
    return out


def sort_by_final(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best final score first; ties broken by name so the order is stable."""
    return sorted(rows, key=lambda row: (-float(row["final"]), str(row.get("prompt", "")), str(row.get("model", ""))))


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or table_columns(rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row.get(key, "") for key in columns})
    return buffer.getvalue()


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                headers: dict[str, str] | None = None) -> str:
    columns = list(columns or table_columns(rows))
    headers = {**HEADERS, **(headers or {})}
    names = [headers.get(c, c) for c in columns]  # scorers name their columns as reports show them
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(["---"] * len(columns)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, c).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any], column: str) -> str:
    value = _fmt(row.get(column))
    lo, hi = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    if shows_interval(column) and isinstance(lo, int | float) and isinstance(hi, int | float) and value != "–":
        return f"{value} [{_fmt(float(lo))}, {_fmt(float(hi))}]"
    return value


def bar_chart(rows: Sequence[dict[str, Any]], path: str | os.PathLike, *, title: str,
              label_key=lambda row: f"{row['model']} / {row['prompt']}", columns: Sequence[str] | None = None) -> Path:
    """One panel of horizontal bars per metric column; the paper's figures as hatched bars beside
    them where rows carry ``paper_<column>``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or metric_columns(rows))
    labels = [label_key(row) for row in rows]
    per_line = min(4, len(columns))
    lines = -(-len(columns) // per_line)
    fig, axes = plt.subplots(lines, per_line, figsize=(4.2 * per_line, lines * (1.2 + 0.45 * max(4, len(rows)))),
                             sharey=True, squeeze=False)
    any_paper = False
    for axis, column in zip(axes.flat, columns):
        paper = any(row.get(f"paper_{column}") not in (None, "") for row in rows)
        any_paper |= paper
        height = 0.38 if paper else 0.7
        positions = list(range(len(rows)))
        ours = [float(row.get(column) or 0.0) for row in rows]
        # the bootstrap interval as an error bar where the row has one (none: a zero-length bar)
        errors = [[max(0.0, v - float(row.get(f"{column}_lo", v))) for v, row in zip(ours, rows)],
                  [max(0.0, float(row.get(f"{column}_hi", v)) - v) for v, row in zip(ours, rows)]]
        has_errors = any(any(side) for side in errors)
        axis.barh([p - (height / 2 if paper else 0) for p in positions], ours, height, label="this run",
                  color="#3b7dd8", xerr=errors if has_errors else None, error_kw={"elinewidth": 1, "capsize": 2})
        if paper:
            theirs = [float(row.get(f"paper_{column}") or 0.0) for row in rows]
            axis.barh([p + height / 2 for p in positions], theirs, height, label="paper Table 1", color="#bbbbbb",
                      hatch="//")
        name = HEADERS.get(column, column)
        axis.set_title(name + (" (sum per 1,000)" if column in ("E", "I", "X") else ""))
        axis.set_yticks(positions)
        axis.set_yticklabels(labels)
        axis.grid(axis="x", alpha=0.3)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    axes[0][0].invert_yaxis()  # first row on top (the y axis is shared: invert once)
    if any_paper:
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=2, fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if any_paper else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def examples_markdown(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]], max_chars: int = 700) -> str:
    """Example replies per cell: ``sections`` is ``[(title, [{id, text, response, scores: [line]}])]``."""
    out = ["# Example responses\n"]
    for title, records in sections:
        out.append(f"## {title}\n")
        for record in records:
            text = record["text"] if len(record["text"]) <= max_chars else record["text"][:max_chars] + " …"
            response = record.get("response", "")
            response = response if len(response) <= max_chars else response[:max_chars] + " …"
            out.append(f"**{record['id']}** — client: {text}\n")
            out.append(f"> {response or '(empty response)'}\n")
            out.extend(f"{line}\n" for line in record.get("scores", ()) if line)
        out.append("")
    return "\n".join(out)


def pick_examples(records: Sequence[dict[str, Any]], score_lines: dict[str, list[str]], k: int,
                  ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``k`` records (those in ``ids`` first, e.g. the same inputs for every cell), each with the
    one-line descriptions of its scores (``score_lines[id]``)."""
    by_id = {str(r["id"]): r for r in records}
    chosen = [i for i in (ids or []) if i in by_id][:k]
    for record_id in sorted(by_id):
        if len(chosen) >= k:
            break
        if record_id not in chosen:
            chosen.append(record_id)
    return [{**by_id[i], "scores": score_lines.get(i, [])} for i in chosen]


def is_tiny_reference(ref: str) -> bool:
    """Whether a model reference is (or was trained from) the random-init tiny model."""
    from therapy_align.training.models import TINY_BASE_DIR, read_run_config, run_base_model

    if ref in ("tiny-base", TINY_BASE_DIR) or "tiny-llama" in ref:
        return True
    if Path(ref, "config.json").is_file():
        try:
            return "tiny" in str(run_base_model(read_run_config(ref)) or "")
        except ValueError:
            return False
    return False


def is_gemma_270m_reference(ref: str) -> bool:
    """Whether a model reference is (or was trained from) Gemma 3 270M: its registry name, its
    prepared directory, or an SFT run whose config.json names it as ``base_model``."""
    from therapy_align.training.models import read_run_config, run_base_model

    if Path(ref).name == GEMMA_270M:
        return True
    if Path(ref, "config.json").is_file():
        try:
            return Path(str(run_base_model(read_run_config(ref)) or "")).name == GEMMA_270M
        except ValueError:
            return False
    return False


def model_notes(refs: Iterable[str]) -> list[str]:
    """The notes that say which model the rows come from (the tiny Llama, Gemma 3 270M with its
    required notice), for the references that need one."""
    refs = list(refs)
    notes = []
    if any(is_tiny_reference(ref) for ref in refs):
        notes.append(TINY_NOTE)
    if any(is_gemma_270m_reference(ref) for ref in refs):
        notes.append(GEMMA_NOTE)
    return notes


def differences_markdown(differences: Sequence[dict[str, Any]], *, draws: int, seed: int) -> str:
    """The paired differences as a Markdown section: ``differences`` holds dicts with ``comparison``
    (a label read as a - b), ``column``, ``n``, ``diff``, ``lo``, ``hi``, ``significant``."""
    lines = ["## Which differences are significant", "",
             f"Paired bootstrap over the inputs both rows answered ({draws:,} draws, seed {seed}): the difference "
             "a − b of the mean score per input, with its 95% percentile interval; **yes** when the interval "
             "excludes 0. Models are compared under the same prompt, and each model across the prompts. "
             "Reference rows answer their own inputs: no paired difference for them.", ""]
    if not differences:
        return "\n".join(lines + ["(no two generated rows share inputs)", ""])
    lines += ["| Comparison (a − b) | Score | n | Difference | 95% interval | Significant |",
              "|---|---|---|---|---|---|"]
    for d in differences:
        lines.append(f"| {d['comparison']} | {HEADERS.get(d['column'], d['column'])} | {d['n']} | {d['diff']:+.1f} "
                     f"| [{d['lo']:.1f}, {d['hi']:.1f}] | {'**yes**' if d['significant'] else 'no'} |")
    return "\n".join(lines) + "\n"


def write_report(report_dir: str | os.PathLike, rows: Sequence[dict[str, Any]], *, title: str,
                 notes: Iterable[str], names: dict[str, str] | None = None, chart_title: str = "",
                 label_key=lambda row: f"{row['model']} / {row['prompt']}",
                 sections: Sequence[tuple[str, Sequence[dict[str, Any]]]] | None = None,
                 csv_extra: Sequence[str] = ("model_ref",), appendix: str = "") -> dict[str, Path]:
    """table.md (title, notes, table, chart, then ``appendix``: more Markdown sections), table.csv
    (with each interval's bounds), the chart and examples.md (if ``sections``) in ``report_dir``;
    ``names`` renames the files (keys table_md, table_csv, chart, examples). Returns the paths written."""
    report_dir = Path(report_dir)
    names = {"table_md": "table.md", "table_csv": "table.csv", "chart": "chart.png", "examples": "examples.md",
             **(names or {})}
    columns = table_columns(rows)
    paths = {key: report_dir / name for key, name in names.items()}
    atomic_write_text(paths["table_md"], f"{title}\n\n" + "\n".join(f"- {note}" for note in notes) + "\n\n"
                      + to_markdown(rows, columns) + f"\n![chart]({names['chart']})\n"
                      + (f"\n{appendix}" if appendix else ""))
    csv_columns = with_interval_columns(rows, columns)
    atomic_write_text(paths["table_csv"], to_csv(rows, csv_columns + [c for c in csv_extra if c not in csv_columns]))
    bar_chart(rows, paths["chart"], title=chart_title or title.lstrip("# "), label_key=label_key)
    if sections is not None:
        atomic_write_text(paths["examples"], examples_markdown(sections))
    else:
        paths.pop("examples")
    return paths
