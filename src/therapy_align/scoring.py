"""The per-reply scoring contract, pairs files, and the one resumable way to run a scorer.

A :class:`Pair` is one reply to score: the seeker's text and a reply (a model's, or a human's for
the reference rows). A :class:`Scorer` (EMP-EVAL, the judge, guards, MITI, safety, ...) scores
pairs and reduces the scores to named report columns. :func:`score_pairs` runs any scorer through
the shared :class:`~therapy_align.store.ResultStore`, so every scores file resumes, refuses stale
results and is complete only when every pair is scored.

This module sits at the top of the package (not in ``evaluation``) so that the evaluators
(``empeval``, ``miti``) can implement the contract and use the same runner for their own command
lines; ``therapy_align.evaluation.scorers`` re-exports it and adds the registry by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from therapy_align.files import read_jsonl
from therapy_align.store import ResultStore

PAIR_FIELDS = {"id": (str, int), "seeker": str, "response": str}


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
      scores file ``scores-<name>.jsonl``. Column names are returned by :meth:`summarise` as they
      should appear in reports (e.g. ``E``, ``I``, ``X``, ``final``, ``judge_final``, ``len_tokens``).
    * ``identity()``: what the scores depend on besides the pairs (artifact hash, settings); it is
      the store's ``made_from``, so a changed artifact or setting refuses stale scores.
    * ``score(pairs)``: one JSON-able dict per pair, in order (no ``id``: the runner adds it).
    * ``summarise(pairs, scores)``: ``{column: value}`` for the whole set (may look across pairs,
      e.g. distinct-n or template rate).

    Optional: ``describe(score) -> str``, one short line for a pair's score in the examples report.
    """

    name: str

    def identity(self) -> Mapping[str, Any]: ...

    def score(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]: ...

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]: ...


def read_pairs(path: str | os.PathLike, *, lenient: bool = False) -> tuple[list[Pair], list[str]]:
    """The pairs of a ``{"id", "seeker", "response"}`` JSONL file (optional ``context``: a list of
    earlier turns), and, with ``lenient``, the messages of skipped lines. Strict by default: the
    first bad line raises :class:`~therapy_align.files.InputFileError` naming file, line and field."""
    records, skipped = read_jsonl(path, fields=PAIR_FIELDS, optional={"context": list}, lenient=lenient)
    pairs = [Pair(id=str(r["id"]), seeker=r["seeker"], response=r["response"],
                  context=tuple(str(turn) for turn in r.get("context") or ())) for r in records]
    return pairs, skipped


def pair_input(pair: Pair) -> dict[str, Any]:
    """What a score is computed from (the store's per-item ``input``)."""
    return {"seeker": pair.seeker, "response": pair.response, "context": list(pair.context)}


def score_pairs(
    scorer: Scorer,
    pairs: Sequence[Pair],
    out: str | os.PathLike,
    *,
    force: bool = False,
    chunk_size: int = 512,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Score ``pairs`` with ``scorer`` into ``out`` (one line per pair: ``id`` + the scorer's
    dict), resuming an interrupted run; returns the scores in pair order.

    Results go to ``<out>.part`` a chunk at a time (a kill loses at most one chunk) and ``out``
    appears, in pair order, only when every pair is scored. Lines made by another scorer identity
    or from another seeker/response are refused (or, with ``force``, recomputed).
    ``on_start(already_done, total)`` is called once, ``on_progress(n)`` after each chunk scored.
    """
    by_id = {pair.id: pair for pair in pairs}
    if len(by_id) != len(pairs):
        raise ValueError("pair ids must be unique")
    store = ResultStore(out, made_from=dict(scorer.identity()), force=force)
    todo = store.start({pair.id: pair_input(pair) for pair in pairs})
    if on_start is not None:
        on_start(len(pairs) - len(todo), len(pairs))
    for start in range(0, len(todo), chunk_size):
        chunk = [by_id[item_id] for item_id in todo[start : start + chunk_size]]
        scores = scorer.score(chunk)
        if len(scores) != len(chunk):
            raise RuntimeError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(chunk)} pairs")
        store.append({"id": pair.id, **score} for pair, score in zip(chunk, scores, strict=True))
        if on_progress is not None:
            on_progress(len(chunk))
    store.finish()
    return [{key: value for key, value in record.items() if key != "id"} for record in store.records()]


def describe_score(scorer: Any, score: Mapping[str, Any]) -> str:
    """One line for a pair's score in examples: the scorer's own ``describe`` or its scalar values."""
    describe = getattr(scorer, "describe", None)
    if callable(describe):
        return describe(score)
    scalars = [f"{key}={value}" for key, value in score.items()
               if isinstance(value, str | int | float | bool) and not key.startswith("_")]
    return ", ".join(scalars)
