"""Decision offsets tuned on dev (empeval.training.tune_offsets), and the cap that keeps them from
giving back to level 2 what the fits-the-post gate took."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from empeval.evaluator import GATED
from empeval.mechanisms import MECHANISMS
from empeval.training import OFFSET_GRID, tune_offsets

IP = MECHANISMS.index("interpretations")


def gated_logits_where_level_2_was_cut(n=40, seed=0):
    """One view per pair; half the pairs are level 2 but the gate moved most of their level-2
    mass to level 0, so only a positive level-2 offset brings them back."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, len(MECHANISMS)), dtype=np.int64)
    labels[: n // 2, IP] = 2
    probabilities = np.tile([0.7, 0.05, 0.25], (n, 1))
    probabilities[n // 2 :] = [0.9, 0.05, 0.05]
    probabilities += rng.uniform(0, 0.01, probabilities.shape)
    logits = np.log(probabilities / probabilities.sum(-1, keepdims=True))
    return np.stack([logits] * len(MECHANISMS)), list(range(n)), labels


def test_free_offsets_undo_the_gate_and_the_cap_forbids_it():
    logits, owners, labels = gated_logits_where_level_2_was_cut()
    free = tune_offsets(logits, owners, labels, mechanisms=("interpretations",))
    capped = tune_offsets(logits, owners, labels, mechanisms=("interpretations",), max_level_2=0.0)
    assert free[IP][2] > 0  # what the gate took, given back
    assert capped[IP][2] <= 0
    assert free[MECHANISMS.index("emotional_reactions")] == [0.0, 0.0, 0.0]  # untuned mechanisms


@settings(max_examples=15, deadline=None)
@given(cap=st.sampled_from([-0.5, 0.0, 0.75]), seed=st.integers(0, 10_000))
def test_tuned_level_2_offsets_never_exceed_the_cap_and_come_from_the_grid(cap, seed):
    rng = np.random.default_rng(seed)
    n = 24
    logits = rng.normal(size=(len(MECHANISMS), n, 3))
    labels = rng.integers(0, 3, size=(n, len(MECHANISMS)))
    tuned = tune_offsets(logits, list(range(n)), labels, max_level_2=cap)
    for mechanism, offsets in zip(MECHANISMS, tuned):
        assert offsets[0] == 0.0
        assert offsets[2] <= cap if mechanism in GATED else offsets == [0.0, 0.0, 0.0]
        assert all(np.isclose(OFFSET_GRID, value).any() for value in offsets[1:] if value != 0.0)
