"""Train EMP-EVAL for a few steps on real EPITOME data with the installed command, run from a
working directory outside the checkout, then score through the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empeval.cli import app
from empeval.mechanisms import MECHANISMS
from tests.conftest import DATA_DIR

pytestmark = pytest.mark.integration

os.environ.setdefault("HF_HUB_OFFLINE", "1")
runner = CliRunner()

PAIRS = [
    {"id": "a", "seeker": "I feel so alone since my dog died.", "response": "I'm so sorry. How long did you have him?"},
    {"id": "b", "seeker": "Nothing matters anymore.", "response": "That sounds really hard, I have felt that way too."},
    {"id": "c", "seeker": "I can't sleep.", "response": ""},  # empty response: defined as level 0
    {"id": "d", "seeker": "Exams stress me out. " * 200, "response": "Have you talked to anyone? " * 200},  # truncated
    {"id": "e", "seeker": "My boss yells at me", "response": "Quit."},
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Two batches per split, one epoch, on a slice of the real EPITOME data: the installed console
    script, from a temporary working directory (no recipe, no checkout around it), with a relative --out."""
    workdir = tmp_path_factory.mktemp("elsewhere")
    command = Path(sys.executable).with_name("therapy-align")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(THERAPY_ALIGN_DATA=str(DATA_DIR), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [str(command), "empeval", "train", "--out", "model", "--limit", "2", "--max-epochs", "1", "--batch-size", "4",
         "--no-progress", "--train.num_workers=0"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote model" in result.stdout
    return workdir / "model"


def write_pairs(path, pairs):
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def score(model, pairs_path, out, *extra):
    return runner.invoke(
        app, ["score", "--model", str(model), "--in", str(pairs_path), "--out", str(out), "--no-progress", *extra]
    )


def test_training_writes_a_complete_artifact(tiny_model):
    for name in ("config.json", "empeval_model.safetensors", "empeval_config.json", "split.json", "metrics.json",
                 "tokenizer_config.json"):
        assert (tiny_model / name).is_file(), name
    split = json.loads((tiny_model / "split.json").read_text())
    assert set(split) == {"train", "dev", "test"}
    assert sum(len(v) for v in split.values()) == 3084
    assert not set(split["train"]) & set(split["test"])
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    for mechanism in MECHANISMS:
        assert 0.0 <= metrics[mechanism]["macro_f1"] <= 1.0
        assert 0.0 <= metrics[mechanism]["accuracy"] <= 1.0
        assert len(metrics[mechanism]["f1_per_level"]) == 3
    assert metrics["partial_test_split"] is True and set(metrics["decision_offsets"]) == set(MECHANISMS)
    # The installed command publishes the headline only; the studies' read-outs come from the recipe
    # (tests/research/test_training_read_outs.py).
    assert not {"variants", "epitome_protocol", "seeker_shuffle"} & set(metrics)
    assert not tiny_model.with_name(tiny_model.name + ".checkpoints").exists()  # cleaned after publishing


def test_score_writes_levels_probabilities_and_summary(tiny_model, tmp_path):
    out = tmp_path / "scores.jsonl"
    result = score(tiny_model, write_pairs(tmp_path / "pairs.jsonl", PAIRS), out, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [p["id"] for p in PAIRS]
    for line in lines:
        for mechanism in MECHANISMS:
            probabilities = line[mechanism]["probabilities"]
            assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1.0, abs=1e-4)
            assert line[mechanism]["level"] == max(range(3), key=probabilities.__getitem__)
    empty = lines[2]
    assert all(empty[m] == {"level": 0, "probabilities": [1.0, 0.0, 0.0]} for m in MECHANISMS)
    summary = json.loads((tmp_path / "scores.summary.json").read_text())
    assert summary["n"] == len(PAIRS) and set(summary["columns"]) == {"E", "I", "X", "final"}
    sums = [sum(line[m]["level"] for line in lines) for m in MECHANISMS]
    assert [summary["sums"][m] for m in MECHANISMS] == sums
    assert summary["final_score"] == pytest.approx(sum(w * s * 1000 / len(PAIRS) for w, s in zip((0.2, 0.4, 0.4), sums)))
    assert not (tmp_path / "scores.jsonl.part").exists()


def test_interrupted_scoring_resumes_without_redoing_finished_ids(tiny_model, tmp_path):
    from therapy_align.evaluation.scorers.empeval import EmpevalScorer
    from therapy_align.scoring import read_pairs, score_pairs

    pairs_path = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "scores.jsonl"
    part = tmp_path / "scores.jsonl.part"

    class Killed(Exception):
        pass

    class DiesAfterTwoPairs(EmpevalScorer):  # the real scorer, interrupted after its first chunk
        calls = 0

        def score(self, pairs):
            self.calls += 1
            if self.calls > 1:
                raise Killed
            return super().score(pairs)

    with pytest.raises(Killed):
        score_pairs(DiesAfterTwoPairs(tiny_model), read_pairs(pairs_path)[0], out, chunk_size=2)
    assert not out.exists() and part.read_text().count("\n") == 2
    kept = part.read_text()
    with open(part, "a") as handle:
        handle.write('{"id": "c", "emo')  # torn by the kill
    result = score(tiny_model, pairs_path, out)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c", "d", "e"]
    assert "\n".join(lines[:2]) + "\n" == kept  # the finished lines were reused, not recomputed
    assert json.loads(lines[2])["emotional_reactions"]["level"] == 0  # the torn line was redone
    assert not part.exists()

    changed = write_pairs(tmp_path / "pairs.jsonl", [dict(PAIRS[0], response="Another reply."), *PAIRS[1:]])
    refused = score(tiny_model, changed, out)
    assert refused.exit_code == 2 and "--force" in refused.output and "input" in refused.output
    assert out.read_text().splitlines() == lines
    forced = score(tiny_model, changed, out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_text().splitlines()[1:] == lines[1:] and out.read_text().splitlines()[0] != lines[0]


@pytest.mark.parametrize(
    "bad_line,expected",
    [
        ('{"id": "x", "seeker": "hi"', "pairs.jsonl:3: invalid JSON"),
        ('{"id": "x", "seeker": "hi"}', "pairs.jsonl:3: response: missing field"),
        ('{"id": "x", "seeker": "hi", "response": 3}', "pairs.jsonl:3: response: must be a string"),
        ('{"id": "a", "seeker": "hi", "response": "again"}', "pairs.jsonl:3: id: id 'a' repeats line 1"),
    ],
)
def test_bad_input_names_file_and_line(tiny_model, tmp_path, bad_line, expected):
    lines = [json.dumps(PAIRS[0]), json.dumps(PAIRS[1]), bad_line, json.dumps(PAIRS[4])]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(lines) + "\n")
    result = score(tiny_model, pairs, tmp_path / "scores.jsonl")
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split()), result.output
    assert not (tmp_path / "scores.jsonl").exists() and not (tmp_path / "scores.jsonl.part").exists()


def test_lenient_skips_and_counts_bad_lines(tiny_model, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIRS[0]) + "\n\nnot json\n" + json.dumps(PAIRS[1]) + "\n")
    result = score(tiny_model, pairs, tmp_path / "scores.jsonl", "--lenient")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "scores.summary.json").read_text())
    assert summary["n"] == 2 and summary["n_skipped"] == 1  # the blank line is not an error
    assert [m.split(":")[1] for m in summary["skipped_lines"]] == ["3"]


