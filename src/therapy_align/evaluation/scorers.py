"""The scorer contract and the registry of scorers by name, so that reports grow by columns.

A cell (model x system prompt x inputs x generation spec, or a reference cell of given replies)
yields :class:`Pair` s. Each :class:`Scorer` (EMP-EVAL, the judge evaluator, guards, MITI,
safety, ...) scores the pairs of a cell through the shared resumable store
(``<cell>/scores-<name>.jsonl``, stamped with :meth:`Scorer.identity`) and reduces them to named
columns with :meth:`Scorer.summarise`. The cell evaluator and the reports know nothing else about
a scorer, so a new stage adds a scorer and its columns appear in every report.

Configs select scorers by name (``scorers=("empeval", "guards")``). :data:`REGISTRY` maps each name
to ``"module:factory"``; the module is imported only when the scorer is used, so a stage's
optional module or artifact that is missing gives a :class:`~therapy_align.errors.UserError`
naming it, not an ImportError. A factory takes a :class:`ScorerContext` and returns a scorer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.scoring import Pair, Scorer, describe_score, read_pairs, score_pairs

__all__ = ["REGISTRY", "Pair", "Scorer", "ScorerContext", "describe_score", "make_scorers", "read_pairs",
           "register_scorer", "score_pairs"]


@dataclass(frozen=True, kw_only=True)
class ScorerContext:
    """What a scorer factory may use: where the run writes (e.g. a quick evaluator trained for a
    smoke run), artifact paths by scorer name (``{"empeval": "artifacts/empeval"}``; a missing
    name means the scorer's default), whether smoke stand-ins may be trained, and a console."""

    work_dir: Path = Path(".")
    artifacts: Mapping[str, str] = field(default_factory=dict)
    allow_quick: bool = False
    console: Any = None

    def artifact(self, name: str, default: str = "") -> str:
        return self.artifacts.get(name) or default


# name -> "module:factory". Stages add one line here (or call register_scorer from their module).
REGISTRY: dict[str, str] = {
    "empeval": "therapy_align.evaluation.empathy_scoring:make_empeval_scorer",
    "judge": "therapy_align.evaluation.empathy_scoring:make_judge_scorer",
    "miti": "miti.scorer:make_miti_scorer",
    "safety": "therapy_align.safety.scorer:make_safety_scorer",
    "guards": "therapy_align.evaluation.guards:make_guard_scorer",
}


def register_scorer(name: str, target: str | Callable[[ScorerContext], Scorer]) -> None:
    """Add (or replace) a scorer: ``target`` is ``"module:factory"`` or the factory itself."""
    REGISTRY[name] = target  # type: ignore[assignment]


def _factory(name: str) -> Callable[[ScorerContext], Scorer]:
    if name not in REGISTRY:
        raise UserError(f"unknown scorer {name!r}", field="scorers", fix=f"choose from {', '.join(REGISTRY)}")
    target = REGISTRY[name]
    if callable(target):
        return target
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"scorer {name!r} needs module {module_name}, which cannot be imported ({err})",
                        field="scorers", fix="install or add that stage, or drop the scorer from the list") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UserError(f"scorer {name!r}: {module_name} has no {attribute}", field="scorers") from None


def make_scorers(names: Sequence[str], context: ScorerContext) -> list[Scorer]:
    """The scorers named in ``names`` (in that order), built by their factories."""
    if len(set(names)) != len(names):
        raise UserError(f"a scorer is named twice in {list(names)}", field="scorers")
    scorers = []
    for name in names:
        scorer = _factory(name)(context)
        if scorer.name != name:
            raise ValueError(f"the factory of scorer {name!r} built one named {scorer.name!r}")
        scorers.append(scorer)
    return scorers
