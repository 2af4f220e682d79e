"""`miti train` stopped by SIGTERM after its first epoch: exit 143, nothing published (an earlier
artifact at --out stays as it was), the epoch-end checkpoint kept for the rerun to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT

pytestmark = pytest.mark.integration


def test_sigterm_exits_143_publishes_nothing_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "miti"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}')
    last = tmp_path / "miti.checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "therapy_align.cli", "miti", "train", "--out", str(out), "--no-progress",
           f"--data.data_dir={DATA_DIR}", "--data.max_train_turns=64", "--data.max_eval_turns=16",
           "--model.max_length=32", "--train.max_epochs=500", "--train.threads=1"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        size = -1
        while proc.poll() is None:
            if last.exists() and last.stat().st_size == size > 0:
                break
            size = last.stat().st_size if last.exists() else -1
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be interrupted: {proc.stderr.read()[-3000:]}")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr[-3000:]
    assert "interrupted by SIGTERM: nothing was published" in " ".join(stderr.split())
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    assert (out / "metrics.json").read_text() == '{"earlier": true}'
    assert last.is_file()
