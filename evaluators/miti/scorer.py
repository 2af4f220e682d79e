"""The MITI scorer: the MI-behaviour classifier behind the shared Scorer contract
(`therapy_align.scoring`), so R:Q, %CR and open % appear as columns in every report that runs
it (Table 1 with ``--scorers=empeval,miti``, the multi-turn tables, `miti score`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from miti.labels import LABELS
from miti.summary import COLUMNS, METRICS, summarise
from therapy_align.scoring import Pair

DEFAULT_ARTIFACT = "artifacts/miti"
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


def make_miti_scorer(context) -> MitiScorer:
    """Registry factory (`therapy_align.evaluation.scorers.REGISTRY["miti"]`); ``--artifacts=miti=DIR``."""
    from miti.predictor import load

    _add_expert_note()
    path = Path(context.artifact("miti", DEFAULT_ARTIFACT))
    if not path.exists() and context.allow_quick:
        from miti.training import quick_artifact

        if context.console is not None:
            context.console.print(f"no {path}: fitting a quick MI classifier on a slice (about a minute)")
        return MitiScorer(load(quick_artifact(Path(context.work_dir) / "miti-quick")), quick=True)
    return MitiScorer(load(path))
