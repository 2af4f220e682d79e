"""`python -m research.empeval.learnability` on the real EPITOME pairs: cross-validated text models cover
every pair once and learn the learnable levels; an artifact is read on its own test split."""

import json
import subprocess
import sys

import numpy as np
import pytest

from empeval.mechanisms import LEVELS, MECHANISMS
from tests.conftest import REPO_ROOT
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("learnability") / "tiny", split_seed=0)


@pytest.mark.slow  # over a minute: trains the study's probes end to end
def test_every_pair_is_scored_once_and_the_common_levels_are_learned(artifact, tmp_path):
    from empeval.epitome_data import load_epitome
    from research.empeval.learnability import main
    from empeval.probe import test_split_rows

    out = tmp_path / "learnability.json"
    result = main(["--features", "tfidf_response", "--folds", "2", "--train-fractions", "0.5", "1",
                   "--model", str(artifact), "--json", str(out)])
    frame = load_epitome()
    test = test_split_rows(artifact)
    assert result["n_pairs"] == len(frame) == 3084
    half, whole = result["cross_validated"]
    assert (half["features"], half["train_fraction"], whole["train_fraction"]) == ("tfidf_response", 0.5, 1.0)
    for mechanism in MECHANISMS:
        assert half["mechanisms"][mechanism]["0"]["n"] == whole["mechanisms"][mechanism]["0"]["n"]  # every pair scored
        cross_validated = whole["mechanisms"][mechanism]
        on_test = result["artifacts"][str(artifact)][mechanism]
        for k in LEVELS:
            assert cross_validated[str(k)]["n"] == int(np.sum(frame[mechanism] == k))
            assert on_test[str(k)]["n"] == int(np.sum(test[mechanism] == k))
        # Out-of-fold probabilities aligned with their own pairs rank "no mechanism" well above
        # chance; misaligned rows would give ~0.5.
        assert cross_validated["0"]["auc"] > 0.75
        assert cross_validated["0"]["auc_95"][0] <= cross_validated["0"]["auc"] <= cross_validated["0"]["auc_95"][1]
    assert "pooled" not in result["artifacts"]  # one artifact: nothing to pool
    assert json.loads(out.read_text()) == result


@pytest.mark.parametrize("arguments, problem", [(["--folds", "1"], "at least 2 folds"),
                                                (["--train-fractions", "0"], "must be in (0, 1]"),
                                                (["--features"], "nothing to measure")])
def test_settings_that_cannot_run_are_refused_before_any_work(tmp_path, arguments, problem):
    out = tmp_path / "learnability.json"
    result = subprocess.run([sys.executable, "-m", "research.empeval.learnability", *arguments, "--json", str(out)],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
