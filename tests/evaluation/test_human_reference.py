"""Human reference rows: built from the real ../shared AnnoMI and CounselChat files,
cached until a source changes, and their command refuses a missing artifact without a traceback."""

import json

import pytest

from therapy_align.evaluation import human_reference

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("human_reference")
    return out, human_reference.build_all(out)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sets_are_built_from_the_shared_data_with_the_documented_sizes(built):
    _, paths = built
    rows = {name: read(path) for name, path in paths.items()}
    assert {name: len(r) for name, r in rows.items()} == {"annomi_high": 300, "annomi_low": 223, "counselchat": 300}
    for name, records in rows.items():
        assert len({r["id"] for r in records}) == len(records), name
        assert all(r["seeker"].strip() and r["response"].strip() for r in records), name
    for name in ("annomi_high", "annomi_low"):  # a client turn of 8+ words answered by the therapist
        assert all(len(r["seeker"].split()) >= human_reference.MIN_CLIENT_WORDS for r in rows[name])
        assert all(r["id"].startswith(f"annomi-{name.split('_')[1]}-") for r in rows[name])


def test_a_second_build_reuses_the_files_and_a_changed_source_rebuilds(built):
    out, paths = built
    stamps = {name: path.stat().st_mtime_ns for name, path in paths.items()}
    assert human_reference.build_all(out) == paths
    assert {name: path.stat().st_mtime_ns for name, path in paths.items()} == stamps
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps({"fingerprint": "from another source", "counts": {}}))
    human_reference.build_all(out)
    assert json.loads(manifest.read_text())["fingerprint"] != "from another source"
    assert json.loads(manifest.read_text())["counts"]["annomi_low"] == 223


def test_the_command_refuses_a_missing_artifact_with_a_one_line_error(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "therapy_align.evaluation.human_reference",
                           "--model", str(tmp_path / "no-artifact")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    err = proc.stderr
    assert "no-artifact" in err and "--model" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