def test_output_over_its_input_is_refused(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    result = score(tiny_model, pairs, pairs)
    assert result.exit_code == 2 and "same path as the input" in " ".join(result.output.split())
    assert pairs.read_text().count("seeker") == len(PAIRS)


def test_python_api_and_trl_reward_function(tiny_model):
    import empeval

    evaluator = empeval.load(tiny_model)
    seekers, responses = [p["seeker"] for p in PAIRS], [p["response"] for p in PAIRS]
    scores = evaluator.score(seekers, responses, batch_size=2)
    assert len(scores) == len(PAIRS)
    # Batching and padding do not change the result.
    one_by_one = [evaluator.score([s], [r]).row(0) for s, r in zip(seekers, responses)]
    for index, row in enumerate(one_by_one):
        for m in MECHANISMS:
            assert row[m]["probabilities"] == pytest.approx(scores.probabilities[m][index], abs=1e-4)

    reward = empeval.make_reward_function(evaluator)
    assert reward.__name__ == "empeval_reward"
    plain = reward(prompts=seekers, completions=responses)
    conversational = reward(
        prompts=[[{"role": "system", "content": "Be kind."}, {"role": "user", "content": s}] for s in seekers],
        completions=[[{"role": "assistant", "content": r}] for r in responses],
        completion_ids=None,
    )
    assert len(plain) == len(PAIRS) and all(isinstance(v, float) for v in plain)
    assert plain == pytest.approx(conversational, abs=1e-6)
    assert plain[2] == 0.0  # empty completion
    assert all(0.0 <= v <= 2.0 for v in plain)
    expected = [0.2 * e + 0.4 * i + 0.4 * x for e, i, x in zip(*(scores.expected_levels(m) for m in MECHANISMS))]
    # `scores` ran at batch 2, the reward at the default batch: padding moves the 6-decimal probabilities by ~1e-6.
    assert plain == pytest.approx(expected, abs=1e-5)


def test_train_refuses_to_resume_checkpoints_of_other_settings(tmp_path):
    out = tmp_path / "model"
    work = tmp_path / "model.checkpoints"
    work.mkdir()
    (work / "train_config.json").write_text(json.dumps({"seed": 99}))
    result = runner.invoke(app, ["train", "--out", str(out), "--limit", "1", "--no-progress"])
    assert result.exit_code == 2
    assert "other settings" in " ".join(result.output.split()) and "--restart" in result.output
    assert not out.exists()


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL a real training run after its first epoch checkpoint, rerun the same command."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "model"
    last = tmp_path / "model.checkpoints" / "last.ckpt"
    command = [sys.executable, "-m", "empeval.cli", "train", "--out", str(out), "--max-epochs", "3",
               "--limit", "1", "--batch-size", "2", "--no-progress", "--threads", "1"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        size = -1
        while first.poll() is None:  # wait until last.ckpt exists and is completely written
            if last.exists() and last.stat().st_size == size > 0:
                break
            size = last.stat().st_size if last.exists() else -1
            time.sleep(0.3)
        if first.poll() is not None:
            pytest.skip("training finished before it could be interrupted (machine unusually fast)")
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert not out.exists() and last.exists()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Restoring states from the checkpoint" in rerun.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed"] is True
    assert not last.parent.exists()
