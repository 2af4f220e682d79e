"""Scoring killed mid-file (SIGKILL: no cleanup runs) and rerun: every id exactly once, the lines
finished before the kill kept as they were, the scores those of an uninterrupted run. (Generation
killed mid-file: tests/evaluation/test_generation_cli.py.)"""

from __future__ import annotations

import pytest
import json
import os
import signal
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from empeval.cli import app
from tests.conftest import REPO_ROOT
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration

# Scores two pairs per chunk with the real scorer, and kills its own process in the third chunk.
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from therapy_align.evaluation.scorers.empeval import EmpevalScorer
    from therapy_align.scoring import read_pairs, score_pairs

    class KilledInThirdChunk(EmpevalScorer):
        calls = 0
        def score(self, pairs):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().score(pairs)

    artifact, pairs, out = sys.argv[1:]
    score_pairs(KilledInThirdChunk(artifact), read_pairs(pairs)[0], out, chunk_size=2)
""")


def test_scoring_killed_mid_file_resumes_with_each_id_once(tmp_path):
    artifact = make_tiny_evaluator(tmp_path / "evaluator")
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"id": f"p{i}", "seeker": f"I have felt low for {i} weeks.", "response": f"Tell me more about week {i}."}
            for i in range(10)]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out, part = tmp_path / "scores.jsonl", tmp_path / "scores.jsonl.part"

    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(artifact), str(pairs), str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    before = part.read_text().splitlines(keepends=True)
    assert len(before) == 4  # two chunks of two
    with open(part, "a") as handle:
        handle.write('{"id": "p4", "emotional_rea')  # as if the kill had hit a write

    runner = CliRunner()
    resumed = runner.invoke(app, ["score", "--model", str(artifact), "--in", str(pairs), "--out", str(out),
                                  "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    lines = out.read_text().splitlines(keepends=True)
    assert [json.loads(line)["id"] for line in lines] == [row["id"] for row in rows]  # each id once, in order
    assert lines[:4] == before and not part.exists()

    fresh = runner.invoke(app, ["score", "--model", str(artifact), "--in", str(pairs),
                                "--out", str(tmp_path / "fresh.jsonl"), "--no-progress"])
    assert fresh.exit_code == 0, fresh.output
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "_made_from"} for line in text.splitlines()]  # noqa: E731
    assert strip(out.read_text()) == strip((tmp_path / "fresh.jsonl").read_text())
