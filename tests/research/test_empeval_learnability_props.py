"""`research.empeval.learnability`: the threshold F1 is the best over every cut, the AUC and its interval
are proper, and the cross-validation never lets a seeker post straddle folds."""

import pytest
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from research.empeval.learnability import best_threshold_f1, cross_validated_probabilities, rank_quality

pytestmark = pytest.mark.property


def brute_force_best_f1(scores: np.ndarray, is_level: np.ndarray) -> float:
    best = 0.0
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        hits = np.sum(predicted & is_level)
        best = max(best, 2 * hits / (predicted.sum() + is_level.sum()))
    return best


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 40))
def test_best_threshold_f1_is_the_best_cut_over_every_distinct_score(data, n):
    # Few distinct scores, so that ties (which must move together) are common.
    scores = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), min_size=n, max_size=n)))
    is_level = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    expected = brute_force_best_f1(scores, is_level) if is_level.any() else 0.0
    assert abs(best_threshold_f1(scores, is_level) - expected) < 1e-12


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(20, 120), signal=st.floats(0, 3))
def test_rank_quality_is_a_proper_auc_with_an_ordered_interval(seed, n, signal):
    rng = np.random.default_rng(seed)
    is_level = rng.random(n) < 0.3
    is_level[:2] = [True, False]  # both classes occur
    scores = rng.normal(size=n) + signal * is_level
    quality = rank_quality(scores, is_level, rounds=200)
    low, high = quality["auc_95"]
    assert quality["n"] == int(is_level.sum())
    assert 0.0 <= low <= high <= 1.0 and 0.0 <= quality["auc"] <= 1.0
    assert 0.0 < quality["best_f1"] <= 1.0
    # Scores that separate the level perfectly: AUC 1 everywhere and a perfect cut.
    perfect = rank_quality(is_level.astype(float), is_level, rounds=50)
    assert perfect["auc"] == 1.0 and perfect["auc_95"] == [1.0, 1.0] and perfect["best_f1"] == 1.0


def test_a_level_that_never_occurs_has_no_auc():
    quality = rank_quality(np.linspace(0, 1, 10), np.zeros(10, dtype=bool))
    assert quality["auc"] is None and quality["n"] == 0 and quality["best_f1"] == 0.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), folds=st.integers(2, 5), fraction=st.sampled_from([0.3, 0.5, 1.0]))
def test_folds_are_grouped_by_seeker_and_cover_every_pair_once(seed, folds, fraction):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 15, 90).astype(str)
    labels = rng.integers(0, 3, 90)
    labels[:3] = [0, 1, 2]
    features = rng.normal(size=(90, 4)) + labels[:, None]
    tested, trained = [], []

    def features_of(train, test):
        assert not set(groups[train]) & set(groups[test])  # a post's responses never straddle folds
        assert len(set(train.tolist())) == len(train)
        trained.append(len(train))
        tested.extend(test.tolist())
        return features[train], features[test]

    probabilities = cross_validated_probabilities(features_of, labels, groups, folds, train_fraction=fraction)
    assert sorted(tested) == list(range(90))  # a learning-curve point still scores every held-out pair
    # Each pair is in the training rows of every fold but its own; a fraction trains on fewer.
    assert sum(trained) == (folds - 1) * 90 if fraction == 1.0 else sum(trained) < (folds - 1) * 90
    assert np.allclose(probabilities.sum(axis=1), 1.0)
