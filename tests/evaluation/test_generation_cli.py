"""`therapy-align generate` as a user runs it: a real subprocess, killed midway and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT

pytestmark = pytest.mark.integration

INPUTS = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"
ENV = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1"}  # tiny model: one thread is faster than two contending ones


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "therapy_align.cli", *args]


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def first_ids(n: int) -> list[str]:
    with INPUTS.open() as handle:
        return [json.loads(next(handle))["id"] for _ in range(n)]


def test_killed_generation_resumes_with_each_id_exactly_once(tmp_path):
    out = tmp_path / "gens.jsonl"
    part = tmp_path / "gens.jsonl.part"
    limit = 16
    args = ("generate", "--model", "tiny-base", "--prompt", "new", "--inputs", str(INPUTS), "--out", str(out),
            "--limit", str(limit), "--max-new-tokens", "32")
    proc = subprocess.Popen(cli(*args, "--batch-size", "1"), cwd=REPO_ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if part.is_file() and part.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "generation ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # <out> appears only when every input is done
    partial = ids_in(part) if part.read_text().endswith("\n") else ids_in(part)[:-1]
    assert 2 <= len(partial) < limit
    with open(part, "a") as handle:  # and, in case the kill fell between writes, a torn line too
        handle.write('{"id": "rmh-0015", "text": "half a li')

    done = run_cli(*args, "--batch-size", "8")
    assert done.returncode == 0, done.stderr
    assert "torn last line" in done.stderr and "resumed" in done.stderr
    ids = ids_in(out)
    assert ids == first_ids(limit)  # every id exactly once, in input order
    assert not part.exists()
    record = json.loads(out.read_text().splitlines()[0])
    assert record["prompt"] == "new" and record["model"] == "tiny-base" and record["new_tokens"] >= 1

    again = run_cli(*args)
    assert again.returncode == 0 and f"{limit}/{limit} inputs done (0 generated now" in " ".join(again.stderr.split())
    assert len(ids_in(out)) == limit

    changed = run_cli(*args, "--max-new-tokens", "8")  # other settings: refused, the file kept
    message = " ".join(changed.stderr.split())
    assert changed.returncode == 2 and "settings" in message and "--force" in message
    assert ids_in(out) == ids
    forced = run_cli(*args[:-2], "--max-new-tokens", "4", "--force", "--batch-size", "16")
    assert forced.returncode == 0, forced.stderr
    assert ids_in(out) == ids and all(json.loads(line)["new_tokens"] <= 4 for line in out.read_text().splitlines())


def test_bad_input_line_is_named_or_skipped_with_lenient(tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"id": "a", "text": "I feel alone."}\n\n{"id": "b"}\n{"id": "c", "text": "Work is too much."}\n')
    out = tmp_path / "o.jsonl"
    strict = run_cli("generate", "--model", "tiny-base", "--inputs", str(inputs), "--out", str(out))
    assert strict.returncode == 2
    assert f"{inputs}:3: text: missing field" in "".join(strict.stderr.split("\n"))
    assert "Traceback" not in strict.stderr and not out.exists()
    lenient = run_cli("generate", "--model", "tiny-base", "--inputs", str(inputs), "--out", str(out),
                      "--lenient", "--max-new-tokens", "4")
    assert lenient.returncode == 0, lenient.stderr
    assert "skipped 1 bad input line" in lenient.stderr
    assert ids_in(out) == ["a", "c"]


def test_unknown_prompt_and_bad_model_fail_fast_with_clear_messages(tmp_path):
    unknown = run_cli("generate", "--model", "tiny-base", "--prompt", "nope", "--out", str(tmp_path / "o.jsonl"))
    assert unknown.returncode == 2
    message = " ".join(unknown.stderr.split())
    assert "unknown system prompt 'nope'" in message and "interpret_connect" in message and "standard" in message

    not_a_run = tmp_path / "runs" / "empty"
    not_a_run.mkdir(parents=True)
    started = time.monotonic()
    bad = run_cli("generate", "--model", str(not_a_run), "--out", str(tmp_path / "o.jsonl"), "--limit", "1")
    assert bad.returncode == 2
    message = " ".join(bad.stderr.split())
    assert "neither a model" in message and "adapter missing" in message
    missing = run_cli("generate", "--model", "runs/does-not-exist", "--out", str(tmp_path / "o.jsonl"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert time.monotonic() - started < 120


def test_a_reply_budget_beyond_the_models_window_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "o.jsonl"
    result = run_cli("generate", "--model", "tiny-base", "--out", str(out), "--limit", "1", "--max-new-tokens", "5000")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "generation.max_new_tokens" in message and "must be below 4096" in message and "got 5000" in message
    assert "Traceback" not in result.stderr and not out.exists() and not Path(f"{out}.part").exists()
