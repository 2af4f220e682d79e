"""The real-model studies' arithmetic: paired bootstrap of held-out loss, config read-back, session bootstrap."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.real_model.heldout_loss import as_fields, paired_bootstrap
from research.real_model.multiturn_intervals import bootstrap, read_row

rows = st.lists(st.tuples(st.floats(0.1, 500.0), st.integers(1, 200)), min_size=2, max_size=30)


@pytest.mark.property
@settings(max_examples=50, deadline=None)
@given(rows)
def test_a_model_against_itself_differs_by_nothing(chunks):
    scores = [{"nll": nll, "tokens": n} for nll, n in chunks]
    result = paired_bootstrap(scores, scores, draws=200)
    assert result["difference"] == 0 and result["difference_ci"] == [0.0, 0.0] and not result["significant"]
    assert result["base_ci"][0] <= result["base_loss"] + 1e-9 and result["base_loss"] <= result["base_ci"][1] + 1e-9


def test_a_uniformly_lower_loss_is_a_significant_improvement():
    base = [{"nll": 3.0 * n, "tokens": n} for n in range(10, 40)]
    tuned = [{"nll": 2.5 * n, "tokens": n} for n in range(10, 40)]
    result = paired_bootstrap(base, tuned, draws=200)
    assert result["difference"] == pytest.approx(-0.5) and result["significant"]


def test_a_stored_sft_data_section_reads_back_as_the_config_it_was():
    from dataclasses import asdict

    from therapy_align.training.config import SftData

    data = SftData(split="full_plus", max_tokens=512, extra_transcripts=("a.txt",), max_heldout_rows=8)
    stored = json.loads(json.dumps(asdict(data), default=sorted))  # as config.json holds it: lists
    assert SftData(**as_fields(SftData(), stored)) == data


def test_sessions_are_resampled_whole(tmp_path):
    levels = {"emotional_reactions": {"level": 1}, "interpretations": {"level": 0}, "explorations": {"level": 2}}
    for row, label in (("a", "question_open"), ("b", "reflection_complex")):
        cell = tmp_path / "cells" / row
        cell.mkdir(parents=True)
        ids = [f"{s}-{t}" for s in range(4) for t in range(3)]
        (cell / "scores-miti.jsonl").write_text("".join(json.dumps({"id": i, "label": label}) + "\n" for i in ids))
        (cell / "scores-empeval.jsonl").write_text("".join(json.dumps({"id": i, **levels}) + "\n" for i in ids))
    rows = {name: read_row(tmp_path, name) for name in ("a", "b")}
    assert sorted(rows["a"]) == ["0", "1", "2", "3"] and all(len(t) == 3 for t in rows["a"].values())
    result = bootstrap(rows, draws=50)
    assert result["sessions"] == 4 and result["point"]["a"]["final"] == pytest.approx(1000 * (0.2 + 0.8))
    assert result["point"]["a"]["open %"] == 100.0 and result["point"]["b"]["%CR"] == 100.0


def write_cell(root, row, ids, *, judge_level, label, text="same words"):
    from research.real_model.rl_before_after import EMPEVAL_KEYS

    cell = root / "cells" / f"{row}__standard"
    cell.mkdir(parents=True)

    def put(name, rows):
        (cell / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    put("generations.jsonl", [{"id": i, "text": f"post {i}", "response": f"{text} {i}"} for i in ids])
    put("scores-empeval.jsonl", [{"id": i, **{k: {"level": 1} for k in EMPEVAL_KEYS}} for i in ids])
    put("scores-judge.jsonl", [{"id": i, **{k: {"level": judge_level} for k in EMPEVAL_KEYS}} for i in ids])
    put("scores-guards.jsonl", [{"id": i, "len_tokens": 20, "template_rate": 0.1, "specificity": 0.2, "copy_rate": 0.0,
                                 "repetition": 0.1, "question_rate": 0.0} for i in ids])
    put("scores-safety.jsonl", [{"id": i, "reply_flagged": False} for i in ids])
    put("scores-miti.jsonl", [{"id": i, "label": label} for i in ids])


def fixed_rewards(cell):
    from research.real_model.rl_before_after import TERMS

    return {json.loads(line)["id"]: {"total": 0.5, "terms": dict.fromkeys(TERMS, 0.0)}
            for line in (cell / "generations.jsonl").read_text().splitlines()}


def test_rl_rows_are_paired_over_inputs_and_a_uniform_judge_gain_is_significant(tmp_path):
    from research.real_model.rl_before_after import bootstrap, report

    ids = [f"in-{k}" for k in range(12)]
    write_cell(tmp_path, "sft", ids, judge_level=0, label="question_open")
    write_cell(tmp_path, "rl", ids, judge_level=1, label="reflection_complex", text="other words")
    result = bootstrap(tmp_path, ["sft", "rl"], "standard", draws=50, rewards=fixed_rewards)
    assert result["point"]["sft"]["judge_final"] == 0 and result["point"]["rl"]["judge_final"] == pytest.approx(1000)
    assert result["point"]["rl"]["%CR"] == 100.0 and result["same_as_first"] == {"rl": 0}
    text = report(result, ["sft", "rl"], "sft")
    assert "| judge_final | **+1000 [+1000, +1000]** |" in text  # every draw: the same inputs in both rows
    assert "| reward_total | +0 [+0, +0] |" in text


def test_rl_rows_that_answered_other_inputs_are_refused(tmp_path):
    from research.real_model.rl_before_after import bootstrap

    write_cell(tmp_path, "sft", ["a", "b"], judge_level=0, label="question_open")
    write_cell(tmp_path, "rl", ["a", "c"], judge_level=1, label="question_open")
    with pytest.raises(SystemExit, match="other inputs"):
        bootstrap(tmp_path, ["sft", "rl"], "standard", draws=5, rewards=fixed_rewards)
