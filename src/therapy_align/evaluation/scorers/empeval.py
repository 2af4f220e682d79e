"""EMP-EVAL as a scorer (paper §2.2.3, Table 1): the ``empeval`` and ``judge`` report scorers, and
``therapy-align empeval score``'s pairs file.

Every path scores a pair into the same dict, ``EmpathyScores.row`` of the Python API::

    {"emotional_reactions": {"level": 0|1|2, "probabilities": [p0, p1, p2]},
     "interpretations": {...}, "explorations": {...}}

:class:`EmpevalScorer` runs by name in every report (``empeval``; a second artifact as ``judge``,
held out from any RL reward, gives ``judge_`` columns), and on a pairs file through
:func:`score_file`; both go through ``therapy_align.scoring.score_pairs`` and its resumable store,
stamped with :func:`artifact_identity`. Report columns (Table 1): ``E``, ``I``, ``X`` = sums of
levels per 1,000 inputs, ``final`` = 0.2 E + 0.4 I + 0.4 X.

The ``empeval`` factory picks the artifact (:func:`ensure_evaluator`): ``artifacts/empeval`` when it
holds a trained evaluator; a quick one already in the run directory (flagged in every report); else,
for runs that allow it, the default recipe trained once into ``artifacts/empeval``. The ``judge``
factory likewise trains :func:`judge_config` (the fast recipe on another seed) once into
``artifacts/empeval-judge`` when no judge artifact is there (:func:`ensure_judge`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from empeval import DEFAULT_ARTIFACT
from empeval.mechanisms import MECHANISMS, PAPER_INPUTS, final_score, summarise_levels
from therapy_align.errors import UserError
from therapy_align.evaluation.scorers import ScorerContext
from therapy_align.files import atomic_write_json, check_output_path
from therapy_align.scoring import read_pairs, score_pairs

SHORT = {"emotional_reactions": "E", "interpretations": "I", "explorations": "X"}  # Table 1's columns
IDENTITY_FILES = ("empeval_model.safetensors", "empeval_config.json", "config.json", "tokenizer.json", "vocab.txt")

_identity_cache: dict[tuple, str] = {}


def artifact_identity(path: str | os.PathLike) -> str:
    """A hash of an artifact's weights, config and tokenizer files (cached per size and mtime)."""
    path = Path(path)
    files = [path / name for name in IDENTITY_FILES if (path / name).is_file()]
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _identity_cache:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _identity_cache[key] = digest.hexdigest()[:16]
    return _identity_cache[key]


