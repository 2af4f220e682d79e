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
