"""The upper bound of `research.safety.operating_points`: its AUC is the probability a crisis outranks
a look-alike, and its best operating points are those of some threshold of the deployed decision."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.safety.operating_points import auc, best_points

pytestmark = pytest.mark.property


@st.composite
def scored_sets(draw):
    n = draw(st.integers(2, 30))
    truth = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if truth.all() or not truth.any():
        truth[0] = not truth[0]
    score = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=n, max_size=n)))
    rules = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    allowed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return score, truth, rules, allowed


@settings(max_examples=200, deadline=None)
@given(scored_sets())
def test_auc_is_the_pairwise_rate_and_flips_with_the_score(case):
    score, truth, _, _ = case
    pairs = [(p, q) for p in score[truth] for q in score[~truth]]
    expected = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs])
    assert auc(score, truth) == pytest.approx(expected)
    assert auc(-score, truth) == pytest.approx(1.0 - expected)


@settings(max_examples=200, deadline=None)
@given(scored_sets())
def test_best_points_are_reached_by_a_threshold_and_bound_the_rules(case):
    score, truth, rules, allowed = case
    points = best_points(score, rules, allowed, truth)
    reachable = []
    for t in list(score) + [np.inf]:
        flags = rules | (allowed & (score >= t))
        reachable.append((round(float(flags[truth].mean()), 3), round(float(flags[~truth].mean()), 3)))
    # the rules alone (an infinite threshold) are one of the choices, so the bound is never below them
    rules_recall, rules_fpr = round(float(rules[truth].mean()), 3), round(float(rules[~truth].mean()), 3)
    if rules_fpr <= 0.10:
        assert points["best_recall_at_fpr_0.10"] >= rules_recall
        assert any(r == points["best_recall_at_fpr_0.10"] and f <= 0.10 for r, f in reachable)
    else:  # every threshold keeps the rules' flags, so none is within the cap
        assert points["best_recall_at_fpr_0.10"] == 0.0
    if any(r >= 0.90 for r, _ in reachable):
        assert any(f == points["best_fpr_at_recall_0.90"] and r >= 0.90 for r, f in reachable)
    else:
        assert points["best_fpr_at_recall_0.90"] == 1.0


def test_a_perfect_ranking_meets_the_target_and_a_reversed_one_does_not():
    truth = np.array([True] * 10 + [False] * 10)
    score = np.linspace(1.0, 0.0, 20)
    none = np.zeros(20, dtype=bool)
    everywhere = np.ones(20, dtype=bool)
    assert auc(score, truth) == 1.0
    assert best_points(score, none, everywhere, truth) == {"best_recall_at_fpr_0.10": 1.0, "best_fpr_at_recall_0.90": 0.0}
    assert best_points(-score, none, everywhere, truth)["best_recall_at_fpr_0.10"] == 0.0
