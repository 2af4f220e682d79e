"""`therapy-align safety check`: strict input, flags and summary, resume, exit 2 on user errors."""

from __future__ import annotations

import pytest
import json

from typer.testing import CliRunner

from therapy_align.safety.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(autouse=True)
def away_from_artifacts(tmp_path, monkeypatch):
    """Run where no artifacts/safety exists, so the rules alone decide whatever is trained here."""
    monkeypatch.chdir(tmp_path)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_check_writes_flags_and_a_summary_and_resumes(tmp_path):
    messages = write_lines(tmp_path / "messages.jsonl", [
        json.dumps({"id": "m1", "text": "i want to kms"}),
        json.dumps({"id": 2, "text": "this homework is killing me"}),
        json.dumps({"id": "m3", "text": "My boyfriend threatened to kill me if I leave"}),
    ])
    out = tmp_path / "flags.jsonl"
    result = runner.invoke(app, ["check", "--in", str(messages), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["m1", "2", "m3"]
    assert [r["crisis"] for r in rows] == [True, False, True]
    assert [r["category"] for r in rows] == ["suicidal_ideation", None, "abuse_or_danger"]
    assert all(set(r) >= {"id", "crisis", "category", "score", "reason"} for r in rows)
    summary = json.loads((tmp_path / "flags.summary.json").read_text())
    assert summary["n"] == 3 and summary["crisis"] == 2
    assert summary["by_category"] == {"suicidal_ideation": 1, "abuse_or_danger": 1}

    before = out.read_text()
    again = runner.invoke(app, ["check", "--in", str(messages), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0 and out.read_text() == before  # resumed: nothing recomputed

    # a changed input under an existing id is stale: refused (exit 2), recomputed with --force
    write_lines(messages, [json.dumps({"id": "m1", "text": "I had a nice day"}),
                           json.dumps({"id": 2, "text": "this homework is killing me"}),
                           json.dumps({"id": "m3", "text": "My boyfriend threatened to kill me if I leave"})])
    stale = runner.invoke(app, ["check", "--in", str(messages), "--out", str(out), "--no-progress"])
    assert stale.exit_code == 2 and "--force" in stale.output
    forced = runner.invoke(app, ["check", "--in", str(messages), "--out", str(out), "--no-progress", "--force"])
    assert forced.exit_code == 0
    assert json.loads(out.read_text().splitlines()[0])["crisis"] is False


def test_malformed_lines_are_rejected_with_file_and_line(tmp_path):
    cases = {
        "not json": ['{"id": "a", "text": "fine"}', '{"id": "b", "text": '],
        "missing text": ['{"id": "a", "text": "fine"}', '{"id": "b"}'],
        "wrong type": ['{"id": "a", "text": "fine"}', '{"id": "b", "text": 5}'],
        "repeated id": ['{"id": "a", "text": "fine"}', '{"id": "a", "text": "again"}'],
    }
    for name, lines in cases.items():
        path = write_lines(tmp_path / f"{name.replace(' ', '_')}.jsonl", lines)
        out = tmp_path / f"{name.replace(' ', '_')}.out.jsonl"
        result = runner.invoke(app, ["check", "--in", str(path), "--out", str(out), "--no-progress"])
        assert result.exit_code == 2, (name, result.output)
        assert f"{path}:2:" in result.output, (name, result.output)
        assert not out.exists() and not out.with_name(out.name + ".part").exists()


def test_lenient_skips_and_counts_bad_lines(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", ['{"id": "a", "text": "I cut myself again"}', "garbage"])
    out = tmp_path / "f.jsonl"
    result = runner.invoke(app, ["check", "--in", str(path), "--out", str(out), "--no-progress", "--lenient",
                                 "--no-semantic"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "f.summary.json").read_text())
    assert summary["n"] == 1 and summary["crisis"] == 1 and len(summary["skipped_lines"]) == 1


def test_output_equal_to_input_is_refused(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", ['{"id": "a", "text": "hi"}'])
    result = runner.invoke(app, ["check", "--in", str(path), "--out", str(path), "--no-progress"])
    assert result.exit_code == 2 and "same path as the input" in " ".join(result.output.split())
    assert path.read_text() == '{"id": "a", "text": "hi"}\n'
