"""Table-1 reports: the paper's figures, tables (Markdown/CSV), the bar chart, examples."""

from __future__ import annotations

import csv
import io

import pytest

from empeval.mechanisms import final_score
from therapy_align.evaluation.report import (
    bar_chart,
    examples_markdown,
    metric_columns,
    pick_examples,
    sort_by_final,
    table_columns,
    to_csv,
    to_markdown,
    write_report,
)
from therapy_align.evaluation.table1 import (
    MODELS,
    PAPER_TABLE1,
    PROMPTS,
    Table1Config,
    Table1Refs,
    cell_label,
    grid,
    named_values,
    paper_row,
    to_train,
    variant_config,
)


def _row(prompt, final, **kw):
    return {"model": "m", "prompt": prompt, "n": 4, "E": 1.0, "I": 2.0, "X": 3.0, "final": final, **kw}


def test_paper_table_final_scores_follow_its_formula():
    assert len(PAPER_TABLE1) == 6
    mismatched = [row for row in PAPER_TABLE1
                  if final_score(row.empathy, row.interpretation, row.exploration) != pytest.approx(row.final)]
    # The paper's own arithmetic slips once: 0.2*1488 + 0.4*46 + 0.4*266 = 422.4, printed 421.8.
    # We keep the printed figures and note the slip in the report.
    assert [(r.model, r.prompt) for r in mismatched] == [("annomi80", "new")]
    assert final_score(1488, 46, 266) == pytest.approx(422.4)
    assert paper_row("annomi80", "new").final == 421.8
    assert paper_row("nope", "new") is None


def test_grid_has_the_six_cells_standard_rows_first():
    cells = grid({m: f"ref-{m}" for m in MODELS})
    assert len(cells) == 6 == len({c.slug for c in cells})
    assert [c.prompt for c in cells[:3]] == ["standard"] * 3
    assert {(c.row, c.prompt, c.model) for c in cells} == {(m, p, f"ref-{m}") for m in MODELS for p in PROMPTS}
    assert cell_label("annomi80", "new") == "80% Model / New"
    assert paper_row("annomi80", "new").columns() == {"paper_E": 1488, "paper_I": 46, "paper_X": 266,
                                                      "paper_final": 421.8}


def test_sort_by_final_is_descending_and_stable():
    rows = [_row("b", 3.0), _row("a", 3.0), _row("c", 9.5), _row("d", -1.0)]
    assert [r["prompt"] for r in sort_by_final(rows)] == ["c", "a", "b", "d"]


def test_markdown_and_csv_hold_every_row_and_column():
    rows = [_row("new", 10.25, paper_final=421.8, judge_final=7.0), _row("standard", 5.0, paper_final=232.4)]
    assert metric_columns(rows) == ["E", "I", "X", "final", "judge_final"]
    assert table_columns(rows) == ["model", "prompt", "n", "E", "I", "X", "final", "judge_final", "paper_final"]
    md = to_markdown(rows)
    assert md.count("\n") == 4 and "| Final |" in md and "| judge_final |" in md and "10.2" in md and "421.8" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["prompt"] for r in parsed] == ["new", "standard"]
    assert float(parsed[0]["final"]) == 10.25 and parsed[1]["paper_final"] == "232.4"
    assert parsed[0]["judge_final"] == "7.0" and parsed[1]["judge_final"] == ""


def test_markdown_escapes_pipes():
    assert "a\\|b" in to_markdown([_row("a|b", 1.0)])


