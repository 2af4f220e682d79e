"""`recipes/sft_paper.py` stopped by SIGTERM mid-run exits 143 with a checkpoint of the step it stopped
at and no adapter, and `--resume` finishes it; a run whose weights turn non-finite exits 2 naming them
and saves no adapter. (SIGKILL and resume: tests/training/test_sft_recipe.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.training.test_sft_recipe import RECIPE, REPO_ROOT, SMALL, env, run

pytestmark = pytest.mark.integration

COMMON = [*SMALL, "--run.heldout_eval=false", "--run.wandb=false", "--train.logging_steps=1"]


def sigterm_after_first_step(run_dir) -> subprocess.CompletedProcess:
    """SIGTERM once the first loss is logged; the rest of the output."""
    cmd = [sys.executable, str(RECIPE), *COMMON, f"--runs_dir={run_dir.parent}", f"--name={run_dir.name}",
           "--train.max_steps=200", "--train.save_steps=100"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "'loss'" in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(seen) + rest, "")


def test_sigterm_exits_143_with_a_checkpoint_and_no_adapter(tmp_path):
    run_dir = tmp_path / "stopped"
    stopped = sigterm_after_first_step(run_dir)
    assert stopped.returncode == 143, stopped.stdout[-3000:]
    assert "interrupted by SIGTERM: nothing was published" in " ".join(stopped.stdout.split())
    checkpoints = sorted(run_dir.glob("checkpoint-*"))
    assert checkpoints and (checkpoints[-1] / "trainer_state.json").is_file()  # the step it stopped at
    assert not (run_dir / "adapter").exists() and not (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_sigterm_then_resume_finishes_the_run(tmp_path):
    run_dir = tmp_path / "stopped"
    assert sigterm_after_first_step(run_dir).returncode == 143
    step = int(sorted(run_dir.glob("checkpoint-*"))[-1].name.split("-")[1])
    resumed = run([sys.executable, str(RECIPE), *COMMON, f"--runs_dir={tmp_path}", "--name=stopped",
                   f"--train.max_steps={step + 2}", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] == f"checkpoint-{step}" and metrics["global_step"] == step + 2
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_weights_turned_non_finite_exit_2_and_save_no_adapter(tmp_path):
    result = run([sys.executable, str(RECIPE), *COMMON, f"--runs_dir={tmp_path}", "--name=diverged",
                  "--train.learning_rate=1e30", "--train.max_steps=6", "--train.save_steps=1"])
    assert result.returncode == 2, result.stderr[-3000:]
    err = " ".join(result.stderr.split())
    assert "error: weights: the trainable weight" in err and "became non-finite at step" in err
    assert "no adapter was saved" in err
    assert not (tmp_path / "diverged" / "adapter").exists()
    assert not (tmp_path / "diverged" / "metrics.json").exists()
