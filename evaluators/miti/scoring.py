"""`miti score`: ``{"id", "client", "therapist"}`` lines in; per turn a label and its probabilities
(``DIR/scores.jsonl``) and the MITI summary (``DIR/summary.json``) out. It runs the MITI scorer
through the shared resumable runner (`therapy_align.scoring.score_pairs`): a rerun after a kill
scores only what is missing and refuses results made by another model or from other text."""

from __future__ import annotations

import os
from collections.abc import Callable

from miti.scorer import MitiScorer
from miti.summary import summarise
from therapy_align.files import atomic_write_json, check_output_path, read_jsonl
from therapy_align.scoring import Pair, score_pairs

TURN_FIELDS = {"id": (str, int), "client": str, "therapist": str}
SCORES_FILE = "scores.jsonl"
SUMMARY_FILE = "summary.json"


def read_turns(path: str | os.PathLike, lenient: bool = False) -> tuple[list[Pair], list[str]]:
    """Turns as pairs (seeker = client turn, response = therapist turn); strict unless ``lenient``."""
    records, skipped = read_jsonl(path, fields=TURN_FIELDS, lenient=lenient)
    return [Pair(id=str(r["id"]), seeker=r["client"], response=r["therapist"]) for r in records], skipped


def score_turns(predictor, in_path: str | os.PathLike, out_dir: str | os.PathLike, *, lenient: bool = False,
                force: bool = False, on_progress: Callable[[int], None] | None = None) -> dict:
    out_dir = check_output_path(out_dir, inputs=[in_path], kind="dir")
    pairs, skipped = read_turns(in_path, lenient=lenient)
    scores = score_pairs(MitiScorer(predictor), pairs, out_dir / SCORES_FILE, force=force, chunk_size=256,
                         on_start=lambda done, total: on_progress and on_progress(done), on_progress=on_progress)
    summary = {**summarise(s["label"] for s in scores), "input": str(in_path), "model": str(predictor.path),
               "n_skipped": len(skipped), "skipped_lines": skipped}
    atomic_write_json(out_dir / SUMMARY_FILE, summary)
    return summary
