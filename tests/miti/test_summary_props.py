"""MITI summary scores on any list of labels: they follow from the counts alone, stay within their
ranges, and a ratio with nothing to divide by is None."""

from __future__ import annotations

import pytest
import random

from hypothesis import given
from hypothesis import strategies as st

from miti.labels import LABELS, majority
from miti.summary import summarise

pytestmark = pytest.mark.property

LABEL_LISTS = st.lists(st.sampled_from(LABELS), max_size=60)


@given(LABEL_LISTS, st.randoms())
def test_scores_depend_on_counts_only(labels, rng: random.Random):
    shuffled = list(labels)
    rng.shuffle(shuffled)
    assert summarise(shuffled) == summarise(labels)


@given(LABEL_LISTS)
def test_ranges_and_definitions(labels):
    s = summarise(labels)
    c = s["counts"]
    assert sum(c.values()) == s["n"] == len(labels)
    reflections, questions = c["reflection_simple"] + c["reflection_complex"], c["question_open"] + c["question_closed"]
    assert (s["r_q"] is None) == (questions == 0)
    if questions:
        assert abs(s["r_q"] * questions - reflections) < 1e-9
        assert 0 <= s["pct_open_questions"] <= 100
    assert (s["pct_complex_reflections"] is None) == (reflections == 0)
    if reflections:
        assert 0 <= s["pct_complex_reflections"] <= 100


@given(st.lists(st.sampled_from(LABELS), min_size=1, max_size=12))
def test_majority_is_a_most_frequent_label(votes):
    winner = majority(votes)
    assert votes.count(winner) == max(votes.count(v) for v in votes)
    tied = [v for v in votes if votes.count(v) == votes.count(winner)]
    assert winner == tied[0]  # the tie-break: first seen
