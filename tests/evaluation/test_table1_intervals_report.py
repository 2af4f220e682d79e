"""A Table-1 report rebuilt from stored per-pair scores: intervals on the final scores, the paired
differences section and differences.csv, and the note that names the model."""

from __future__ import annotations

import csv
import json

import pytest

from therapy_align.evaluation.cell import CellResult, CellSpec
from therapy_align.evaluation.report import GEMMA_NOTE, TINY_NOTE, is_gemma_270m_reference, model_notes
from therapy_align.evaluation.scorers.empeval import EmpevalScorer
from therapy_align.evaluation.table1 import report_differences, report_rows, write_table1_report
from therapy_align.scoring import Pair, score_pairs
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

SEEKERS = [f"I have felt alone for weeks and I cannot sleep (post {i})." for i in range(16)]
REPLIES = {
    "a": [f"That sounds exhausting. What keeps you awake, {i}?" for i in range(16)],
    "b": [f"I'm so sorry you feel alone. Have you talked to anyone about post {i}?" for i in range(16)],
    "c": ["ok"] * 16,
}
# (row, prompt) -> replies; annomi80 under "new" answers exactly as base does: a zero difference.
CELLS = {("base", "standard"): "a", ("annomi80", "standard"): "b", ("base", "new"): "c", ("annomi80", "new"): "c"}


class _MustNotScore:
    """Stands in for the evaluator on the rebuild: every score must come from the stored files."""

    def score(self, seekers, responses):
        raise AssertionError("a stored score was recomputed")


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("evaluator") / "empeval")


def _cells(out, scorer):
    cells = []
    specs = [CellSpec(row=row, prompt=prompt, model="gemma-3-270m", label=f"{row} / {prompt}") for row, prompt in CELLS]
    specs.append(CellSpec(row="annomi_high", prompt="", pairs="given.jsonl", label="human"))
    for spec in specs:
        replies = REPLIES[CELLS[(spec.row, spec.prompt)]] if not spec.is_reference else REPLIES["b"][:10]
        prefix = "ref" if spec.is_reference else "rmh"  # reference rows answer their own inputs
        records = [{"id": f"{prefix}-{i:04d}", "text": seeker, "response": reply}
                   for i, (seeker, reply) in enumerate(zip(SEEKERS, replies))]
        pairs = [Pair(id=r["id"], seeker=r["text"], response=r["response"]) for r in records]
        scores = score_pairs(scorer, pairs, out / "cells" / spec.slug / f"scores-{scorer.name}.jsonl")
        cells.append(CellResult(spec=spec, n=len(pairs), metrics=scorer.summarise(pairs, scores), records=records,
                                scores={scorer.name: scores}, reused=True, seconds=0.0))
    return cells


def _results(cells, scorers, model_refs):
    return {"rows": report_rows(cells, scorers), "differences": report_differences(cells, scorers),
            "intervals": {"draws": 1000, "seed": 0}, "n_inputs": len(SEEKERS), "inputs": "inputs.jsonl",
            "scorers": {s.name: {"artifact": "x"} for s in scorers}, "model_refs": model_refs,
            "references": {"annomi_high": "given.jsonl"}, "generation": {}, "load": {}, "notes": []}


