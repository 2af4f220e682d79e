"""Transcript-level splits (paper §2.2.1): the "80%" model trains on a seeded 80% of the
high-quality AnnoMI transcripts; the other 20% are held out for evaluation. Splitting by
transcript keeps every utterance of a session on one side."""

from __future__ import annotations

import random
from collections.abc import Iterable

SPLITS = ("annomi80", "full_plus")
TRAIN_FRACTION = 0.8  # paper §2.2.1: "Trained on 80% of the Annomi conversations that were graded good"


def split_transcript_ids(ids: Iterable[str], *, fraction: float = TRAIN_FRACTION, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held-out) ids: a seeded shuffle of the sorted ids, the first ``round(fraction*n)``
    to train. The same ids and seed always give the same split, whatever their input order."""
    ordered = sorted(set(ids), key=lambda value: (len(value), value))
    random.Random(seed).shuffle(ordered)
    cut = round(fraction * len(ordered))
    return sorted(ordered[:cut], key=_natural), sorted(ordered[cut:], key=_natural)


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)
