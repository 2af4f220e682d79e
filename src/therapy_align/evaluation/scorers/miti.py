"""MITI as a scorer: the MI-behaviour classifier's labels per therapist turn, summarised as R:Q, %CR
and open % (the ``miti`` report scorer: Table 1 with ``--scorers=empeval,miti``, the multi-turn
tables), and ``therapy-align miti score``'s turns file (:func:`score_turns`). Every path goes
through ``therapy_align.scoring.score_pairs`` and its resumable store, stamped with
:func:`artifact_identity`.

Like EMP-EVAL's, the classifier is trained on first use: when the ``miti`` artifact (default
``artifacts/miti``) is missing and the run allows training, :func:`first_use_config` is trained into
it (atomically, resuming from ``<artifact>.checkpoints`` if interrupted), and reused after.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from miti import DEFAULT_ARTIFACT
from miti.config import TrainConfig
from miti.labels import LABELS
from miti.summary import COLUMNS, METRICS, summarise
from therapy_align.files import atomic_write_json, check_output_path, read_jsonl
from therapy_align.scoring import Pair, score_pairs

NOTE = ("MITI columns (R:Q, %CR, open %) come from the MI-behaviour classifier (docs/miti.md); MITI 4.2.1 "
        "thresholds: R:Q fair 1.0, good 2.0; %CR fair 40%, good 50%. Expert rows from AnnoMI: "
        "`therapy-align miti human`.")


def artifact_identity(path: str | os.PathLike) -> dict[str, str]:
    """Hashes of the artifact's weights and miti_config.json: what every label depends on."""
    from miti.artifact import CONFIG_FILE, HEAD_FILE

    hashes = {}
    for name in ("model.safetensors", HEAD_FILE, CONFIG_FILE):
        sha = hashlib.sha256()
        with (Path(path) / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        hashes[name] = sha.hexdigest()[:16]
    return hashes


QUICK_NOTE = ("**QUICK MI CLASSIFIER**: the MITI columns come from a classifier fitted on a slice of AnnoMI "
              "(recipes/miti_train.py --preset fast: 192 training turns, 5 epochs), not the default recipe: "
              "they show the machinery, not fidelity.")


class MitiScorer:
    """``seeker`` = the client turn before, ``response`` = the therapist turn to label."""

    name = "miti"

    def __init__(self, predictor, *, quick: bool = False):
        self.predictor = predictor
        self.notes = [NOTE, *([QUICK_NOTE] if quick else [])]  # NOTE as extended by the factory
        self._identity = {"model": artifact_identity(predictor.path),
                          "settings": {"max_length": predictor.max_length, "labels": list(LABELS)}}

    def identity(self) -> Mapping[str, Any]:
        return self._identity

    def score(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        probabilities = self.predictor.predict_proba([p.seeker for p in pairs], [p.response for p in pairs])
        return [{"label": LABELS[int(row.argmax())],
                 "probabilities": {label: round(float(v), 6) for label, v in zip(LABELS, row)}}
                for row in probabilities]

    def summarise(self, pairs: Sequence[Pair], scores: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
        summary = summarise(score["label"] for score in scores)
        return {COLUMNS[m]: summary[m] for m in METRICS}

    def describe(self, score: Mapping[str, Any]) -> str:
        return f"MI: {score['label']} ({score['probabilities'][score['label']]:.2f})"


def _add_expert_note() -> None:
    """The experts' rows (AnnoMI, main behaviour) under every report that shows MITI columns."""
    global NOTE
    if "Expert rows:" in NOTE:
        return
    try:
        from miti.human import human_rows

        rows = [r for r in human_rows()["rows"] if r["scheme"] == "main behaviour"]
    except Exception:  # no AnnoMI file here: the note keeps pointing at `miti human`
        return
    NOTE += " Expert rows: " + "; ".join(
        f"{r['row']}: R:Q {r['r_q']:.2f}, %CR {r['pct_complex_reflections']:.1f}, open % {r['pct_open_questions']:.1f}"
        for r in rows) + "."


def quick_config() -> TrainConfig:
    """The whole pipeline on a slice (192 training turns, 64 dev/test turns, 48-token pairs, 5
    epochs), about a minute: what a first use trains when :data:`FIRST_USE` is ``fast``. Reports say
    so (:data:`QUICK_NOTE`); ``recipes/miti_train.py``'s ``fast`` preset is the same."""
    default = TrainConfig()
    return replace(default, data=replace(default.data, max_train_turns=192, max_eval_turns=64),
                   model=replace(default.model, max_length=48), train=replace(default.train, max_epochs=5))


# Which recipe a missing artifacts/miti is trained with on first use: "default" when it fits in about
# 3 minutes on 2 CPU cores, else "fast". The default (features of all 3,698 training turns computed
# once, then 10 epochs of the head) measured 149 CPU-s, 310 s wall niced under a load average of 9 on
# the shared 2-core box (fit 22 s of it; test macro-F1 56.0), so about 2.5 minutes on the 2 cores.
FIRST_USE = "default"
FIRST_USE_TIME = "about 2.5 minutes on 2 CPU cores"


def first_use_config() -> TrainConfig:
    """The recipe :data:`FIRST_USE` names: ``default`` (the library's TrainConfig, what
    ``therapy-align miti train`` ships) or ``fast`` (:func:`quick_config`)."""
    return TrainConfig() if FIRST_USE == "default" else quick_config()


def is_quick_artifact(path: str | os.PathLike) -> bool:
    """Whether an artifact was trained on a slice (its recorded recipe limits the training turns)."""
    from miti.artifact import read_settings

    recipe = read_settings(path).get("recipe") or {}
    return bool((recipe.get("data") or {}).get("max_train_turns"))


def ensure_classifier(path: str | os.PathLike, *, allow_train: bool = True,
                      progress: bool = False) -> tuple[Path, bool]:
    """``(path, trained_now)``: ``path`` when something is there (a half-trained classifier never is:
    training publishes by rename, so a killed run leaves only ``<path>.checkpoints``); else, when
    ``allow_train``, :func:`first_use_config` trained into it (resuming from those checkpoints);
    else ``path`` as it is, which then fails to load with the fix."""
    from miti.training import train

    path = Path(path)
    # Only a path with nothing there is trained into (publishing replaces what is at ``path``); anything
    # else loads as it is, and a directory that is not a classifier fails naming its missing files.
    if (path.exists() and (not path.is_dir() or any(path.iterdir()))) or not allow_train:
        return path, False
    return train(first_use_config(), path, progress=progress), True


def make_miti_scorer(context) -> MitiScorer:
    """The ``miti`` scorer: columns R:Q, %CR, open % (``--artifacts=miti=DIR``; default ``artifacts/miti``,
    trained on first use when the run allows it)."""
    from miti.predictor import load

    _add_expert_note()
    path = Path(context.artifact("miti", DEFAULT_ARTIFACT))
    if not path.exists() and context.allow_quick and context.console is not None:
        context.console.print(f"no {path}: training the {FIRST_USE} MI classifier into it "
                              f"({FIRST_USE_TIME}; resumes if interrupted)")
    path, trained_now = ensure_classifier(path, allow_train=context.allow_quick)
    scorer = MitiScorer(load(path), quick=is_quick_artifact(path))
    scorer.notes.append(f"MI classifier: `{path}`, "
                        + ("the fast recipe on a slice" if is_quick_artifact(path) else "the default recipe")
                        + (" (trained here on first use)." if trained_now else "."))
    return scorer


# --------------------------------------------------------------------------------------------
# `therapy-align miti score`: a turns file in, per-turn labels and the MITI summary out
# --------------------------------------------------------------------------------------------

TURN_FIELDS = {"id": (str, int), "client": str, "therapist": str}
SCORES_FILE = "scores.jsonl"
SUMMARY_FILE = "summary.json"


def read_turns(path: str | os.PathLike, lenient: bool = False) -> tuple[list[Pair], list[str]]:
    """``{"id", "client", "therapist"}`` lines as pairs (seeker = client turn, response = therapist
    turn); strict unless ``lenient``."""
    records, skipped = read_jsonl(path, fields=TURN_FIELDS, lenient=lenient)
    return [Pair(id=str(r["id"]), seeker=r["client"], response=r["therapist"]) for r in records], skipped


def score_turns(predictor, in_path: str | os.PathLike, out_dir: str | os.PathLike, *, lenient: bool = False,
                force: bool = False, on_progress: Callable[[int], None] | None = None) -> dict:
    """Label every turn of ``in_path`` into ``out_dir/scores.jsonl`` (label + probabilities) and write
    the MITI summary to ``out_dir/summary.json``; a rerun after a kill scores only what is missing
    and refuses results made by another model or from other text."""
    out_dir = check_output_path(out_dir, inputs=[in_path], kind="dir")
    pairs, skipped = read_turns(in_path, lenient=lenient)
    scores = score_pairs(MitiScorer(predictor), pairs, out_dir / SCORES_FILE, force=force, chunk_size=256,
                         on_start=lambda done, total: on_progress and on_progress(done), on_progress=on_progress)
    summary = {**summarise(s["label"] for s in scores), "input": str(in_path), "model": str(predictor.path),
               "n_skipped": len(skipped), "skipped_lines": skipped}
    atomic_write_json(out_dir / SUMMARY_FILE, summary)
    return summary
