"""The ``guards`` report scorer: the measures of :mod:`therapy_align.evaluation.guards` (the ones the RL
reward penalises) as report columns ``len_tokens``, ``distinct_2``, ``template_rate``,
``specificity``, ``copy_rate``, ``repetition``, ``question_rate``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from therapy_align.evaluation.guards import GUARDS_VERSION, GuardSettings, distinct_n, measure, token_counter
from therapy_align.scoring import Pair


def summarise(responses: Sequence[str], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Report columns: means of the per-reply measures plus ``distinct_2`` over the set."""
    n = max(len(scores), 1)
    columns = {key: round(sum(float(s[key]) for s in scores) / n, 4)
               for key in ("len_tokens", "specificity", "template_rate", "copy_rate", "repetition", "question_rate")}
    columns["distinct_2"] = round(distinct_n(responses, 2), 4)
    return columns


class GuardScorer:
    """The ``guards`` report scorer (:class:`~therapy_align.scoring.Scorer`): columns ``len_tokens``,
    ``distinct_2``, ``template_rate``, ``specificity``, ``copy_rate``, ``repetition``,
    ``question_rate``. Template rate and specificity look across the pairs scored together (the
    runner's chunks of 512: the whole cell for up to 512 inputs)."""

    name = "guards"

    def __init__(self, settings: GuardSettings = GuardSettings()) -> None:
        self.settings = settings
        self._count = None

    def identity(self) -> Mapping[str, Any]:
        return {"guards_version": GUARDS_VERSION, **asdict(self.settings)}

    def score(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        if self._count is None:
            self._count = token_counter(self.settings.tokenizer)
        return measure([p.seeker for p in pairs], [p.response for p in pairs], settings=self.settings,
                       count_tokens=self._count)

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return summarise([p.response for p in pairs], scores)


def make_guard_scorer(context: Any = None) -> GuardScorer:
    """Factory for the scorer registry (``--scorers=empeval,guards``); needs no artifact."""
    return GuardScorer()
