"""Every report scorer, and the registry that selects them by name, so that reports grow by columns.

A cell (model x system prompt x inputs x generation spec, or a reference cell of given replies)
yields :class:`Pair` s. Each :class:`Scorer` (the contract, in :mod:`therapy_align.scoring`)
scores the pairs of a cell through the shared resumable store (``<cell>/scores-<name>.jsonl``,
stamped with :meth:`Scorer.identity`) and reduces them to named columns with
:meth:`Scorer.summarise`. The cell evaluator and the reports know nothing else about a scorer, so
a new scorer's columns appear in every report.

The implementations live here, one module each, named by what they score:

* :mod:`.empeval`: EMP-EVAL's E, I, X, final (``empeval``) and the judge's (``judge``);
* :mod:`.miti`: the MI-behaviour classifier's R:Q, %CR, open % (``miti``);
* :mod:`.safety`: the harm columns (``safety``);
* :mod:`.guards`: what could fool EMP-EVAL: length, specificity, template rate, ... (``guards``).

The RL reward's scorer (``therapy_align.rl.reward.RewardScorer``, behind ``therapy-align reward
score``) stays beside the reward it wraps: rl sits above evaluation and imports it, so evaluation
may not import rl. It is not in the registry (no report shows reward columns); a report that needs
them would register it by its ``"therapy_align.rl.reward:..."`` string, which imports nothing here.

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
    name means the scorer's default), whether smoke stand-ins may be trained, which recipe EMP-EVAL
    trains on first use, and a console."""

    work_dir: Path = Path(".")
    artifacts: Mapping[str, str] = field(default_factory=dict)
    allow_quick: bool = False
    # what EMP-EVAL trains on first use when its artifact is missing: "default" (the recipe the
    # paper's columns mean) or "fast" (1 epoch, lowest 3 layers frozen: a CPU demo's budget)
    empeval_first_use: str = "default"
    console: Any = None

    def artifact(self, name: str, default: str = "") -> str:
        return self.artifacts.get(name) or default


# name -> "module:factory". A new scorer adds its module here and one line (or calls register_scorer).
REGISTRY: dict[str, str] = {
    "empeval": "therapy_align.evaluation.scorers.empeval:make_empeval_scorer",
    "judge": "therapy_align.evaluation.scorers.empeval:make_judge_scorer",
    "miti": "therapy_align.evaluation.scorers.miti:make_miti_scorer",
    "safety": "therapy_align.evaluation.scorers.safety:make_safety_scorer",
    "guards": "therapy_align.evaluation.scorers.guards:make_guard_scorer",
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
