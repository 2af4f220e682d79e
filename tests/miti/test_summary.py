"""MITI 4.2.1 summary scores, label resolution and the MI-consistency credit on hand-made labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miti.labels import LABELS, behaviour_label, majority
from miti.reward import MI_CONSISTENCY_WEIGHTS, expected_credit
from miti.summary import count_labels, multicode_counts, rating, summarise

SR, CR, OQ, CQ, TI, OT = LABELS


def test_formulas_on_hand_made_labels():
    # 3 simple + 3 complex reflections, 2 open + 1 closed question, 2 inputs, 1 other
    labels = [SR] * 3 + [CR] * 3 + [OQ] * 2 + [CQ] + [TI] * 2 + [OT]
    s = summarise(labels)
    assert s["n"] == 12
    assert s["r_q"] == pytest.approx(6 / 3)
    assert s["pct_complex_reflections"] == pytest.approx(50.0)
    assert s["pct_open_questions"] == pytest.approx(200 / 3)
    assert s["counts"] == {SR: 3, CR: 3, OQ: 2, CQ: 1, TI: 2, OT: 1}
    assert s["ratings"] == {"r_q": "good", "pct_complex_reflections": "good"}


def test_fair_and_below_fair():
    s = summarise([SR, SR, CR, OQ, CQ, CQ])  # R:Q 3/3 = 1.0 (fair), %CR 33% (below fair)
    assert s["r_q"] == pytest.approx(1.0) and s["ratings"]["r_q"] == "fair"
    assert s["pct_complex_reflections"] == pytest.approx(100 / 3)
    assert s["ratings"]["pct_complex_reflections"] == "below fair"
    assert summarise([CR, CR, SR, SR, SR, OQ])["ratings"]["pct_complex_reflections"] == "fair"  # 40% exactly


def test_undefined_ratios_are_none_not_zero():
    s = summarise([TI, OT, OT])
    assert s["r_q"] is None and s["pct_complex_reflections"] is None and s["pct_open_questions"] is None
    assert s["ratings"] == {"r_q": None, "pct_complex_reflections": None}
    only_questions = summarise([OQ, CQ])
    assert only_questions["r_q"] == 0.0 and only_questions["pct_complex_reflections"] is None
    assert summarise([])["n"] == 0


def test_unknown_label_is_refused():
    with pytest.raises(ValueError, match="unknown MI behaviour"):
        count_labels([SR, "reflection"])


def test_rating_boundaries():
    assert rating("r_q", 1.999) == "fair" and rating("r_q", 2.0) == "good" and rating("r_q", 0.99) == "below fair"
    assert rating("pct_open_questions", 90.0) is None  # MITI 4.2.1 sets no threshold for it


def test_behaviour_label_from_annomi_fields():
    assert behaviour_label("reflection", "complex", float("nan")) == CR
    assert behaviour_label("question", float("nan"), "closed") == CQ
    assert behaviour_label("therapist_input", float("nan"), float("nan")) == TI
    assert behaviour_label("reflection", float("nan"), float("nan")) is None  # subtype missing
    assert behaviour_label(float("nan"), float("nan"), float("nan")) is None  # a client utterance


def test_majority_vote_and_tie_break():
    assert majority([OQ, CQ, CQ]) == CQ
    assert majority([SR, CR, CR, SR]) == SR  # tie: the first seen wins
    assert majority([CR, SR, SR, CR]) == CR
    assert majority([None, TI, float("nan")]) == TI
    assert majority([None]) is None


def test_multicode_counts_every_coded_behaviour():
    counts = multicode_counts(["simple", None, "complex", "complex"], ["open", "closed", None, "open"])
    assert counts[SR] == 1 and counts[CR] == 2 and counts[OQ] == 2 and counts[CQ] == 1 and counts[OT] == 0


def test_mi_consistency_credit_orders_behaviours():
    one_hot = np.eye(len(LABELS))
    credit = dict(zip(LABELS, expected_credit(one_hot)))
    assert credit[CR] > credit[SR] > credit[OQ] > credit[TI] == credit[OT] > credit[CQ]
    mixed = expected_credit(np.array([[0.5, 0.5, 0, 0, 0, 0]]))[0]
    assert math.isclose(mixed, (MI_CONSISTENCY_WEIGHTS[SR] + MI_CONSISTENCY_WEIGHTS[CR]) / 2)
    with pytest.raises(ValueError):
        expected_credit(one_hot, {"reflection": 1.0})
