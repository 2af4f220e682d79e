"""Shared by the RL recipe tests: a 1-step tiny SFT run made by recipes/sft_paper.py (a real SFT
adapter layout), the tiny random EMP-EVAL, and the small overrides that keep an RL run to seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from tests.integration.evaluator_fixture import make_tiny_evaluator

REPO_ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.update(ACCELERATE_USE_CPU="true", WANDB_MODE="offline", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return out


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    if cmd[0] == sys.executable:  # -P: a module in recipes/ must never shadow a package
        cmd = [cmd[0], "-P", *cmd[1:]]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env(), capture_output=True, text=True, timeout=timeout)


@lru_cache(maxsize=1)
def shared_root() -> Path:
    """One temporary folder per test process for what the RL tests share (SFT run, evaluator)."""
    return Path(tempfile.mkdtemp(prefix="rl-tests-"))


@lru_cache(maxsize=1)
def sft_run() -> Path:
    """The tiny SFT run, made once per test process and shared by the GRPO and DPO tests."""
    return make_sft_run(shared_root())


def make_sft_run(runs: Path) -> Path:
    """runs/sft: the tiny SFT preset cut to one 256-token step (no held-out loss, no wandb)."""
    proc = run([sys.executable, str(REPO_ROOT / "recipes" / "sft_paper.py"), "--preset", "tiny", f"--runs_dir={runs}",
                "--name=sft", "--data.max_train_rows=4", "--train.max_length=256", "--train.per_device_train_batch_size=1",
                "--train.max_steps=1", "--train.save_steps=1", "--train.warmup_steps=0", "--train.heldout_eval=false",
                "--train.wandb=false"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    return runs / "sft"


def small_rl_args(sft: Path, evaluator: Path, runs: Path, name: str) -> list[str]:
    return [f"--runs_dir={runs}", f"--name={name}", f"--model.sft_run={sft}", f"--reward.empeval_path={evaluator}",
            f"--judge.judge_path={evaluator}", "--judge.n_inputs=2", "--judge.generation.max_new_tokens=8",
            "--prompts.counselchat=6", "--prompts.annomi=6"]


def tiny_evaluator(root: Path) -> Path:
    return make_tiny_evaluator(root / "empeval-tiny")
