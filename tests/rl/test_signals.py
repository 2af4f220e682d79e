"""recipes/rl_empathy.py (GRPO) stopped by SIGTERM after its first checkpoint: exit 143, a checkpoint of
the step it stopped at, no adapter and no metrics (nothing that looks finished)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.rl_runs import REPO_ROOT, env, sft_run, shared_root, small_rl_args, tiny_evaluator
from tests.rl.test_grpo_recipe import FAST, RECIPE

pytestmark = pytest.mark.integration


def sigterm_at_first_checkpoint(args: list[str], run_dir) -> tuple[int, str]:
    """Run ``args``, send SIGTERM once ``run_dir/checkpoint-1`` is complete; (exit status, stderr)."""
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while not (run_dir / "checkpoint-1" / "trainer_state.json").is_file():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr



@pytest.mark.slow  # over a minute with its tiny SFT run; the callback itself: tests/test_training_stops.py
def test_grpo_sigterm_exits_143_with_a_checkpoint_and_no_adapter(tmp_path):
    sft, evaluator = sft_run(), tiny_evaluator(shared_root())
    args = [sys.executable, "-P", str(RECIPE), *FAST, *small_rl_args(sft, evaluator, tmp_path, "stopped"),
            "--grpo.max_steps=50"]
    run_dir = tmp_path / "stopped"
    returncode, stderr = sigterm_at_first_checkpoint(args, run_dir)
    assert returncode == 143, stderr[-3000:]
    assert "interrupted by SIGTERM: nothing was published" in " ".join(stderr.split())
    assert not (run_dir / "adapter").exists() and not (run_dir / "metrics.json").exists()
    assert sorted(run_dir.glob("checkpoint-*"))[-1].joinpath("trainer_state.json").is_file()


@pytest.mark.slow  # sampling and scoring a round first
def test_dpo_sigterm_in_a_round_exits_143_and_leaves_the_round_unfinished(tmp_path):
    from tests.rl.test_dpo_recipe import FAST as DPO_FAST
    from tests.rl.test_dpo_recipe import RECIPE as DPO_RECIPE

    sft, evaluator = sft_run(), tiny_evaluator(shared_root())
    args = [sys.executable, str(DPO_RECIPE), *DPO_FAST, *small_rl_args(sft, evaluator, tmp_path, "stopped"),
            "--rounds=1", "--dpo.max_steps=50"]
    round_dir = tmp_path / "stopped" / "round-1"
    returncode, stderr = sigterm_at_first_checkpoint(args, round_dir)
    assert returncode == 143, stderr[-3000:]
    assert "interrupted by SIGTERM: nothing was published" in " ".join(stderr.split())
    # a round's adapter marks it finished for --resume: it must not exist
    assert not (round_dir / "adapter").exists() and not (tmp_path / "stopped" / "metrics.json").exists()
