"""What every door shares: an unknown command is refused in one line, a real process (the console
script, a recipe script) prints one ``error:`` line and no traceback, and ``--debug`` brings the
traceback back. The per-command cases live in ``tests/<package>/test_bad_inputs.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.bad_inputs import CONSOLE_SCRIPT, ENV, Case, assert_refused_in_one_line, case_ids

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- the root command ------------------------------------------------------------------------
    Case("root-unknown-command", ["trian"], ("trian",)),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------- real processes


@pytest.mark.parametrize("argv, names", [
    ([str(CONSOLE_SCRIPT), "data", "build", "--split", "full_plus", "--extra", "s.txt", "--out", "o"],
     ("s.txt:3", "speaker", "Clinet:")),
    ([sys.executable, str(REPO_ROOT / "recipes" / "sft_paper.py"), "--preset", "tiny", "--train.max_steps=-1"],
     ("--train.max_steps", ">= 1")),
    ([sys.executable, str(REPO_ROOT / "recipes" / "eval_paper.py"), "--preset", "tiny", "--limit=-5", "--out=ev"],
     ("limit", "-5")),
], ids=["console-script", "sft-recipe", "eval-recipe"])
def test_a_real_process_prints_one_line_and_no_traceback(argv, names, tmp_path):
    (tmp_path / "s.txt").write_text("T: Hello.\nC: Not great.\nClinet: I have been very sad lately.\nT: Tell me more.\n")
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert all(name in lines[0] for name in names), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"], "nothing written"


@pytest.mark.parametrize("how", ["--debug", "THERAPY_ALIGN_DEBUG=1"])
def test_debug_brings_the_traceback_back(how, tmp_path):
    argv = [str(CONSOLE_SCRIPT), "data", "show", str(tmp_path / "nope")] + (["--debug"] if how == "--debug" else [])
    env = {**ENV, "THERAPY_ALIGN_DEBUG": "1"} if how != "--debug" else ENV
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr and "no such dataset directory" in proc.stderr
