"""What is never overwritten, and file-system errors as one line.

The guard (``therapy_align.files.check_output_path``) refuses an output, or any file written with it
(its ``.part``, its summary), that is an input by path, through a symlink or as a hard link; a
device node or pipe as an output; and a side file of someone's own without ``--force``. The
file-system errors (disk full, read-only, name too long, a file in the way) are simulated at the
lowest level, the real ``os`` call raising a real errno, since tests may run as root (who ignores
chmod). Every case checks the exit status, the message, and that no input changed byte for byte.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.bad_inputs import CONSOLE_SCRIPT, ENV, MESSAGES, PAIRS3, TURNS, run_door
from therapy_align.errors import FileSystemError, UserError, exit_on_user_error
from therapy_align.files import (append_jsonl, atomic_write_json, atomic_write_text, check_output_path, same_file,
                                 store_side_files, summary_beside)
from therapy_align.store import ResultStore

SAFETY = ["safety", "check", "--no-semantic", "--no-learned", "--no-progress"]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def refused(argv: list[str], capsys, *names: str) -> str:
    """Run ``therapy-align argv`` in-process; assert exit 2 and one ``error:`` line, the last (after at
    most the line saying which detector runs), naming ``names``."""
    capsys.readouterr()
    status = run_door("cli", argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert status == 2, err
    assert len(errors) == 1 and lines[-1] == errors[0] and len(lines) <= 2 and "Traceback" not in err, err
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


# ---------------------------------------------------------------------------------------- inputs never outputs


@pytest.mark.parametrize("how", ["summary", "part", "part-force", "symlink", "hardlink"])
def test_safety_check_never_writes_over_its_input(how, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "f.jsonl"
    if how == "summary":
        source = tmp_path / "f.summary.json"
    elif how.startswith("part"):
        source = tmp_path / "f.jsonl.part"
    else:
        source = tmp_path / "m.jsonl"
    source.write_text(MESSAGES)
    if how == "symlink":
        out.symlink_to(source)
    if how == "hardlink":
        os.link(source, out)
    before = snapshot(tmp_path)
    argv = [*SAFETY, "--in", str(source), "--out", str(out)] + (["--force"] if how == "part-force" else [])
    message = refused(argv, capsys, str(source), "--out", "input")
    assert "--force" not in message and "--overwrite" not in message  # no advice that destroys the input
    assert snapshot(tmp_path) == before
    assert source.read_text() == MESSAGES


def test_a_device_node_is_never_an_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    before = os.stat("/dev/null")
    refused([*SAFETY, "--in", "m.jsonl", "--out", "/dev/null"], capsys, "/dev/null", "regular file")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
    assert not Path("/dev/null.part").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_a_fifo_is_never_an_output(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    os.mkfifo(tmp_path / "pipe.jsonl")
    refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "pipe.jsonl")], capsys,
            "pipe.jsonl", "regular file")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.jsonl").st_mode)


def test_someones_summary_file_needs_force(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    (tmp_path / "f.summary.json").write_text("my own notes\n")
    before = snapshot(tmp_path)
    argv = [*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f.jsonl")]
    refused(argv, capsys, "f.summary.json", "--force")
    assert snapshot(tmp_path) == before
    capsys.readouterr()
    assert run_door("cli", [*argv, "--force"]) == 0  # asked for: replaced
    assert (tmp_path / "f.jsonl").is_file() and '"n": 1' in (tmp_path / "f.summary.json").read_text()
    # a rerun of that output rewrites its own summary without --force
    assert run_door("cli", argv) == 0


def test_a_rerun_still_resumes_and_rewrites_its_summary(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    argv = [*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f.jsonl")]
    assert run_door("cli", argv) == 0
    first = (tmp_path / "f.jsonl").read_bytes()
    assert run_door("cli", argv) == 0
    assert (tmp_path / "f.jsonl").read_bytes() == first


def test_miti_score_never_writes_over_its_input(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "scores.jsonl.part").write_text(TURNS)
    before = snapshot(tmp_path)
    message = refused(["miti", "score", "--in", str(tmp_path / "o" / "scores.jsonl.part"), "--out", str(tmp_path / "o"),
                       "--force", "--no-progress"], capsys, "scores.jsonl.part", "input")
    assert "--force" not in message
    assert snapshot(tmp_path) == before


def test_generate_never_writes_over_its_input(tmp_path, capsys):
    (tmp_path / "g.jsonl.part").write_text('{"id": "q1", "text": "I feel alone."}\n')
    before = snapshot(tmp_path)
    refused(["generate", "--model", "tiny-base", "--inputs", str(tmp_path / "g.jsonl.part"),
             "--out", str(tmp_path / "g.jsonl"), "--force"], capsys, "g.jsonl.part", "input")
    assert snapshot(tmp_path) == before


def test_reward_score_never_writes_over_its_input(tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text(PAIRS3)
    os.link(tmp_path / "p.jsonl", tmp_path / "r.jsonl.part")
    before = snapshot(tmp_path)
    refused(["reward", "score", "--in", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "r.jsonl")], capsys,
            "p.jsonl", "link")
    assert snapshot(tmp_path) == before


def test_miti_human_and_safety_eval_refuse_a_directory_or_device_out(tmp_path, capsys):
    refused(["miti", "human", "--out", "/dev/null"], capsys, "/dev/null", "regular file")
    refused(["safety", "eval", "--out", str(tmp_path)], capsys, str(tmp_path), "directory")


def test_the_guard_names_every_written_file(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(MESSAGES)
    out = tmp_path / "in.jsonl.summary"  # unrelated by name: only its side file collides
    with pytest.raises(UserError, match="side file"):
        check_output_path(out, inputs=[source], side_files=[tmp_path / "x", source])
    assert same_file(source, source) and not same_file(source, tmp_path / "absent")
    assert store_side_files(tmp_path / "a.jsonl") == [tmp_path / "a.jsonl.part"]
    assert summary_beside(tmp_path / "a.jsonl") == tmp_path / "a.summary.json"


# ---------------------------------------------------------------------------------------- file-system errors


def fail_with(code: int):
    def raiser(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return raiser


@pytest.mark.parametrize("code, what", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied"), (errno.EPERM, "not permitted")])
def test_atomic_write_failure_is_one_line_naming_the_path(code, what, tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    monkeypatch.setattr(os, "replace", fail_with(code))
    with pytest.raises(FileSystemError, match=what) as caught:
        atomic_write_json(target, {"new": True})
    assert str(target) in str(caught.value)
    assert target.read_text() == '{"old": true}\n'  # the earlier output is as it was
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_disk_full_while_appending_keeps_the_part_for_the_resume(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.jsonl", made_from={"model": "m"})
    store.start({"a": "x", "b": "y"})
    store.append([{"id": "a", "v": 1}])
    kept = store.part.read_bytes()
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC))
    with pytest.raises(FileSystemError, match="no space left") as caught:
        store.append([{"id": "b", "v": 2}])
    assert "r.jsonl.part" in str(caught.value)
    assert store.part.read_bytes().startswith(kept)  # what was finished is still there
    monkeypatch.undo()
    resumed = ResultStore(tmp_path / "r.jsonl", made_from={"model": "m"})
    assert "a" not in resumed.start({"a": "x", "b": "y"})


def test_safety_check_disk_full_exits_2_in_one_line_and_keeps_the_part(tmp_path, capsys, monkeypatch):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC))
    refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f.jsonl")], capsys,
            "f.jsonl.part", "no space left")
    assert (tmp_path / "m.jsonl").read_text() == MESSAGES
    assert not (tmp_path / "f.jsonl").exists()


def test_a_name_too_long_and_a_file_in_the_way_are_real_errors(tmp_path, capsys):
    long_name = tmp_path / ("n" * 300 + ".json")
    with pytest.raises(FileSystemError, match="too long"):
        atomic_write_text(long_name, "x")  # the real ENAMETOOLONG of the file system
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    with pytest.raises(FileSystemError, match="in the way|not a directory"):
        atomic_write_text(tmp_path / "m.jsonl" / "sub" / "x.json", "x")  # a regular file as a parent
    with pytest.raises(FileSystemError, match="not a directory"):
        append_jsonl(tmp_path / "m.jsonl" / "x.jsonl", [{"id": 1}])
    before = snapshot(tmp_path)
    refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / ("o" * 250 + ".jsonl"))], capsys,
            "too long", "--out")
    refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "m.jsonl" / "o.jsonl")], capsys,
            "not a directory", "--out")
    assert snapshot(tmp_path) == before


def test_a_read_only_directory_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # As root chmod is ignored: the read-only answer comes from the access check itself, as on a
    # read-only mount.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked and mode & os.W_OK
                        else real_access(path, mode, **kw))
    refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(locked / "f.jsonl")], capsys,
            str(locked), "not writable")
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_chmod_read_only_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(MESSAGES)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused([*SAFETY, "--in", str(tmp_path / "m.jsonl"), "--out", str(locked / "f.jsonl")], capsys,
                str(locked), "not writable")
    finally:
        locked.chmod(0o700)


def test_an_os_error_from_a_library_writer_is_one_line(capsys):
    def write_checkpoint():
        raise OSError(errno.EROFS, "Read-only file system", "/mnt/ro/checkpoint-1")

    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(write_checkpoint)()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: /mnt/ro/checkpoint-1: read-only file system; "
                                               "choose a path on a writable file system")

    def a_bug():
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError):  # not the user's to fix: keeps its traceback
        exit_on_user_error(a_bug)()


# ---------------------------------------------------------------------------------------- pipes


@pytest.mark.parametrize("argv", [["--help"], ["empeval", "train", "--help"], ["safety", "check", "--help"]])
def test_help_into_a_closed_pipe_has_no_traceback(argv):
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), *argv], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written (`| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert proc.returncode in (0, 1)


def test_help_into_head_prints_its_first_line():
    proc = subprocess.run(f"'{CONSOLE_SCRIPT}' empeval train --help | head -1", shell=True, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("Train EMP-EVAL") and "Traceback" not in proc.stderr, proc.stderr


def test_empeval_probe_into_a_read_only_artifact_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    art = tmp_path / "art"
    art.mkdir()
    (art / "empeval_config.json").write_text("{}")
    before = snapshot(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == art and mode & os.W_OK
                        else real_access(path, mode, **kw))  # a read-only mount, as root sees it
    refused(["empeval", "probe", "--model", str(art)], capsys, str(art), "--model", "not writable")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("link", ["inside", "hardlink"])
def test_data_build_never_advises_overwrite_over_an_input(link, tmp_path, capsys):
    from tests.fixtures.bad_inputs import SESSION

    out = tmp_path / "o"
    out.mkdir()
    (out / "stats.json").write_text("{}")
    session = out / "s.txt" if link == "inside" else tmp_path / "s.txt"
    session.write_text(SESSION)
    if link == "hardlink":
        os.link(session, out / "copy.txt")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        message = refused(["data", "build", "--split", "full_plus", "--extra", str(session), "--out", str(out), *extra],
                          capsys, str(out), "holds the input", str(session))
        assert "--overwrite" not in message
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------- whole reports never replace a file unasked


@pytest.mark.parametrize("argv", [["safety", "eval", "--out", "{file}"], ["safety", "eval", "--plot", "{file}"],
                                  ["miti", "human", "--out", "{file}"]])
def test_a_report_onto_an_existing_file_is_refused_without_force(argv, tmp_path, capsys):
    mine = tmp_path / "mine.json"
    mine.write_text("my own notes\n")
    message = refused([part.format(file=mine) for part in argv], capsys, str(mine), "--force")
    assert "exists" in message and mine.read_text() == "my own notes\n"


@pytest.mark.parametrize("command", ["curves", "compare"])
def test_rl_curves_onto_an_existing_file_is_refused_without_force(command, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    (run / "config.json").write_text("{}")
    mine = tmp_path / "curves.png"
    mine.write_bytes(b"mine")
    refused(["reward", command, str(run), "--out", str(mine)], capsys, str(mine), "--force")
    assert mine.read_bytes() == b"mine"


def test_rl_compare_never_writes_over_a_runs_log(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    refused(["reward", "compare", f"a={run}", "--out", str(run / "metrics.json")], capsys, "metrics.json")
    assert (run / "metrics.json").read_text() == "{}"