class EmpevalScorer:
    """EMP-EVAL levels per pair, summarised as Table 1's columns (``prefix`` + E, I, X, final).

    The evaluator loads on the first :meth:`score` (a fully resumed cell never loads it).
    ``evaluator`` may be given directly (any object with ``score(seekers, responses)`` returning
    ``EmpathyScores``); then ``artifact`` only names it.
    """

    def __init__(self, artifact: str | os.PathLike = DEFAULT_ARTIFACT, *, name: str = "empeval", prefix: str = "",
                 batch_size: int = 64, evaluator: Any = None, notes: Sequence[str] = ()) -> None:
        self.artifact = Path(artifact)
        self.name, self.prefix, self.batch_size = name, prefix, batch_size
        self.notes = list(notes)
        self._evaluator = evaluator

    @property
    def evaluator(self):
        if self._evaluator is None:
            from empeval.evaluator import load

            self._evaluator = load(self.artifact, batch_size=self.batch_size)
        return self._evaluator

    def identity(self) -> dict[str, Any]:
        if self._evaluator is not None and not self.artifact.is_dir():
            return {"evaluator": type(self._evaluator).__name__, "artifact": str(self.artifact)}
        return {"artifact": artifact_identity(self.artifact)}

    def score(self, pairs: Sequence[Any]) -> list[dict[str, Any]]:
        scores = self.evaluator.score([p.seeker for p in pairs], [p.response for p in pairs])
        return [scores.row(index) for index in range(len(pairs))]

    def columns(self) -> list[str]:
        return [self.prefix + column for column in ("E", "I", "X", "final")]

    def summarise(self, pairs: Sequence[Any], scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        summary = summarise_levels({m: [int(s[m]["level"]) for s in scores] for m in MECHANISMS})
        scaled = summary[f"sums_per_{PAPER_INPUTS}"]
        return {**{self.prefix + SHORT[m]: float(scaled[m]) for m in MECHANISMS},
                self.prefix + "final": float(summary["final_score"])}

    def per_input(self, scores: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
        """Each input's share of the columns: its levels x 1,000 (their mean over the inputs is the
        sum per 1,000) and its final score, so a bootstrap over inputs resamples these."""
        scaled = {SHORT[m]: [float(int(s[m]["level"]) * PAPER_INPUTS) for s in scores] for m in MECHANISMS}
        finals = [final_score(*values) for values in zip(*(scaled[SHORT[m]] for m in MECHANISMS))]
        return {**{self.prefix + column: values for column, values in scaled.items()}, self.prefix + "final": finals}

    def describe(self, score: Mapping[str, Any]) -> str:
        label = "EMP-EVAL levels" if not self.prefix else f"{self.name} levels"
        return f"{label}: " + ", ".join(f"{SHORT[m]}={score[m]['level']}" for m in MECHANISMS)


def summary_path(out: str | os.PathLike) -> Path:
    """``scores.jsonl`` -> ``scores.summary.json``: each output has its own summary."""
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


def score_file(
    scorer: EmpevalScorer,
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    lenient: bool = False,
    force: bool = False,
    chunk_size: int = 512,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Score every pair of ``in_path`` into ``out_path`` (resumable) and write its summary beside
    it (:func:`summary_path`); returns the summary. Bad input fails before any scoring."""
    check_output_path(out_path, inputs=[in_path])
    check_output_path(summary_path(out_path), inputs=[in_path])
    pairs, skipped = read_pairs(in_path, lenient=lenient)
    scores = score_pairs(scorer, pairs, out_path, force=force, chunk_size=chunk_size, on_start=on_start,
                         on_progress=on_progress)
    summary = summarise_levels({m: [s[m]["level"] for s in scores] for m in MECHANISMS}, n_skipped=len(skipped))
    summary.update(columns=scorer.summarise(pairs, scores), input=str(in_path), scorer=scorer.identity(),
                   skipped_lines=skipped)
    atomic_write_json(summary_path(out_path), summary)
    return summary


# A quick evaluator for smoke runs (the RL stage's tiny presets) when no trained artifact exists: one
# epoch over at most this many batches per split. Its scores are noise-level; reports flag them.
QUICK_EVALUATOR_BATCHES = 8
QUICK_NOTE = ("**QUICK EVALUATOR**: no trained EMP-EVAL artifact was found, so a smoke-test evaluator "
              "(1 epoch, a few batches) scored these responses; the numbers test the pipeline, not the "
              "models. Train the real one: `therapy-align empeval train`.")


@dataclass(frozen=True)
class EvaluatorChoice:
    path: Path
    quick: bool  # trained here in smoke mode, not the full EMP-EVAL artifact
    trained_now: bool = False

    def describe(self) -> str:
        kind = ("QUICK smoke-test evaluator (1 epoch, few batches): scores are not meaningful" if self.quick
                else "trained EMP-EVAL artifact")
        return f"{self.path} ({kind})"


def is_evaluator_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in ("empeval_model.safetensors", "empeval_config.json", "config.json"))


FIRST_USE_RECIPES = ("default", "fast")


def first_use_config(recipe: str = "default"):
    """What a missing EMP-EVAL artifact is trained with on first use: the default recipe (all of
    EPITOME, 3 epochs: a report's columns then mean what the paper's do) or the ``fast`` one of
    ``recipes/empeval_train.py`` (1 epoch, embeddings and the lowest 3 layers frozen: about a sixth of
    the compute, weaker F1, docs/evaluator.md), both on seed 0."""
    from empeval.config import TrainConfig

    if recipe not in FIRST_USE_RECIPES:
        raise UserError(f"unknown EMP-EVAL first-use recipe {recipe!r}", field="empeval_first_use",
                        fix=f"one of {', '.join(FIRST_USE_RECIPES)}")
    return TrainConfig() if recipe == "default" else replace(TrainConfig(), max_epochs=1, freeze_layers=3)


def ensure_evaluator(preferred: str | os.PathLike | None, quick_dir: str | os.PathLike, *, allow_quick: bool = True,
                     progress: bool = True, recipe: str = "default") -> EvaluatorChoice:
    """``preferred`` (default ``artifacts/empeval``) when it holds a trained evaluator; else a quick
    one already trained into ``quick_dir`` (flagged in reports); else, when ``allow_quick``,
    :func:`first_use_config` of ``recipe`` trained once into ``preferred`` (cached for every later
    run; resumes if interrupted); else an error that says how to train it."""
    preferred = Path(preferred or DEFAULT_ARTIFACT)
    config = first_use_config(recipe)  # a bad recipe name fails before anything loads
    if is_evaluator_dir(preferred):
        return EvaluatorChoice(preferred, quick=False)
    quick_dir = Path(quick_dir)
    if is_evaluator_dir(quick_dir):
        return EvaluatorChoice(quick_dir, quick=True)
    if not allow_quick:
        raise UserError("no trained EMP-EVAL evaluator here", file=preferred, field="empeval",
                        fix=f"train it with `therapy-align empeval train --out {preferred}`")
    from empeval.training import train

    train(config, preferred, progress=progress)
    return EvaluatorChoice(preferred, quick=False, trained_now=True)


def make_empeval_scorer(context: ScorerContext) -> EmpevalScorer:
    """The ``empeval`` scorer: columns E, I, X, final (Table 1)."""
    path = context.artifact("empeval", DEFAULT_ARTIFACT)
    if (not is_evaluator_dir(path) and not is_evaluator_dir(context.work_dir / "empeval-quick")
            and context.allow_quick and context.console is not None):
        context.console.print(f"no EMP-EVAL at {path}: training the {context.empeval_first_use} recipe into it "
                              "(minutes on a CPU; resumes if interrupted)")
    choice = ensure_evaluator(path, context.work_dir / "empeval-quick", allow_quick=context.allow_quick,
                              recipe=context.empeval_first_use)
    if context.console is not None:
        context.console.print(f"EMP-EVAL: {choice.describe()}")
    notes = [QUICK_NOTE] if choice.quick else [evaluator_note("empeval", choice.path, choice.trained_now)]
    return EmpevalScorer(choice.path, name="empeval", notes=notes)


# The judge: a second EMP-EVAL that no reward uses, so a report can show whether a gain under the
# reward's evaluator holds under another one. Its default home is where the RL stage looks too.
JUDGE_ARTIFACT = "artifacts/empeval-judge"


def judge_config():
    """What a missing judge is trained with on first use: the ``fast`` recipe of
    ``recipes/empeval_train.py`` (1 epoch, embeddings and the lowest 3 layers frozen: about a sixth
    of the default's compute) on seed 1, so its initialisation, data order and split all differ
    from ``artifacts/empeval``'s (seed 0): an independent second evaluator."""
    from empeval.config import TrainConfig

    return replace(TrainConfig(), max_epochs=1, freeze_layers=3, seed=1)


def ensure_judge(path: str | os.PathLike, *, allow_train: bool = True, progress: bool = True) -> tuple[Path, bool]:
    """``(path, trained_now)``: ``path`` when it holds an evaluator; else, when ``allow_train`` and
    nothing else is there, :func:`judge_config` trained into it (published by rename once complete,
    so a killed run leaves only ``<path>.checkpoints``, which the next run resumes from); else an
    error that says how to train it."""
    path = Path(path)
    if is_evaluator_dir(path):
        return path, False
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        # something else is there (a typo, another artifact): never trained over, since publishing
        # would replace it
        raise UserError("not a trained EMP-EVAL artifact", file=path, field="judge",
                        fix="give an EMP-EVAL artifact dir, or a path that does not exist yet to train the judge there")
    if not allow_train:
        raise UserError("no trained EMP-EVAL judge here", file=path, field="judge",
                        fix=f"train it with `therapy-align empeval train --train.seed=1 --out {path}` or pass "
                            "judge=<EMP-EVAL artifact dir> in the artifacts setting")
    from empeval.training import train

    train(judge_config(), path, progress=progress)
    return path, True


def evaluator_note(name: str, path: str | os.PathLike, trained_now: bool) -> str:
    """Which evaluator a report's ``empeval`` or ``judge_`` columns come from, read from the
    artifact's own training config (a fast artifact reads differently from the default one)."""
    import json

    try:
        trained = json.loads((Path(path) / "empeval_config.json").read_text(encoding="utf-8")).get("train_config", {})
    except (OSError, ValueError):
        trained = {}
    recipe = ", ".join(f"{key}={trained[key]}" for key in ("seed", "split_seed", "max_epochs", "freeze_layers")
                       if trained.get(key) is not None)
    how = []
    if trained_now:
        how.append("trained here on first use")
    if trained.get("max_epochs") == 1 and trained.get("freeze_layers") == 3:
        how.append("the fast recipe (1 epoch, lowest 3 layers frozen; weaker than the default, docs/evaluator.md)")
    if name == "judge" and trained.get("seed", 0) != 0:
        how.append(f"seed {trained['seed']}: its initialisation, data order and split differ from those of the "
                   "default empeval artifact (seed 0), so it is an independent second evaluator")
    what = ("judge_* columns: a second EMP-EVAL" if name == "judge" else "E, I, X and final: EMP-EVAL")
    return (f"{what} (`{path}`, {recipe or 'training settings unrecorded'})"
            + (", used by no reward" if name == "judge" else "") + (f"; {'; '.join(how)}." if how else "."))


def judge_note(path: str | os.PathLike, trained_now: bool) -> str:
    """Which evaluator the judge_ columns come from (:func:`evaluator_note`)."""
    return evaluator_note("judge", path, trained_now)


def make_judge_scorer(context: ScorerContext) -> EmpevalScorer:
    """The ``judge`` scorer: an EMP-EVAL artifact kept out of any reward, columns judge_E ... judge_final
    (``judge=DIR`` in the artifacts setting; default ``artifacts/empeval-judge``, trained on first use)."""
    path = context.artifact("judge", JUDGE_ARTIFACT)
    if not is_evaluator_dir(path) and context.allow_quick and context.console is not None:
        context.console.print(f"no judge at {path}: training the fast EMP-EVAL recipe on seed 1 into it "
                              "(minutes on a CPU; resumes if interrupted)")
    path, trained_now = ensure_judge(path, allow_train=context.allow_quick)
    return EmpevalScorer(path, name="judge", prefix="judge_", notes=[judge_note(path, trained_now)])
