"""The cell evaluator and the scorer registry with a plain word-count scorer (no model, no data):
columns merge from every scorer, finished cells are reused, stale scores are refused, a missing
optional scorer is a one-line error."""

from __future__ import annotations

import json

import pytest

from therapy_align.errors import UserError
from therapy_align.evaluation.cell import CellSpec, evaluate_cell
from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.evaluation.scorers import REGISTRY, ScorerContext, make_scorers
from therapy_align.store import StaleResultError


class WordCount:
    def __init__(self, name="words", column="mean_words", version=1):
        self.name, self.column, self.version, self.calls = name, column, version, 0

    def identity(self):
        return {"version": self.version}

    def score(self, pairs):
        self.calls += 1
        return [{"words": len(p.response.split())} for p in pairs]

    def summarise(self, pairs, scores):
        return {self.column: sum(s["words"] for s in scores) / len(scores)}


def _pairs(tmp_path, responses):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "seeker": "s", "response": r}) + "\n"
                            for i, r in enumerate(responses)))
    return str(path)


def _run(tmp_path, pairs, scorers, **kw):
    return evaluate_cell(CellSpec(row="human", prompt="", pairs=pairs), tmp_path / "cells" / "human", inputs=[],
                         generation=GenerationSpec(), scorers=scorers, **kw)


def test_columns_merge_and_a_finished_cell_is_reused(tmp_path):
    pairs = _pairs(tmp_path, ["one two", "three", "four five six"])
    words, other = WordCount(), WordCount(name="other", column="other_words")
    cell = _run(tmp_path, pairs, [words, other])
    assert cell.metrics == {"mean_words": 2.0, "other_words": 2.0} and cell.n == 3 and not cell.reused
    summary = json.loads((tmp_path / "cells" / "human" / "summary.json").read_text())
    assert summary["metrics"] == cell.metrics and summary["generation"] is None
    assert [json.loads(line)["id"] for line in (tmp_path / "cells" / "human" / "scores-words.jsonl").open()] == [
        "p0", "p1", "p2"]
    again = _run(tmp_path, pairs, [words, other])
    assert again.reused and again.metrics == cell.metrics and words.calls == 1  # not rescored


def test_a_changed_scorer_or_reply_is_refused_then_forced(tmp_path):
    pairs = _pairs(tmp_path, ["one two", "three"])
    _run(tmp_path, pairs, [WordCount()])
    with pytest.raises(StaleResultError, match="version|--force"):
        _run(tmp_path, pairs, [WordCount(version=2)])
    changed = _pairs(tmp_path, ["one two three four", "three"])
    with pytest.raises(StaleResultError, match="input"):
        _run(tmp_path, changed, [WordCount()])
    assert _run(tmp_path, changed, [WordCount()], force=True).metrics == {"mean_words": 2.5}


def test_two_scorers_may_not_claim_one_column(tmp_path):
    with pytest.raises(ValueError, match="columns"):
        _run(tmp_path, _pairs(tmp_path, ["a"]), [WordCount(), WordCount(name="again")])


def test_registry_errors_name_the_scorer(monkeypatch, tmp_path):
    context = ScorerContext(work_dir=tmp_path)
    with pytest.raises(UserError, match="unknown scorer 'nope'"):
        make_scorers(("nope",), context)
    monkeypatch.setitem(REGISTRY, "later_stage", "therapy_align.not_written_yet:make")
    with pytest.raises(UserError, match="later_stage.*therapy_align.not_written_yet"):
        make_scorers(("later_stage",), context)
    monkeypatch.setitem(REGISTRY, "words", lambda ctx: WordCount())
    assert [s.name for s in make_scorers(("words",), context)] == ["words"]
    with pytest.raises(UserError, match="twice"):
        make_scorers(("words", "words"), context)


def test_a_cell_is_a_model_or_given_replies_not_both():
    with pytest.raises(UserError):
        CellSpec(row="x", model="tiny-base", pairs="p.jsonl")
    with pytest.raises(UserError):
        CellSpec(row="x")
    assert CellSpec(row="base", prompt="new", model="tiny-base").slug == "base__new"


def test_a_reference_cell_scores_a_seeded_sample_in_file_order(tmp_path):
    pairs = _pairs(tmp_path, [f"reply {i}" for i in range(20)])
    spec = CellSpec(row="human", prompt="", pairs=pairs, limit=5)
    cell = evaluate_cell(spec, tmp_path / "cells" / "human", inputs=[], generation=GenerationSpec(),
                         scorers=[WordCount()])
    ids = [record["id"] for record in cell.records]
    assert cell.n == 5 and len(set(ids)) == 5
    assert ids == sorted(ids, key=lambda i: int(i[1:]))  # file order kept
    assert ids != [f"p{i}" for i in range(5)]  # a sample across the file, not its head
    again = evaluate_cell(spec, tmp_path / "cells" / "human", inputs=[], generation=GenerationSpec(),
                          scorers=[WordCount()])
    assert again.reused and [r["id"] for r in again.records] == ids  # the same sample every run
    with pytest.raises(UserError, match="limit"):
        CellSpec(row="human", prompt="", pairs=pairs, limit=0)
