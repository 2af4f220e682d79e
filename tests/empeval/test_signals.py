"""`empeval train` stopped by a signal (a scheduler's SIGTERM, Ctrl+C's SIGINT) after its first epoch:
it exits 143 / 130, publishes nothing (an earlier artifact at --out stays as it was), keeps the
epoch-end checkpoint, and the same command resumes from it. (SIGKILL: tests/empeval/test_cli.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def command(out):
    return [sys.executable, "-m", "empeval.cli", "train", "--out", str(out), "--max-epochs", "3", "--limit", "1",
            "--batch-size", "2", "--no-progress", "--threads", "1"]


def signal_after_first_epoch(out, signum) -> subprocess.CompletedProcess:
    last = out.with_name(out.name + ".checkpoints") / "last.ckpt"
    proc = subprocess.Popen(command(out), cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        size = -1
        while proc.poll() is None:  # last.ckpt written whole: the first epoch is done
            if last.exists() and last.stat().st_size == size > 0:
                break
            size = last.stat().st_size if last.exists() else -1
            time.sleep(0.3)
        if proc.poll() is not None:
            pytest.skip("training finished before it could be interrupted (machine unusually fast)")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def earlier_artifact(out):
    out.mkdir(parents=True)
    (out / "metrics.json").write_text('{"earlier": true}')
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_sigterm_exits_143_publishes_nothing_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "model"
    before = earlier_artifact(out)
    stopped = signal_after_first_epoch(out, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    err = " ".join(stopped.stderr.split())
    assert "interrupted by SIGTERM: nothing was published" in err and "rerun the same command to resume" in err
    assert "wrote" not in stopped.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert (tmp_path / "model.checkpoints" / "last.ckpt").is_file()
    assert not list(tmp_path.glob(".model.tmp-*"))


@pytest.mark.slow
def test_sigint_exits_130_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "model"
    stopped = signal_after_first_epoch(out, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert "interrupted by SIGINT" in stopped.stderr and not out.exists()

    rerun = subprocess.run(command(out), cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Restoring states from the checkpoint" in rerun.stderr
    assert json.loads((out / "metrics.json").read_text())["resumed"] is True
    assert not (tmp_path / "model.checkpoints").exists()


@pytest.mark.slow  # the stop itself is tested in seconds: tests/test_training_stops.py
def test_a_diverging_run_stops_with_an_error_and_publishes_nothing(tmp_path):
    out = tmp_path / "model"
    before = earlier_artifact(out)
    result = subprocess.run([*command(out), "--max-epochs", "2", "--train.learning_rate=1e30"], cwd=REPO_ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: loss: the training loss is nan at epoch 1" in " ".join(result.stderr.split())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
