"""Table-1 reports: the paper's figures, tables (Markdown/CSV), the bar chart, examples."""

from __future__ import annotations

import csv
import io

import pytest

from empeval.mechanisms import final_score
from therapy_align.evaluation.report import bar_chart, examples_markdown, pick_examples, sort_by_final, to_csv, to_markdown
from therapy_align.evaluation.table1 import MODELS, PAPER_TABLE1, PROMPTS, Cell, clean_launcher_env, grid, paper_row, write_report


def _row(prompt, final, **kw):
    return {"model": "m", "prompt": prompt, "n": 4, "empathy": 1.0, "interpretation": 2.0,
            "exploration": 3.0, "final": final, **kw}


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
    cells = grid()
    assert len(cells) == 6 == len({c.slug for c in cells})
    assert [c.prompt for c in cells[:3]] == ["standard"] * 3
    assert {(c.model, c.prompt) for c in cells} == {(m, p) for m in MODELS for p in PROMPTS}
    assert Cell("annomi80", "new").label == "80% Model / New"


def test_sort_by_final_is_descending_and_stable():
    rows = [_row("b", 3.0), _row("a", 3.0), _row("c", 9.5), _row("d", -1.0)]
    assert [r["prompt"] for r in sort_by_final(rows)] == ["c", "a", "b", "d"]


def test_markdown_and_csv_hold_every_row_and_column():
    rows = [_row("new", 10.25, paper_final=421.8), _row("standard", 5.0, paper_final=232.4)]
    md = to_markdown(rows)
    assert md.count("\n") == 4 and "| Final |" in md and "10.2" in md and "421.8" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["prompt"] for r in parsed] == ["new", "standard"]
    assert float(parsed[0]["final"]) == 10.25 and parsed[1]["paper_final"] == "232.4"


def test_markdown_escapes_pipes():
    assert "a\\|b" in to_markdown([_row("a|b", 1.0)])


def test_bar_chart_writes_a_png(tmp_path):
    path = bar_chart([_row("new", 4.0, paper_empathy=1, paper_interpretation=2, paper_exploration=3, paper_final=4),
                      _row("standard", 2.0)], tmp_path / "c.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_pick_the_same_inputs_first_and_show_levels():
    records = [{"id": i, "text": f"post {i}", "response": f"reply {i}"} for i in ("c", "a", "b")]
    scores = {"b": {"id": "b", "emotional_reactions": 2, "interpretations": 0, "explorations": 1,
                    "explorations_probabilities": [0, 1, 0]}}
    picked = pick_examples(records, scores, 2, ids=["b"])
    assert [p["id"] for p in picked] == ["b", "a"]
    assert "explorations_probabilities" not in picked[0]
    md = examples_markdown([("Cell", picked)])
    assert "E=2, I=0, X=1" in md and "reply b" in md


def test_write_report_files_and_flags(tmp_path):
    rows = []
    for cell in grid():
        paper = paper_row(cell.model, cell.prompt)
        rows.append({"model": cell.model, "prompt": cell.prompt, "model_ref": "tiny-base", "n": 4,
                     "empathy": 500.0, "interpretation": 250.0, "exploration": 0.0, "final": 200.0,
                     **{f"paper_{k}": getattr(paper, k) for k in ("empathy", "interpretation", "exploration", "final")}})
    results = {"rows": rows, "n_inputs": 4, "inputs": "x.jsonl", "evaluator": "q", "quick_evaluator": True,
               "model_refs": {"base": "tiny-base"}, "generation": {"max_new_tokens": 8}}
    write_report(tmp_path, results, [("Base Model / Standard", [])], preset="tiny")
    table = (tmp_path / "table.md").read_text()
    assert "QUICK EVALUATOR" in table and "TINY PRESET" in table and "Paper final" in table
    assert table.count("| 80% Model |") == 2 and "421.8" in table
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "table.csv").read_text())))) == 6
    assert (tmp_path / "table1.png").stat().st_size > 1000
    assert (tmp_path / "examples.md").is_file()


def test_sft_subprocess_does_not_inherit_launcher_rank():
    env = {"PATH": "/bin", "RANK": "0", "LOCAL_RANK": "0", "ACCELERATE_MIXED_PRECISION": "no", "WORLD_SIZE": "1",
           "MASTER_PORT": "1", "TORCHELASTIC_RUN_ID": "x", "HOME": "/root"}
    assert clean_launcher_env(env) == {"PATH": "/bin", "HOME": "/root"}


def test_a_cell_keeps_its_decoding_settings(tmp_path):
    from therapy_align.evaluation.generation import GenerationSettings
    from therapy_align.evaluation.table1 import _check_settings

    path = tmp_path / "cell" / "generation_settings.json"
    _check_settings(path, GenerationSettings(max_new_tokens=8, batch_size=4))
    _check_settings(path, GenerationSettings(max_new_tokens=8, batch_size=16))  # batch size is throughput only
    with pytest.raises(ValueError, match="delete it to regenerate"):
        _check_settings(path, GenerationSettings(max_new_tokens=9))


def test_done_ids_refuses_a_file_of_another_model(tmp_path):
    from therapy_align.evaluation.generation import InputFileError, append_records, done_ids

    path = tmp_path / "g.jsonl"
    append_records(path, [{"id": "a", "prompt": "new", "model": "runs/x"}])
    assert done_ids(path, prompt_name="new", model_ref="runs/x") == {"a"}
    with pytest.raises(InputFileError, match="choose another --out"):
        done_ids(path, prompt_name="new", model_ref="runs/y")