def test_bar_chart_writes_a_png_with_a_panel_per_column(tmp_path):
    path = bar_chart([_row("new", 4.0, paper_E=1, paper_I=2, paper_X=3, paper_final=4, harm=1.0),
                      _row("standard", 2.0)], tmp_path / "c.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_pick_the_same_inputs_first_and_show_every_scorer_line():
    records = [{"id": i, "text": f"post {i}", "response": f"reply {i}"} for i in ("c", "a", "b")]
    lines = {"b": ["EMP-EVAL levels: E=2, I=0, X=1", "guards: ok"]}
    picked = pick_examples(records, lines, 2, ids=["b"])
    assert [p["id"] for p in picked] == ["b", "a"]
    md = examples_markdown([("Cell", picked)])
    assert "E=2, I=0, X=1" in md and "guards: ok" in md and "reply b" in md


def test_write_report_files_notes_and_every_column(tmp_path):
    rows = [{"model": cell_label(m, p).split(" / ")[0], "prompt": p, "model_ref": "tiny-base", "n": 4, "E": 500.0,
             "I": 250.0, "X": 0.0, "final": 200.0, "harm_per_1000": 3.0, **paper_row(m, p).columns()}
            for p in PROMPTS for m in MODELS]
    paths = write_report(tmp_path, rows, title="# T", notes=["**TINY MODEL**: machinery, not quality"],
                         names={"chart": "table1.png"}, sections=[("Base Model / Standard", [])])
    table = (tmp_path / "table.md").read_text()
    assert table.index("TINY MODEL") < table.index("| Model |")  # the note heads the table
    assert "Paper final" in table and "harm_per_1000" in table and table.count("| 80% Model |") == 2
    assert "421.8" in table and "![chart](table1.png)" in table
    parsed = list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))
    assert len(parsed) == 6 and parsed[0]["model_ref"] == "tiny-base" and parsed[0]["harm_per_1000"] == "3.0"
    assert (tmp_path / "table1.png").stat().st_size > 1000 and paths["examples"].is_file()


def test_each_missing_variant_trains_with_the_whole_sft_section(tmp_path):
    """The nested SFT config reaches every variant whole (no field dropped or retyped on the way);
    only the run's name, its directory and the data split follow the row."""
    from dataclasses import replace

    from therapy_align.trainer_args import SftArgs
    from therapy_align.training.config import SftConfig

    sft = SftConfig(train=SftArgs(max_steps=6, learning_rate=0.5, neftune_noise_alpha=5.0))
    sft = replace(sft, data=replace(sft.data, split="full_plus", extra_transcripts=("a.txt", "b.txt"),
                                    max_heldout_rows=4, lenient=True))
    cfg = Table1Config(out=str(tmp_path / "ev"), sft=sft)
    run = variant_config(cfg, "full_plus")
    assert (run.name, run.runs_dir, run.data.split) == ("full_plus", str(tmp_path / "ev" / "sft"), "full_plus")
    assert run.train == sft.train and run.lora == sft.lora and run.model == sft.model and run.run == sft.run
    assert run.data == sft.data
    run = variant_config(cfg, "annomi80")  # the extra sessions are full_plus's alone
    assert (run.name, run.data.split, run.data.extra_transcripts) == ("annomi80", "annomi80", ())
    assert replace(run.data, split="full_plus", extra_transcripts=sft.data.extra_transcripts) == sft.data


def test_rows_without_a_run_are_the_ones_trained(tmp_path):
    from therapy_align.errors import UserError

    cfg = Table1Config(out=str(tmp_path / "ev"), refs=Table1Refs(base="tiny-base", full_plus="tiny-base"))
    assert to_train(cfg) == ["annomi80"]
    with pytest.raises(UserError, match="refs.annomi80"):
        to_train(replace_cfg(cfg, train_missing=False))
    with pytest.raises(UserError, match="gpt"):
        to_train(replace_cfg(cfg, models=("base", "gpt")))


def replace_cfg(cfg, **changes):
    from dataclasses import replace

    return replace(cfg, **changes)


def test_named_values():
    assert named_values(("grpo=runs/g", "human"), "x") == {"grpo": "runs/g", "human": "human"}
    import pytest as _pytest

    from therapy_align.errors import UserError

    for bad in (("a=1", "a=2"), ("=x",), ("a=",)):
        with _pytest.raises(UserError):
            named_values(bad, "x")
