"""Bootstrap intervals of a row's scores and paired differences between rows (evaluation.intervals)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from therapy_align.evaluation.intervals import Interval, bootstrap_interval, comparisons, paired_difference

# Per-input values as the reports have them: EMP-EVAL levels x 1,000, and final scores, which are
# weighted sums of those; plus plain floats.
levels = st.lists(st.sampled_from([0.0, 1000.0, 2000.0]), min_size=1, max_size=60)
finals = st.lists(st.sampled_from([0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 2000.0]), min_size=1, max_size=60)
floats = st.lists(st.floats(-1000, 1000, allow_nan=False, allow_infinity=False), min_size=1, max_size=60)
values = st.one_of(levels, finals, floats)


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(values, st.integers(0, 2**31 - 1))
def test_interval_contains_the_point_estimate(xs, seed):
    interval = bootstrap_interval(xs, draws=500, seed=seed)
    assert interval.estimate == pytest.approx(float(np.mean(xs)))
    slack = 1e-9 * max(1.0, max(abs(x) for x in xs))  # float sums of the same values in another order
    assert interval.lo - slack <= interval.estimate <= interval.hi + slack


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.one_of(levels, finals), st.integers(0, 2**31 - 1))
def test_interval_shrinks_with_more_inputs(xs, seed):
    assume(len(set(xs)) > 1)
    few = bootstrap_interval(xs, seed=seed)
    many = bootstrap_interval(xs * 4, seed=seed)  # the same spread of scores over 4x the inputs
    assert many.hi - many.lo < few.hi - few.lo


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(1, 200), st.integers(0, 2**31 - 1))
def test_constant_scores_give_a_degenerate_interval(value, n, seed):
    assert bootstrap_interval([value] * n, seed=seed) == Interval(value, value, value)


def test_interval_is_seeded():
    xs = [0, 1000, 2000, 0, 0, 1000, 2000, 2000]
    assert bootstrap_interval(xs, seed=3) == bootstrap_interval(xs, seed=3)
    assert bootstrap_interval(xs, seed=3) != bootstrap_interval(xs, seed=4)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="draws"):
        bootstrap_interval([1.0, 2.0], draws=0)
    with pytest.raises(ValueError, match="share no inputs"):
        paired_difference({"a": 1.0}, {"b": 1.0})


def test_paired_difference_of_a_row_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    row = {f"rmh-{i}": float(v) for i, v in enumerate(rng.choice([0.0, 200.0, 600.0, 1200.0], size=50))}
    interval, n = paired_difference(row, dict(row))
    assert n == 50 and (interval.estimate, interval.lo, interval.hi) == (0.0, 0.0, 0.0)
    assert not interval.significant


def test_paired_difference_pairs_by_id_and_sees_what_unpaired_rows_miss():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(500, 300, size=80)  # shared by both rows: cancels when paired
    a = {f"id-{i}": d + 20 for i, d in enumerate(difficulty)}
    b = {f"id-{i}": d for i, d in reversed(list(enumerate(difficulty)))}  # another order: ids pair them
    b["only-b"] = 1e6  # an input a never answered does not count
    interval, n = paired_difference(a, b)
    assert n == 80 and interval.estimate == pytest.approx(20.0)
    assert interval.significant and interval.lo == pytest.approx(20.0) and interval.hi == pytest.approx(20.0)
    unpaired_a = bootstrap_interval(list(a.values()))
    unpaired_b = bootstrap_interval([v for k, v in b.items() if k != "only-b"])
    assert unpaired_a.lo < unpaired_b.hi  # the row intervals overlap; the paired difference does not include 0


def test_noisy_difference_around_zero_is_not_significant():
    rng = np.random.default_rng(2)
    a = {str(i): float(v) for i, v in enumerate(rng.choice([0.0, 1000.0], size=40))}
    b = {key: value for key, value in zip(reversed(list(a)), a.values())}  # same scores, shuffled over inputs
    interval, _ = paired_difference(a, b)
    assert interval.estimate == 0.0 and interval.lo < 0 < interval.hi and not interval.significant


class _Spec:
    def __init__(self, row, prompt, reference=False):
        self.row, self.prompt, self.is_reference = row, prompt, reference
        self.slug = f"{row}__{prompt}" if prompt else row


class _Cell:
    def __init__(self, row, prompt, reference=False):
        self.spec = _Spec(row, prompt, reference)


def test_comparisons_pair_models_under_a_prompt_and_prompts_of_a_model_never_references():
    cells = [_Cell("base", "standard"), _Cell("annomi80", "standard"), _Cell("full_plus", "standard"),
             _Cell("base", "new"), _Cell("annomi80", "new"), _Cell("annomi_high", "", reference=True)]
    pairs = [(a.spec.slug, b.spec.slug, kind) for a, b, kind in comparisons(cells)]
    assert pairs == [
        ("annomi80__standard", "base__standard", "model"),
        ("full_plus__standard", "base__standard", "model"),
        ("full_plus__standard", "annomi80__standard", "model"),
        ("annomi80__new", "base__new", "model"),
        ("base__new", "base__standard", "prompt"),
        ("annomi80__new", "annomi80__standard", "prompt"),
    ]
