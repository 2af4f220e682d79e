"""Why EPITOME's reported macro-F1 is not whole-split macro-F1: batches without the rare level."""

import numpy as np
import pytest

from research.empeval.epitome_protocol import batch_macro_f1, order_spread, present_levels_macro_f1, protocol_read_out
from empeval.mechanisms import MECHANISMS


def test_ignoring_a_rare_level_scores_higher_per_batch_than_on_the_whole_split():
    # Two batches of 32: the first holds the only level-1 pair, which is predicted as level 0;
    # levels 0 and 2 are otherwise predicted perfectly.
    target = np.array([1] + [0] * 15 + [2] * 16 + [0] * 16 + [2] * 16)
    predicted = np.where(target == 1, 0, target)
    whole = present_levels_macro_f1(predicted, target)
    assert whole == pytest.approx((2 * 31 / (32 + 31) + 0.0 + 1.0) / 3)
    first_batch = (2 * 15 / (16 + 15) + 0.0 + 1.0) / 3
    assert batch_macro_f1(predicted, target) == pytest.approx((first_batch + 1.0) / 2)  # batch 2: levels 0, 2 only
    assert batch_macro_f1(predicted, target) > whole + 0.15


def test_predicting_a_level_absent_from_a_batch_costs_it_a_zero():
    target = np.zeros(32, dtype=int)
    predicted = target.copy()
    predicted[0] = 1
    assert present_levels_macro_f1(predicted, target) == pytest.approx((2 * 31 / 63 + 0.0) / 2)


def test_the_last_short_batch_weighs_like_a_full_one():
    target = np.array([0] * 32 + [2])
    predicted = np.array([0] * 32 + [0])  # the last batch (one pair) is all wrong
    assert batch_macro_f1(predicted, target) == pytest.approx(0.5)


def test_protocol_read_out_reports_every_mechanism():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(70, 3))
    levels = {m: labels[:, k] for k, m in enumerate(MECHANISMS)}
    result = protocol_read_out(levels, labels, orders=5)
    assert result["batch_size"] == 32
    for m in MECHANISMS:
        assert result[m]["macro_f1"] == result[m]["batch_macro_f1"] == 1.0
        assert result[m]["batch_macro_f1_over_orders"]["orders"] == 5


@pytest.mark.parametrize("call", [lambda: batch_macro_f1([0, 1], [0]), lambda: batch_macro_f1([0], [0], 0),
                                  lambda: order_spread([0], [0], orders=0)])
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()
