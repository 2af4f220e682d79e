"""A short hash of everything a safety verdict depends on (rules, grading rules, prototypes, thresholds), so that
stored flags and scores made by another version of the detector are refused on resume."""

from __future__ import annotations

import dataclasses

from therapy_align.safety import levels, patterns
from therapy_align.safety.semantic import prototypes
from therapy_align.store import digest


def detector_fingerprint(thresholds) -> str:
    rules = [dataclasses.astuple(r) for r in patterns.MESSAGE_RULES + patterns.REPLY_RULES]
    guards = [patterns.SLANG, patterns.FIGURES_OF_SPEECH, patterns.NEGATION_BEFORE, patterns.NEGATION_EXCEPTIONS,
              patterns.NEGATION_AFTER, patterns.JOKE_MARKERS, patterns.PAST_MARKERS, patterns.PRESENT_MARKERS,
              patterns.DISTANCE_MARKERS, patterns.MEDICAL_MARKERS]
    graded = [dataclasses.astuple(r) for r in levels.LEVEL_RULES]
    return digest({"rules": rules, "levels": graded, "guards": guards, "prototypes": prototypes(),
                   "thresholds": dataclasses.asdict(thresholds), "encoder": "all-MiniLM-L6-v2/mean-pool"})
