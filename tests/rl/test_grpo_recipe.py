"""recipes/rl_empathy.py --preset tiny on CPU, cut to seconds: the frozen `ref` adapter exists and
the KL at step 1 is 0; judge.jsonl, model card, an adapter that `therapy-align generate` loads;
--resume continues; a kill mid-run resumes (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.rl_runs import (REPO_ROOT, env, run, shared_root, sft_run, small_rl_args,
                                           tiny_evaluator)

pytestmark = pytest.mark.integration

RECIPE = REPO_ROOT / "recipes" / "rl_empathy.py"
FAST = ["--preset", "tiny", "--grpo.num_generations=2", "--grpo.per_device_train_batch_size=4",
        "--grpo.max_completion_length=8", "--grpo.save_steps=1", "--run.wandb=false", "--judge.every_steps=2"]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    sft, evaluator = sft_run(), tiny_evaluator(shared_root())
    args = [sys.executable, str(RECIPE), *FAST, *small_rl_args(sft, evaluator, root, "grpo")]
    first = run([*args, "--grpo.max_steps=2"])
    assert first.returncode == 0, first.stderr[-4000:]
    resumed = run([*args, "--grpo.max_steps=3", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return root / "grpo", args


def test_ref_adapter_exists_and_kl_at_step_one_is_zero(grpo_run):
    run_dir, _ = grpo_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["adapters"] == ["default", "ref"]
    steps = {row["step"]: row for row in metrics["log_history"] if "kl" in row}
    assert steps[1]["kl"] == 0.0
    assert (run_dir / "checkpoint-1" / "ref" / "adapter_model.safetensors").is_file()  # TRL's frozen copy
    assert not (run_dir / "adapter" / "ref").exists()  # the saved policy is the trained adapter only
    for term in ("empeval", "specificity", "template", "copy", "repetition", "questions", "length", "safety"):
        assert f"rewards/{term}/mean" in steps[1]


def test_resume_judging_and_model_card(grpo_run):
    run_dir, _ = grpo_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["resumed_from"] == "checkpoint-2"
    rows = [json.loads(line) for line in (run_dir / "judge.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 2, 3] and all(row["n"] == 2 for row in rows)
    for key in ("reward_total", "judge_final", "len_tokens", "distinct_2", "template_rate", "specificity", "kl"):
        assert key in rows[-1]
    card = (run_dir / "README.md").read_text()
    assert "show that the machinery runs, not that the model became more empathetic" in card and "| step |" in card
    config = json.loads((run_dir / "config.json").read_text())
    assert config["grpo"]["beta"] > 0 and config["grpo"]["loss_type"] == "dapo" and config["base_model"].endswith("tiny-llama-2")


def test_generate_loads_the_rl_adapter(grpo_run, tmp_path):
    run_dir, _ = grpo_run
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"id": "a", "text": "I feel alone."}\n{"id": "b", "text": "I cannot sleep."}\n')
    proc = run([str(REPO_ROOT / ".venv" / "bin" / "therapy-align"), "generate", "--model", str(run_dir),
                "--inputs", str(inputs), "--out", str(tmp_path / "gens.jsonl"), "--max-new-tokens", "4"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len((tmp_path / "gens.jsonl").read_text().splitlines()) == 2


def test_curves_and_a_comparison_are_drawn_from_the_runs_logs(grpo_run, tmp_path):
    run_dir, _ = grpo_run
    cli = str(REPO_ROOT / ".venv" / "bin" / "therapy-align")
    for argv in (["curves", str(run_dir)], ["compare", f"guarded={run_dir}", f"again={run_dir}"]):
        out = tmp_path / f"{argv[0]}.png"
        proc = run([cli, "reward", *argv, "--out", str(out)], timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run([cli, "reward", "compare", str(run_dir), str(run_dir), "--out", str(tmp_path / "twice.png")], timeout=300)
    assert proc.returncode == 2 and "labelled" in proc.stderr and not (tmp_path / "twice.png").exists()


@pytest.mark.slow
def test_a_killed_run_resumes(tmp_path):
    sft, evaluator = sft_run(), tiny_evaluator(shared_root())
    args = [sys.executable, "-P", str(RECIPE), *FAST, *small_rl_args(sft, evaluator, tmp_path, "killed"), "--grpo.max_steps=5"]
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900
    try:
        while not (run_dir / "checkpoint-2" / "trainer_state.json").is_file():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (run_dir / "metrics.json").exists()
    resumed = run([*args, "--resume"], timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 5 and metrics["resumed_from"].startswith("checkpoint-")
    steps = [row["step"] for row in metrics["log_history"] if "kl" in row]
    assert steps == sorted(set(steps)) and steps[-1] == 5
