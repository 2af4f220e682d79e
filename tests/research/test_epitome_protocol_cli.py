"""`python -m research.empeval.epitome_protocol`: an artifact's own test split, read out both ways (and the
missing-artifact refusal it shares with `research.empeval.ceiling` and `research.empeval.learnability`)."""

import json
import subprocess
import sys

import pytest

from empeval.mechanisms import MECHANISMS
from tests.conftest import REPO_ROOT
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("protocol") / "tiny", split_seed=0)


def test_read_out_is_the_published_scores_on_the_test_split_in_file_order(artifact, tmp_path):
    import empeval
    from empeval.epitome_data import load_epitome
    from research.empeval.epitome_protocol import batch_macro_f1, main
    from empeval.training import macro_f1

    out = tmp_path / "protocol.json"
    (read_out,) = main(["--model", str(artifact), "--orders", "20", "--json", str(out)])
    split = json.loads((artifact / "split.json").read_text())
    test = load_epitome().pipe(lambda f: f[f["rp_id"].isin(set(split["test"]))])
    published = empeval.load(artifact).score(test["seeker_post"].tolist(), test["response_post"].tolist())
    assert read_out["n_test"] == len(split["test"])
    for m in MECHANISMS:
        labels = test[m].to_numpy(copy=True)
        published_read_out = read_out["variants"]["whole_reply_dev_offsets"][m]
        assert published_read_out["macro_f1"] == pytest.approx(macro_f1(published.levels[m], labels), abs=1e-6)
        assert published_read_out["batch_macro_f1"] == pytest.approx(batch_macro_f1(published.levels[m], labels))
    assert set(read_out["variants"]) == {"whole_reply_no_gate_no_offsets", "whole_reply_no_offsets",
                                         "whole_reply_no_gate_dev_offsets", "whole_reply_dev_offsets"}
    assert json.loads(out.read_text()) == [read_out]


@pytest.mark.parametrize("command", ["research.empeval.epitome_protocol", "research.empeval.ceiling", "research.empeval.learnability"])
def test_a_missing_artifact_is_one_line_and_writes_nothing(tmp_path, command):
    out = tmp_path / "protocol.json"
    result = subprocess.run([sys.executable, "-m", command, "--model", str(tmp_path / "nope"),
                             "--json", str(out)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after library warnings, if any
    assert last.startswith("error: ") and "nope" in last and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("split, problem", [({"train": [], "dev": []}, "no readable test split"),
                                            ({"train": [], "dev": [], "test": []}, "the test split is empty")])
def test_an_artifact_without_a_test_split_is_named_with_its_file(artifact, tmp_path, split, problem):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    (broken / "split.json").write_text(json.dumps(split))
    out = tmp_path / "protocol.json"
    result = subprocess.run([sys.executable, "-m", "research.empeval.epitome_protocol", "--model", str(broken),
                             "--json", str(out)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "split.json" in last and problem in last
    assert not out.exists()


def test_zero_orders_is_refused_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "research.empeval.epitome_protocol", "--model", str(tmp_path),
                             "--orders", "0"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2 and "--orders must be at least 1" in result.stderr
