"""`python -m research.empeval.ceiling`: an artifact's own test split, read out by argmax and by the best
offsets and band chosen on it."""

import json

import numpy as np
import pytest

from empeval.mechanisms import MECHANISMS
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("ceiling") / "tiny", split_seed=0)


def test_argmax_is_the_ungated_published_levels_and_the_ceilings_are_above_it(artifact, tmp_path):
    import empeval
    from research.empeval.ceiling import band_levels, main
    from empeval.probe import test_split_rows
    from empeval.training import macro_f1

    out = tmp_path / "ceiling.json"
    (result,) = main(["--model", str(artifact), "--json", str(out)])
    test = test_split_rows(artifact)
    evaluator = empeval.load(artifact)
    (ungated,) = evaluator.score_variants(test["seeker_post"].tolist(), test["response_post"].tolist(),
                                          {"argmax": (False, np.zeros((3, 3)))}).values()
    assert result["n_test"] == len(test) > 500
    for m in MECHANISMS:
        labels = test[m].to_numpy(copy=True)
        ceiling = result["mechanisms"][m]
        assert ceiling["argmax"]["macro_f1"] == pytest.approx(macro_f1(ungated.levels[m], labels), abs=1e-6)
        assert ceiling["best_offsets"]["macro_f1"] >= ceiling["argmax"]["macro_f1"] - 1e-9
        low, high = ceiling["best_band"]["cut_points"]
        high = np.inf if high is None else high
        expected = np.asarray(ungated.probabilities[m]) @ np.arange(3)
        # Probabilities are stored rounded: the band read-out is recomputed up to pairs at a cut-point.
        assert macro_f1(band_levels(expected, low, high), labels) == pytest.approx(ceiling["best_band"]["macro_f1"],
                                                                                abs=0.02)
    assert json.loads(out.read_text()) == [result]
