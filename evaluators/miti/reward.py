"""The MI-consistency credit of a reply, for the RL stage's composable reward.

MI practice (MITI 4.2.1) asks for more reflections than questions (R:Q >= 1, good 2), complex
reflections over simple ones (%CR >= 40%, good 50%), and open questions over closed ones. The
credit of one reply is the classifier's expected weight, sum_label P(label) * weight[label]: a
smooth signal for policy gradients, in [-0.4, 1.0] with the default weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from miti.labels import LABELS

# Choice, in MITI's order of preference: complex reflection 1.0 > simple 0.6 > open question 0.2 >
# input/other 0 > closed question -0.4 (closed questions pull R:Q and open % down).
MI_CONSISTENCY_WEIGHTS: Mapping[str, float] = {
    "reflection_complex": 1.0,
    "reflection_simple": 0.6,
    "question_open": 0.2,
    "question_closed": -0.4,
    "therapist_input": 0.0,
    "other": 0.0,
}


def expected_credit(probabilities: np.ndarray, weights: Mapping[str, float] = MI_CONSISTENCY_WEIGHTS) -> list[float]:
    """Per row of (n, len(LABELS)) probabilities: sum_label P(label) * weights[label]."""
    unknown = set(weights) - set(LABELS)
    if unknown:
        raise ValueError(f"unknown label(s) in weights: {sorted(unknown)}; expected {LABELS}")
    vector = np.array([float(weights.get(label, 0.0)) for label in LABELS])
    return [float(v) for v in np.asarray(probabilities) @ vector]


def mi_consistency(predictor, clients: Sequence[str], replies: Sequence[str],
                   weights: Mapping[str, float] = MI_CONSISTENCY_WEIGHTS) -> list[float]:
    """The MI-consistency credit of each reply to the client turn before it."""
    return expected_credit(predictor.predict_proba(clients, replies), weights)
