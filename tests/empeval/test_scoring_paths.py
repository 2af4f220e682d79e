"""One EMP-EVAL scoring path: the same pairs scored through the command line, the Python API and
the evaluation harness (a reference cell) give identical levels in the same per-pair schema."""

from __future__ import annotations

import pytest
import json

from typer.testing import CliRunner

from empeval.cli import app
from empeval.mechanisms import MECHANISMS
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration

PAIRS = [
    {"id": "a", "seeker": "I feel so alone since my dog died.", "response": "I'm so sorry. How long did you have him?"},
    {"id": "b", "seeker": "Nothing matters anymore.", "response": "That sounds really hard, I have felt that way too."},
    {"id": "c", "seeker": "I can't sleep.", "response": ""},
    {"id": "d", "seeker": "Exams stress me out. " * 60, "response": "Have you talked to anyone about it? " * 60},
    {"id": "e", "seeker": "My boss yells at me", "response": "Quit."},
]


def _lines(path):
    return [{k: v for k, v in json.loads(line).items() if k != "_made_from"} for line in path.read_text().splitlines()]


def test_cli_python_api_and_harness_agree(tmp_path):
    import empeval
    from therapy_align.evaluation.cell import CellSpec, evaluate_cell
    from therapy_align.evaluation.generation import GenerationSpec
    from therapy_align.evaluation.scorers import ScorerContext, make_scorers

    artifact = make_tiny_evaluator(tmp_path / "evaluator")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))

    result = CliRunner().invoke(app, ["score", "--model", str(artifact), "--in", str(pairs),
                                      "--out", str(tmp_path / "cli.jsonl"), "--no-progress"])
    assert result.exit_code == 0, result.output
    cli = _lines(tmp_path / "cli.jsonl")

    scores = empeval.load(artifact).score([p["seeker"] for p in PAIRS], [p["response"] for p in PAIRS])
    api = [{"id": p["id"], **scores.row(i)} for i, p in enumerate(PAIRS)]

    scorers = make_scorers(("empeval",), ScorerContext(work_dir=tmp_path, artifacts={"empeval": str(artifact)}))
    cell = evaluate_cell(CellSpec(row="human", prompt="", pairs=str(pairs)), tmp_path / "cells" / "human",
                         inputs=[], generation=GenerationSpec(), scorers=scorers)
    harness = _lines(tmp_path / "cells" / "human" / "scores-empeval.jsonl")

    assert [set(line) for line in cli] == [set(line) for line in api] == [set(line) for line in harness]
    assert all(set(line[m]) == {"level", "probabilities"} for line in cli for m in MECHANISMS)
    levels = [[[line[m]["level"] for m in MECHANISMS] for line in lines] for lines in (cli, api, harness)]
    assert levels[0] == levels[1] == levels[2]
    assert len({json.dumps(line[m]["level"]) for line in cli for m in MECHANISMS}) > 1  # not all one level
    summary = json.loads((tmp_path / "cli.summary.json").read_text())
    assert summary["columns"] == cell.metrics and cell.n == len(PAIRS)
