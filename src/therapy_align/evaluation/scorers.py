"""The contract every per-reply scorer meets, so that reports grow by columns, never by copies.

A cell (model x system prompt x inputs x generation spec) yields :class:`Pair` s: the seeker's text
and a reply (a model's, or a human's for the reference rows). Each :class:`Scorer` (EMP-EVAL, the
judge evaluator, guards, MITI, safety, ...) scores the pairs of a cell through the shared resumable
store (``<cell>/scores-<name>.jsonl``, stamped with :meth:`Scorer.identity`) and reduces them to
named columns with :meth:`Scorer.summarise`. The cell evaluator and the reports know nothing else
about a scorer, so a new stage adds a scorer and its columns appear in every report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, kw_only=True)
class Pair:
    """One reply to score. ``seeker`` is what the reply answers (a post, or the client's last turn);
    ``context`` optionally holds earlier turns for scorers that read them (multi-turn)."""

    id: str
    seeker: str
    response: str
    context: tuple[str, ...] = ()


@runtime_checkable
class Scorer(Protocol):
    """Scores pairs and reduces the scores to named report columns.

    * ``name``: short and unique (``empeval``, ``judge``, ``guards``, ``miti``, ``safety``); it names the
      scores file and prefixes nothing: column names are returned by :meth:`summarise` as they should
      appear in reports (e.g. ``E``, ``I``, ``X``, ``final``, ``judge_final``, ``len_tokens``).
    * ``identity()``: what the scores depend on besides the pairs (artifact hash, settings); it is
      the store's ``made_from``, so a changed artifact or setting refuses stale scores.
    * ``score(pairs)``: one JSON-able dict per pair, in order.
    * ``summarise(pairs, scores)``: ``{column: value}`` for the whole set (may look across pairs,
      e.g. distinct-n or template rate).
    """

    name: str

    def identity(self) -> Mapping[str, Any]: ...

    def score(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]: ...

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]: ...
