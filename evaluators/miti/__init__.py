"""MITI: an MI-behaviour classifier trained on AnnoMI's expert codes, and MITI 4.2.1 summary scores.

    import miti
    classifier = miti.load("artifacts/miti")
    classifier.predict(clients, therapists)        # ["reflection_complex", "question_open", ...]
    classifier.predict_proba(clients, therapists)  # (n, 6) array, columns in miti.LABELS order
    miti.summarise(labels)                         # {"r_q", "pct_complex_reflections", "pct_open_questions", ...}
    miti.mi_consistency(classifier, clients, replies)   # RL credit per reply (miti.reward)

    from miti.config import TrainConfig
    from miti.training import train
    train(TrainConfig(), "artifacts/miti")         # what `therapy-align miti train` runs (overrides: --train.max_epochs=...)

Heavy modules (torch, transformers, lightning) load on first use, so `import miti` stays cheap.
"""

from __future__ import annotations

from miti.labels import LABELS
from miti.reward import MI_CONSISTENCY_WEIGHTS, expected_credit, mi_consistency
from miti.summary import COLUMNS, THRESHOLDS, rating, summarise

DEFAULT_ARTIFACT = "artifacts/miti"  # where `miti train` writes and every scorer looks, relative to the working directory

__all__ = ["COLUMNS", "DEFAULT_ARTIFACT", "LABELS", "MI_CONSISTENCY_WEIGHTS", "THRESHOLDS", "BehaviourPredictor",
           "expected_credit", "load", "mi_consistency", "rating", "summarise"]


def load(path=DEFAULT_ARTIFACT, batch_size: int = 64):
    """The trained classifier in ``path``; see :class:`miti.predictor.BehaviourPredictor`."""
    from miti.predictor import load as load_predictor

    return load_predictor(path, batch_size=batch_size)


def __getattr__(name: str):
    if name == "BehaviourPredictor":
        from miti.predictor import BehaviourPredictor

        return BehaviourPredictor
    raise AttributeError(f"module 'miti' has no attribute {name!r}")
