"""MITI as a scorer: the MI-behaviour classifier's labels per therapist turn, summarised as R:Q, %CR
and open % (the ``miti`` report scorer: Table 1 with ``--scorers=empeval,miti``, the multi-turn
tables), and ``therapy-align miti score``'s turns file (:func:`score_turns`). Every path goes
through ``therapy_align.scoring.score_pairs`` and its resumable store, stamped with
:func:`artifact_identity`.
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


QUICK_NOTE = ("**QUICK MI CLASSIFIER**: no trained artifacts/miti, so a classifier was fitted on a slice "
              "(recipes/miti_train.py --preset fast): its MITI columns show the machinery, not fidelity.")


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
    """The stand-in a smoke run fits when it allows one and no trained classifier exists: the whole
    pipeline on a slice (192 training turns, 64 dev/test turns, 48-token pairs, 5 epochs), about a
    minute. Reports say so (:data:`QUICK_NOTE`); ``recipes/miti_train.py``'s ``fast`` preset is the same."""
    default = TrainConfig()
    return replace(default, data=replace(default.data, max_train_turns=192, max_eval_turns=64),
                   model=replace(default.model, max_length=48), train=replace(default.train, max_epochs=5))


def quick_artifact(out: Path, *, progress: bool = False) -> Path:
    """:func:`quick_config` trained once at ``out`` and reused."""
    from miti.artifact import read_settings
    from miti.training import train

    if (out / "miti_config.json").is_file():
        read_settings(out)
        return out
    return train(quick_config(), out, progress=progress)


def make_miti_scorer(context) -> MitiScorer:
    """The ``miti`` scorer: columns R:Q, %CR, open % (``--artifacts=miti=DIR``; default ``artifacts/miti``)."""
    from miti.predictor import load

    _add_expert_note()
    path = Path(context.artifact("miti", DEFAULT_ARTIFACT))
    if not path.exists() and context.allow_quick:
        if context.console is not None:
            context.console.print(f"no {path}: fitting a quick MI classifier on a slice (about a minute)")
        return MitiScorer(load(quick_artifact(Path(context.work_dir) / "miti-quick")), quick=True)
    return MitiScorer(load(path))


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
