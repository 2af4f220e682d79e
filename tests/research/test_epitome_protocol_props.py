"""EPITOME's batch-averaged macro-F1 is sklearn's macro-F1 per batch, averaged; one batch is the whole split."""

import pytest
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from research.empeval.epitome_protocol import batch_macro_f1, order_spread, present_levels_macro_f1

from tests.strategies import level_predictions

pytestmark = pytest.mark.property


@settings(max_examples=300, deadline=None)
@given(pairs=level_predictions())
def test_present_levels_macro_f1_is_sklearns_default_macro_average(pairs):
    predicted, target = pairs
    # EPITOME's compute_f1 passes (predictions, labels): F1 is symmetric, so both orders agree.
    assert present_levels_macro_f1(predicted, target) == np.float64(f1_score(predicted, target, average="macro")).item()
    assert abs(present_levels_macro_f1(predicted, target) - f1_score(target, predicted, average="macro")) < 1e-12


@settings(max_examples=200, deadline=None)
@given(pairs=level_predictions(), batch_size=st.integers(1, 40))
def test_batch_macro_f1_is_the_mean_of_sklearns_per_batch_values(pairs, batch_size):
    predicted, target = pairs
    per_batch = [f1_score(predicted[s:s + batch_size], target[s:s + batch_size], average="macro")
                 for s in range(0, len(target), batch_size)]
    assert abs(batch_macro_f1(predicted, target, batch_size) - float(np.mean(per_batch))) < 1e-12


@settings(max_examples=100, deadline=None)
@given(pairs=level_predictions())
def test_one_batch_holding_every_pair_is_whole_split_macro_f1(pairs):
    predicted, target = pairs
    assert batch_macro_f1(predicted, target, batch_size=len(target)) == present_levels_macro_f1(predicted, target)


@settings(max_examples=50, deadline=None)
@given(pairs=level_predictions(), seed=st.integers(0, 2**16))
def test_order_spread_brackets_its_mean_and_is_seeded(pairs, seed):
    predicted, target = pairs
    spread = order_spread(predicted, target, orders=20, seed=seed)
    assert spread["low"] - 1e-12 <= spread["mean"] <= spread["high"] + 1e-12  # mean of equal values may round
    assert spread == order_spread(predicted, target, orders=20, seed=seed)
