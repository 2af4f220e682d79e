"""MITI on the real AnnoMI file: labels, split, expert rows, `miti score` (strict, resumable,
fingerprinted), the scorer contract, and a fast training run on a slice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module
from tests.fixtures.tiny_miti import make_tiny_miti

pytestmark = pytest.mark.integration


def cli(argv: list[str]) -> int:
    from therapy_align.cli import main

    try:
        main(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return 0


@pytest.fixture(scope="module")
def tiny_miti(tmp_path_factory) -> Path:
    return make_tiny_miti(tmp_path_factory.mktemp("miti") / "artifact")


@pytest.fixture(scope="module")
def turns(data_dir):
    from miti.labels import load_labelled_turns

    return load_labelled_turns(data_dir)


def test_labels_and_split_by_transcript(turns, data_dir):
    from miti.labels import LABELS, split_transcripts
    from therapy_align.data.splits import split_transcript_ids
    from therapy_align.data.transcripts import load_annomi

    assert set(turns["label"]) == set(LABELS)
    assert turns["id"].is_unique
    overlap = turns[turns["n_annotators"] > 1]
    assert len(overlap) > 0 and (overlap["agreement"] <= 1).all()
    split = split_transcripts(turns)
    sides = [set(split[s]) for s in ("train", "dev", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert set().union(*sides) == set(turns["transcript_id"])
    # The annomi80 data build's held-out 20% of high-quality transcripts is all on the test side.
    high = [t.transcript_id for t in load_annomi(data_dir)[0] if t.quality == "high"]
    heldout = split_transcript_ids(high)[1]
    assert set(heldout) <= sides[2] and len(heldout) == 22


def test_human_rows_from_the_real_file(tmp_path, capsys, data_dir):
    out = tmp_path / "human.json"
    assert cli(["miti", "human", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "high-quality" in printed and "majority vote" in printed
    rows = {(r["row"], r["scheme"]): r for r in json.loads(out.read_text())["rows"]}
    high = rows[("human, high-quality sessions", "main behaviour")]
    low = rows[("human, low-quality sessions", "main behaviour")]
    assert high["n_transcripts"] == 110 and low["n_transcripts"] == 23
    assert high["r_q"] > 2 * low["r_q"]  # MI quality shows in R:Q
    assert sum(high["counts"].values()) == high["n_turns"]


def test_score_cli_strict_resumable_and_fingerprinted(tmp_path, tiny_miti, capsys):
    lines = [{"id": i, "client": f"I had {i} drinks.", "therapist": text}
             for i, text in enumerate(["So drinking helps you relax.", "How often do you drink?", "",
                                       "Do you drink every day?", "You feel torn about it."])]
    turns_file = tmp_path / "turns.jsonl"
    turns_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "scored"
    assert cli(["miti", "score", "--in", str(turns_file), "--out", str(out), "--model", str(tiny_miti),
                "--no-progress"]) == 0
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert [s["id"] for s in scores] == [str(i) for i in range(5)]
    assert all(abs(sum(s["probabilities"].values()) - 1) < 1e-4 for s in scores)
    assert scores[2]["label"] == "other" and scores[2]["probabilities"]["other"] == 1.0  # empty turn
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 5 and sum(summary["counts"].values()) == 5
    assert set(summary) >= {"r_q", "pct_complex_reflections", "pct_open_questions", "counts"}
    # A rerun reuses every line; another model's results are refused, then recomputed with --force.
    assert cli(["miti", "score", "--in", str(turns_file), "--out", str(out), "--model", str(tiny_miti), "--no-progress"]) == 0
    other = make_tiny_miti(tmp_path / "other", seed=1)
    capsys.readouterr()
    assert cli(["miti", "score", "--in", str(turns_file), "--out", str(out), "--model", str(other), "--no-progress"]) == 2
    assert "model" in capsys.readouterr().err.splitlines()[-1]
    assert cli(["miti", "score", "--in", str(turns_file), "--out", str(out), "--model", str(other),
                "--no-progress", "--force"]) == 0


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "client": "x"}', "therapist: missing field"),
    ('{"id": 1, "client": 3, "therapist": "y"}', "client: must be a string"),
    ("not json", "invalid JSON"),
])
def test_score_cli_bad_lines(tmp_path, tiny_miti, capsys, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 0, "client": "a", "therapist": "b"}\n' + line + "\n")
    assert cli(["miti", "score", "--in", str(bad), "--out", str(tmp_path / "o"), "--model", str(tiny_miti)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "scores.jsonl").exists()


def test_missing_artifact_is_a_clear_error(tmp_path, capsys):
    turns_file = tmp_path / "t.jsonl"
    turns_file.write_text('{"id": 0, "client": "a", "therapist": "b"}\n')
    assert cli(["miti", "score", "--in", str(turns_file), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "none")]) == 2
    assert "therapy-align miti train" in capsys.readouterr().err


def test_scorer_contract(tiny_miti):
    from miti.predictor import load
    from therapy_align.evaluation.scorers.miti import MitiScorer
    from therapy_align.scoring import Pair, Scorer

    scorer = MitiScorer(load(tiny_miti))
    assert isinstance(scorer, Scorer) and scorer.name == "miti"
    pairs = [Pair(id=str(i), seeker="I drink.", response=text) for i, text in enumerate(["Why?", "You drink.", "Ok"])]
    scores = scorer.score(pairs)
    columns = scorer.summarise(pairs, scores)
    assert set(columns) == {"R:Q", "%CR", "open %"}
    labels = [s["label"] for s in scores]
    assert scorer.predictor.predict(["I drink."] * 3, ["Why?", "You drink.", "Ok"]) == labels


def test_fast_training_on_a_slice(tmp_path, data_dir):
    recipe = load_recipe_module(REPO_ROOT / "recipes" / "miti_train.py", "miti_recipe_test")
    from miti.predictor import load
    from miti.training import train

    cfg = replace(recipe.FAST, data=replace(recipe.FAST.data, data_dir=str(data_dir), max_train_turns=96, max_eval_turns=48),
                  model=replace(recipe.FAST.model, max_length=32), train=replace(recipe.FAST.train, max_epochs=3))
    out = train(cfg, tmp_path / "miti", progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"classifier", "majority", "tfidf_logreg"}
    assert metrics["n_test_turns"] == 48 and metrics["n_train_turns"] == 96
    predictions = (out / "test_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 48
    assert not (tmp_path / "miti.checkpoints").exists()  # removed once the artifact is published
    labels = load(out).predict(["I drink a lot."], ["So you drink a lot."])
    assert len(labels) == 1
