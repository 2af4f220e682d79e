"""The small RL presets on the real small model, Gemma 3 270M, cut to one GRPO step and one DPO
round on a few prompts, from a one-step small SFT run, with the random tiny EMP-EVAL as reward and
judge (what is measured here is that the presets run, not what RL does). Slow: minutes on two
cores; skipped where the model is absent."""

from __future__ import annotations

import json
import sys

import pytest

from tests.fixtures.real_model import GEMMA, REPO_ROOT, make_sft_run, require_gemma, run
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """``(runs dir, the small SFT run, the tiny evaluator)``."""
    require_gemma()
    root = tmp_path_factory.mktemp("real-rl")
    return root, make_sft_run(root, "small-sft"), make_tiny_evaluator(root / "empeval-tiny")


def minimal(sft, evaluator, runs, name: str) -> list[str]:
    return [f"--runs_dir={runs}", f"--name={name}", f"--model.sft_run={sft}", f"--reward.empeval_path={evaluator}",
            f"--judge.judge_path={evaluator}", "--judge.n_inputs=2", "--judge.generation.max_new_tokens=8",
            "--prompts.counselchat=2", "--prompts.annomi=2", "--run.wandb=false"]


def test_one_grpo_step_of_the_small_preset(start):
    runs, sft, evaluator = start
    proc = run([sys.executable, str(REPO_ROOT / "recipes" / "rl_empathy.py"), "--preset", "small",
                *minimal(sft, evaluator, runs, "grpo"), "--grpo.max_steps=1", "--grpo.num_generations=2",
                "--grpo.per_device_train_batch_size=2", "--grpo.max_completion_length=16", "--grpo.save_steps=1"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_dir = runs / "grpo"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 1 and metrics["adapters"] == ["default", "ref"]
    step = next(row for row in metrics["log_history"] if "kl" in row)
    assert step["kl"] == 0.0 and "rewards/empeval/mean" in step
    config = json.loads((run_dir / "config.json").read_text())
    assert config["base_model"] == GEMMA and config["preset"] == "small" and config["model"]["dtype"] == "auto"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert "Small preset: Gemma 3 270M" in (run_dir / "README.md").read_text()
    judged = [json.loads(line) for line in (run_dir / "judge.jsonl").read_text().splitlines()]
    assert [row["step"] for row in judged] == [0, 1] and all(row["len_tokens"] <= 8 for row in judged)


def test_one_dpo_round_of_the_small_preset(start):
    runs, sft, evaluator = start
    proc = run([sys.executable, str(REPO_ROOT / "recipes" / "dpo_empathy.py"), "--preset", "small",
                *minimal(sft, evaluator, runs, "dpo"), "--rounds=1", "--sampling.prompts_per_round=2",
                "--sampling.n_per_prompt=2", "--sampling.generation.max_new_tokens=16",
                "--pairs.min_margin=0", "--pairs.max_length_ratio=100", "--dpo.max_steps=1",
                "--dpo.per_device_train_batch_size=2", "--dpo.save_steps=1"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_dir = runs / "dpo"
    samples = [json.loads(line) for line in (run_dir / "round-1" / "samples.jsonl").read_text().splitlines()]
    samples = [s for s in samples if "response" in s]
    assert len(samples) == 4 and all(0 < s["new_tokens"] <= 16 for s in samples)
    assert not any("<start_of_turn>" in s["response"] or s["response"].startswith("user\n") for s in samples)
    assert (run_dir / "round-1" / "pairs.jsonl").read_text().strip()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 1
    assert json.loads((run_dir / "config.json").read_text())["base_model"] == GEMMA
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
