"""EMP-EVAL in the evaluation harness (paper §2.2.3, Table 1): the ``empeval`` and ``judge`` scorers.

The scorer itself is ``empeval.scoring.EmpevalScorer`` (the same class ``therapy-align empeval
score`` runs, so every path writes the same per-pair schema). This module picks its artifact:
``artifacts/empeval`` when it holds a trained evaluator, else, for smoke runs, a quick one
trained once into the run directory and flagged in every report. ``judge`` is the same scorer on
another artifact (held out from any RL reward), with ``judge_`` columns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from empeval.scoring import DEFAULT_ARTIFACT, EmpevalScorer
from therapy_align.errors import UserError
from therapy_align.evaluation.scorers import ScorerContext

# Quick evaluator for smoke runs when no trained artifact exists: one epoch over at most this many
# batches per split. Its scores are noise-level; reports flag them.
QUICK_EVALUATOR_BATCHES = 8
QUICK_NOTE = ("**QUICK EVALUATOR**: no trained EMP-EVAL artifact was found, so a smoke-test evaluator "
              "(1 epoch, a few batches) scored these responses; the numbers test the pipeline, not the "
              "models. Train the real one: `therapy-align empeval train`.")


@dataclass(frozen=True)
class EvaluatorChoice:
    path: Path
    quick: bool  # trained here in smoke mode, not the full EMP-EVAL artifact

    def describe(self) -> str:
        kind = ("QUICK smoke-test evaluator (1 epoch, few batches): scores are not meaningful" if self.quick
                else "trained EMP-EVAL artifact")
        return f"{self.path} ({kind})"


def is_evaluator_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in ("empeval_model.safetensors", "empeval_config.json", "config.json"))


def ensure_evaluator(preferred: str | os.PathLike | None, quick_dir: str | os.PathLike, *, allow_quick: bool = True,
                     progress: bool = True) -> EvaluatorChoice:
    """``preferred`` (default ``artifacts/empeval``) when it holds a trained evaluator; else a quick
    one trained (once) into ``quick_dir``; else an error that says how to train the real one."""
    preferred = Path(preferred or DEFAULT_ARTIFACT)
    if is_evaluator_dir(preferred):
        return EvaluatorChoice(preferred, quick=False)
    quick_dir = Path(quick_dir)
    if is_evaluator_dir(quick_dir):
        return EvaluatorChoice(quick_dir, quick=True)
    if not allow_quick:
        raise UserError("no trained EMP-EVAL evaluator here", file=preferred, field="empeval",
                        fix=f"train it with `therapy-align empeval train --out {preferred}`")
    from empeval.config import TrainConfig
    from empeval.training import train

    # issue 9: the default evaluator (all of EPITOME, the default recipe), trained once into
    # `preferred` (cached for every later run; resumes if interrupted), not a smoke one.
    # docs/evaluator.md gives its time and F1.
    train(TrainConfig(), preferred, progress=progress)
    return EvaluatorChoice(preferred, quick=False)


def make_empeval_scorer(context: ScorerContext) -> EmpevalScorer:
    """The ``empeval`` scorer: columns E, I, X, final (Table 1)."""
    choice = ensure_evaluator(context.artifact("empeval", DEFAULT_ARTIFACT), context.work_dir / "empeval-quick",
                              allow_quick=context.allow_quick)
    if context.console is not None:
        context.console.print(f"EMP-EVAL: {choice.describe()}")
    return EmpevalScorer(choice.path, name="empeval", notes=[QUICK_NOTE] if choice.quick else [])


def make_judge_scorer(context: ScorerContext) -> EmpevalScorer:
    """The ``judge`` scorer: an EMP-EVAL artifact kept out of any reward, columns judge_E ... judge_final."""
    path = context.artifact("judge")
    if not path:
        raise UserError("the judge scorer needs its artifact", field="artifacts",
                        fix="pass judge=<EMP-EVAL artifact dir> in the artifacts setting")
    if not is_evaluator_dir(path):
        raise UserError("not a trained EMP-EVAL artifact", file=path, field="judge",
                        fix="train one with `therapy-align empeval train --out DIR`")
    return EmpevalScorer(path, name="judge", prefix="judge_")
