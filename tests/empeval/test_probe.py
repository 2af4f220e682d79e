"""`therapy-align empeval probe` on a fast artifact (tiny random encoder, real EPITOME test split)
and, in a slow test, on the published artifact, where the evaluator's must-hold lines
(docs/evaluator.md, Probe) are checked."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.tiny_evaluator import make_tiny_evaluator
from therapy_align.cli import app

pytestmark = pytest.mark.integration

os.environ.setdefault("HF_HUB_OFFLINE", "1")
runner = CliRunner()
ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "empeval"
PROBES = ["real", "seeker_shuffle", "canned", "repeat_x3", "copy_seeker", "empty", "filler", "neutral_long",
          "empathy_sentence", "late_empathy"]


@pytest.fixture(scope="module")
def fast_artifact(tmp_path_factory):
    """A random tiny encoder in the real artifact layout, with seed 0's real EPITOME split."""
    return make_tiny_evaluator(tmp_path_factory.mktemp("probe") / "model", split_seed=0,
                               decision_offsets=[[0.0, 0.5, 0.0]] * 3, fit_gate=True)


def test_probe_writes_markdown_and_json_with_every_probe(fast_artifact, tmp_path):
    out = tmp_path / "probe"
    result = runner.invoke(app, ["empeval", "probe", "--model", str(fast_artifact), "--out", str(out), "--limit", "24"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "probe.json").read_text())
    rows = {row["probe"]: row for row in report["rows"]}
    assert list(rows) == PROBES
    assert all(row["n"] == 24 for row in rows.values())
    assert rows["empty"]["mean_level"] == {m: 0.0 for m in rows["empty"]["mean_level"]}  # defined, not modelled
    assert rows["empty"]["final_score"] == 0.0
    assert set(rows["late_empathy"]["credit_kept"]) == set(rows["real"]["mean_level"])
    markdown = (out / "probe.md").read_text()
    for name in PROBES:
        assert f"| {name} |" in markdown


def test_probe_refuses_a_directory_that_is_not_an_artifact(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "empeval_config.json").write_text("{}")
    out = tmp_path / "probe"
    result = runner.invoke(app, ["empeval", "probe", "--model", str(broken), "--out", str(out)])
    assert result.exit_code == 2
    assert str(broken) in result.output and "missing" in result.output
    assert not out.exists()  # nothing half-written


def test_probe_refuses_damaged_weights(fast_artifact, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(fast_artifact, damaged)
    with (damaged / "empeval_model.safetensors").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02\x03")
    result = runner.invoke(app, ["empeval", "probe", "--model", str(damaged), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "empeval_model.safetensors" in result.output and "weights_sha256" in result.output
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_real_artifact_reads_the_post_and_the_whole_reply(tmp_path):
    """The evaluator's must-hold lines, on the published artifact."""
    if not (ARTIFACT / "metrics.json").is_file():
        pytest.skip(f"no trained artifact at {ARTIFACT}: run `therapy-align empeval train` first")
    result = runner.invoke(app, ["empeval", "probe", "--model", str(ARTIFACT), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    rows = {r["probe"]: r for r in json.loads((tmp_path / "p" / "probe.json").read_text())["rows"]}
    drop = rows["seeker_shuffle"]["change_percent"]
    assert drop["interpretations"] <= -25.0 and drop["explorations"] <= -10.0
    # the empathic sentence after ~200 neutral tokens keeps its credit: on average at least the
    # sentence's own mean level, and its own level for most seekers (85% / 98% / 92% measured)
    late, alone = rows["late_empathy"]["mean_level"], rows["empathy_sentence"]["mean_level"]
    assert all(late[m] >= alone[m] for m in late)
    assert min(rows["late_empathy"]["credit_kept"].values()) >= 0.8