def test_report_from_stored_scores_shows_intervals_and_significant_differences(tmp_path, evaluator):
    _cells(tmp_path, EmpevalScorer(evaluator))  # scores every pair once, as a finished run did
    scorers = [EmpevalScorer(evaluator, evaluator=_MustNotScore())]
    cells = _cells(tmp_path, scorers[0])  # now read back from scores-empeval.jsonl
    run = tmp_path / "sft-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"base_model": "gemma-3-270m", "name": "annomi80"}))
    results = _results(cells, scorers, {"base": "gemma-3-270m", "annomi80": str(run)})
    write_table1_report(tmp_path / "report", results, cells, scorers, examples_per_cell=1, preset="small")

    rows = list(csv.DictReader((tmp_path / "report" / "table.csv").open()))
    assert len(rows) == 5
    for row in rows:
        for column in ("E", "I", "X", "final"):
            lo, value, hi = float(row[f"{column}_lo"]), float(row[column]), float(row[f"{column}_hi"])
            assert lo <= value + 1e-9 and value <= hi + 1e-9
    header = next(csv.reader((tmp_path / "report" / "table.csv").open()))
    assert header.index("final_lo") == header.index("final") + 1 and header.index("E_hi") == header.index("E") + 2

    table = (tmp_path / "report" / "table.md").read_text()
    final = next(row for row in results["rows"] if (row["row"], row["prompt"]) == ("base", "standard"))
    assert f"{final['final']:.1f} [{final['final_lo']:.1f}, {final['final_hi']:.1f}]" in table
    assert "## Which differences are significant" in table and "Reference rows answer their own inputs" in table
    assert GEMMA_NOTE in table and TINY_NOTE not in table
    assert "| 80% Model − Base Model (New) | Final | 16 | +0.0 | [0.0, 0.0] | no |" in table

    differences = list(csv.DictReader((tmp_path / "report" / "differences.csv").open()))
    assert [(d["comparison"], d["kind"]) for d in differences] == [
        ("80% Model − Base Model (Standard)", "model"), ("80% Model − Base Model (New)", "model"),
        ("Base Model: New − Standard", "prompt"), ("80% Model: New − Standard", "prompt")]
    assert all(d["n"] == "16" and d["column"] == "final" and "annomi_high" not in d["a"] + d["b"] for d in differences)
    by_label = {d["comparison"]: d for d in results["differences"]}
    same = by_label["80% Model − Base Model (New)"]
    assert (same["diff"], same["lo"], same["hi"], same["significant"]) == (0.0, 0.0, 0.0, False)
    for d in results["differences"]:
        assert d["significant"] == (d["lo"] > 0 or d["hi"] < 0)
        a = next(r for r in results["rows"] if f"{r['row']}__{r['prompt']}" == d["a"])
        b = next(r for r in results["rows"] if f"{r['row']}__{r['prompt']}" == d["b"])
        assert d["diff"] == pytest.approx(a["final"] - b["final"])  # the same inputs: difference of the means


def test_judge_columns_get_intervals_and_differences(tmp_path, evaluator):
    scorers = [EmpevalScorer(evaluator), EmpevalScorer(evaluator, name="judge", prefix="judge_")]
    cells = []
    for scorer in scorers:  # one scorer at a time, merged per cell, as the cell evaluator does
        for cell in _cells(tmp_path, scorer):
            match = next((c for c in cells if c.spec.slug == cell.spec.slug), None)
            if match is None:
                cells.append(cell)
            else:
                match.scores.update(cell.scores)
                match.metrics.update(cell.metrics)
    rows = report_rows(cells, scorers)
    assert all({"judge_final_lo", "judge_final_hi", "final_lo", "judge_X_hi"} <= set(row) for row in rows)
    columns = {(d["comparison"], d["column"]) for d in report_differences(cells, scorers)}
    assert ("Base Model: New − Standard", "judge_final") in columns and len(columns) == 8


def test_model_notes_name_gemma_and_keep_the_tiny_note(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"base_model": "gemma-3-270m"}))
    assert is_gemma_270m_reference("gemma-3-270m") and is_gemma_270m_reference(str(run))
    assert is_gemma_270m_reference("artifacts/models/gemma-3-270m")
    assert not is_gemma_270m_reference("tiny-base") and not is_gemma_270m_reference("meta-llama/Llama-2-7b-chat-hf")
    assert model_notes(["gemma-3-270m", str(run)]) == [GEMMA_NOTE]
    assert model_notes(["tiny-base"]) == [TINY_NOTE]
    assert model_notes(["tiny-base", "gemma-3-270m"]) == [TINY_NOTE, GEMMA_NOTE]
    assert model_notes(["base"]) == []
    assert "Gemma 3 270M (google/gemma-3-270m, base pretrained model, dequantised from the PyPI GGUF)" in GEMMA_NOTE
    notice = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
    assert notice in GEMMA_NOTE
