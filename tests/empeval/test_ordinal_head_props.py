"""The ordinal level head (TrainConfig.ordinal_mechanisms) emits a proper distribution over the
three levels whose upper tail grows with the pair's score, for any score and cut-points."""

import pytest
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empeval.model import OrdinalHead

pytestmark = pytest.mark.property

scores = st.lists(st.floats(-500, 500, allow_nan=False), min_size=2, max_size=40)
cut_points = st.tuples(st.floats(-20, 20, allow_nan=False), st.floats(-30, 30, allow_nan=False))


def head_with(first_cut: float, log_gap: float) -> OrdinalHead:
    head = OrdinalHead(1)
    with torch.no_grad():
        head.score.weight.fill_(1.0)  # the pooled input is the score itself
        head.first_cut.fill_(first_cut)
        head.log_gap.fill_(log_gap)
    return head


@settings(max_examples=200, deadline=None)
@given(values=scores, cuts=cut_points)
def test_log_probabilities_are_finite_and_sum_to_one(values, cuts):
    log_p = head_with(*cuts)(torch.tensor(values, dtype=torch.float64).unsqueeze(-1).float())
    assert torch.isfinite(log_p).all()
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(len(values)), atol=1e-5)
    # They serve as logits: softmax (cross-entropy, the gate, the offsets) reads them unchanged.
    assert torch.allclose(torch.log_softmax(log_p, -1).exp(), log_p.exp(), atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(values=scores, cuts=cut_points)
def test_a_higher_score_never_lowers_the_upper_levels(values, cuts):
    ordered = torch.tensor(sorted(values)).unsqueeze(-1)
    p = head_with(*cuts)(ordered).double().exp()
    at_least_one, strong = 1 - p[:, 0], p[:, 2]
    assert (at_least_one.diff() >= -1e-6).all() and (strong.diff() >= -1e-6).all()


def test_level_one_is_the_band_between_the_cut_points():
    head = head_with(first_cut=-1.0, log_gap=math.log(math.expm1(4.0)))  # cut-points -1 and 3
    levels = head(torch.tensor([[-6.0], [1.0], [8.0]])).argmax(-1).tolist()
    assert levels == [0, 1, 2]


@settings(max_examples=100, deadline=None)
@given(proportions=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3))
def test_started_cut_points_give_a_zero_score_the_proportions(proportions):
    head = OrdinalHead(3)
    head.start_at(proportions)
    p = head(torch.zeros(1, 3)).exp()[0].double()
    assert torch.allclose(p, torch.tensor(proportions, dtype=torch.float64) / sum(proportions), atol=1e-5)
