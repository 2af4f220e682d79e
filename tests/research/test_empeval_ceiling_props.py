"""The decision-rule ceilings of `research.empeval.ceiling`: the band search finds the best band, and a
ceiling chosen on the test split is never below the rule it generalises."""

import pytest
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from research.empeval.ceiling import _fast_macro_f1, band_levels, best_band, ceilings
from empeval.training import macro_f1

from tests.strategies import level_predictions

pytestmark = pytest.mark.property


@settings(max_examples=200, deadline=None)
@given(pairs=level_predictions())
def test_fast_macro_f1_is_torchmetrics_macro_f1_when_every_level_occurs(pairs):
    predicted, target = map(np.asarray, pairs)
    if len(set(target.tolist())) == 3:  # EPITOME's test splits hold every level of every mechanism
        assert abs(_fast_macro_f1(predicted, target) - macro_f1(predicted, target)) < 1e-6


@settings(max_examples=30, deadline=None)
@given(target=st.lists(st.sampled_from([0, 0, 1, 2, 2]), min_size=3, max_size=25),
       scores=st.data())
def test_the_best_band_beats_every_band_on_its_candidate_cut_points(target, scores):
    target = np.asarray(target)
    expected = np.asarray(scores.draw(st.lists(st.floats(0, 2, allow_nan=False), min_size=len(target),
                                               max_size=len(target))))
    low, high = best_band(expected, target)
    assert low <= high
    found = _fast_macro_f1(band_levels(expected, low, high), target)
    for a in np.unique(expected):
        for b in np.append(np.unique(expected), np.inf):
            if a <= b:
                assert _fast_macro_f1(band_levels(expected, a, b), target) <= found + 1e-9


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(30, 80))
def test_a_ceiling_chosen_on_the_split_is_at_least_its_argmax(seed, n):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=(n, 3), p=[0.5, 0.1, 0.4])
    labels[:3] = [[0, 0, 0], [1, 1, 1], [2, 2, 2]]  # every level occurs
    logits = rng.normal(size=(3, n, 3)) + 2.0 * np.eye(3)[labels.T]  # informative, noisy
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    result = ceilings(log_probabilities, list(range(n)), labels)
    for mechanism in result.values():
        # Offsets [0, 0, 0] are on the grid: the best offsets cannot lose to the argmax.
        assert mechanism["best_offsets"]["macro_f1"] >= mechanism["argmax"]["macro_f1"] - 1e-9
        assert 0.0 <= mechanism["best_band"]["macro_f1"] <= 1.0
        assert mechanism["best_band"]["level_1_predicted"] >= 0


def test_a_band_without_level_2_is_written_as_json_null():
    import json

    labels = np.array([[0, 0, 0], [0, 1, 0], [1, 1, 1], [1, 1, 1]])  # no level 2 anywhere
    log_probabilities = np.log(np.tile([0.7, 0.2, 0.1], (3, 4, 1)))
    log_probabilities[:, 2:] = np.log([0.2, 0.7, 0.1])
    result = ceilings(log_probabilities, [0, 1, 2, 3], labels)
    low, high = result["interpretations"]["best_band"]["cut_points"]
    assert high is None and np.isfinite(low)
    json.loads(json.dumps(result, allow_nan=False))
