"""EMP-EVAL scoring of generation files (paper §2.2.3, Table 1), shared by the Table-1 harness
and the prompt sweep.

A generation file (see :mod:`therapy_align.evaluation.generation`) is scored pair by pair -- seeker post,
model response -- with ``empeval.load(path).score``; the levels (0/1/2) of each mechanism are
summed and rescaled to 1,000 inputs, the paper's scale, and combined with Table 1's weights
(``empeval.final_score``). Results go beside the generations:

    scores.jsonl    one line per id: the three levels and probabilities
    summary.json    n, raw sums, sums per 1,000 inputs, final score, evaluator used, and a
                    fingerprint of the generations it scored (a cell is reused only while the
                    fingerprint matches)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from therapy_align.evaluation.generation import read_outputs, repair_tail

DEFAULT_EVALUATOR = Path("artifacts/empeval")
# Quick evaluator for smoke runs when no trained artifact exists: one epoch over at most this many
# batches per split. Its scores are noise-level; reports flag them.
QUICK_EVALUATOR_BATCHES = 8


@dataclass(frozen=True)
class EvaluatorChoice:
    path: Path
    quick: bool  # trained here in smoke mode, not the full EMP-EVAL artifact

    def describe(self) -> str:
        kind = "QUICK smoke-test evaluator (1 epoch, few batches): scores are not meaningful" if self.quick else "trained EMP-EVAL artifact"
        return f"{self.path} ({kind})"


def is_evaluator_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in ("empeval_model.safetensors", "empeval_config.json", "config.json"))


def ensure_evaluator(
    preferred: str | os.PathLike | None, quick_dir: str | os.PathLike, *, allow_quick: bool = True, progress: bool = True
) -> EvaluatorChoice:
    """``preferred`` (default ``artifacts/empeval``) when it holds a trained evaluator; else a quick
    one trained (once) into ``quick_dir``; else an error that says how to train the real one."""
    preferred = Path(preferred) if preferred else DEFAULT_EVALUATOR
    if is_evaluator_dir(preferred):
        return EvaluatorChoice(preferred, quick=False)
    quick_dir = Path(quick_dir)
    if is_evaluator_dir(quick_dir):
        return EvaluatorChoice(quick_dir, quick=True)
    if not allow_quick:
        raise FileNotFoundError(
            f"no trained EMP-EVAL evaluator at {preferred}; train it with "
            f"`therapy-align empeval train --out {preferred}`"
        )
    from empeval.config import TrainConfig
    from empeval.training import train

    train(TrainConfig(max_epochs=1, limit_batches=QUICK_EVALUATOR_BATCHES), quick_dir, progress=progress)
    return EvaluatorChoice(quick_dir, quick=True)


def fingerprint(records: list[dict[str, Any]]) -> str:
    """Hash of the (id, response) pairs, order-independent."""
    digest = hashlib.sha256()
    for rid, response in sorted((str(r["id"]), str(r.get("response", ""))) for r in records):
        digest.update(rid.encode() + b"\x00" + response.encode() + b"\x01")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class CellScore:
    """EMP-EVAL totals of one generation file, on the paper's per-1,000-inputs scale."""

    n: int
    empathy: float  # emotional reactions, sum of levels per 1,000 inputs
    interpretation: float
    exploration: float
    final: float  # 0.2 E + 0.4 I + 0.4 X on the per-1,000 sums
    raw_sums: dict[str, int]
    evaluator: str
    quick_evaluator: bool

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> "CellScore":
        scaled = summary["sums_per_1000"]
        return cls(
            n=int(summary["n"]),
            empathy=float(scaled["emotional_reactions"]),
            interpretation=float(scaled["interpretations"]),
            exploration=float(scaled["explorations"]),
            final=float(summary["final_score"]),
            raw_sums={k: int(v) for k, v in summary["sums"].items()},
            evaluator=str(summary.get("evaluator", "")),
            quick_evaluator=bool(summary.get("quick_evaluator", False)),
        )


def score_generations(
    generations: str | os.PathLike,
    evaluator_choice: EvaluatorChoice,
    *,
    evaluator=None,
    out_dir: str | os.PathLike | None = None,
    ids: set[str] | None = None,
) -> CellScore:
    """Score the responses in ``generations`` (only those of ``ids`` when given, e.g. the inputs
    of this run when the file holds more); reuse ``summary.json`` when it matches.

    ``evaluator`` is a loaded ``empeval`` evaluator (loaded from ``evaluator_choice`` if None).
    """
    from empeval.mechanisms import MECHANISMS, summarise_levels

    generations = Path(generations)
    out_dir = Path(out_dir) if out_dir is not None else generations.parent
    repair_tail(generations)
    records = read_outputs(generations)
    if ids is not None:
        records = [r for r in records if str(r["id"]) in ids]
    if not records:
        raise ValueError(f"{generations} holds no generations to score")
    print_ = fingerprint(records)
    summary_path = out_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError:
            summary = {}
        if summary.get("fingerprint") == print_ and summary.get("evaluator") == str(evaluator_choice.path):
            return CellScore.from_summary(summary)
    if evaluator is None:
        import empeval

        evaluator = empeval.load(evaluator_choice.path)
    scores = evaluator.score([r["text"] for r in records], [r.get("response", "") for r in records])
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, record in enumerate(records):
        row = {"id": record["id"]}
        for mechanism in MECHANISMS:
            row[mechanism] = scores.levels[mechanism][index]
            row[f"{mechanism}_probabilities"] = scores.probabilities[mechanism][index]
        lines.append(json.dumps(row))
    _write_atomic(out_dir / "scores.jsonl", "\n".join(lines) + "\n")
    summary = summarise_levels(scores.levels)
    summary.update(
        fingerprint=print_,
        evaluator=str(evaluator_choice.path),
        quick_evaluator=evaluator_choice.quick,
        generations=str(generations),
    )
    _write_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    return CellScore.from_summary(summary)


def read_scores(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``scores.jsonl`` as ``{id: row}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {str(row["id"]): row for row in map(json.loads, filter(str.strip, path.read_text().splitlines()))}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
