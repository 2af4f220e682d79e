"""Human reference rows for every Table-1 report: real counsellors' replies scored by the same
evaluator as the models, so a model's figures read against what people write.

Three pairs files `{id, seeker, response}` built from ../shared and cached under
`<cache dir>/human_reference/` (rebuilt when a source file or these settings change):

  annomi_high   AnnoMI therapist turns from high-quality MI sessions that answer a client turn of
                8+ words (the client turn is the seeker); a seeded sample of 300
  annomi_low    the same from low-quality MI sessions (all of them: 223 on the shared data)
  counselchat   the top-voted answer of each CounselChat question (title + text is the seeker);
                a seeded sample of 300

They are registered as reference rows of the cell evaluator (`evaluation.cell.REFERENCES`), so
`recipes/eval_paper.py --references=annomi_high,annomi_low,counselchat` scores them beside the
models with every scorer.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from therapy_align.files import atomic_write_json, atomic_write_jsonl

MIN_CLIENT_WORDS = 8  # a client turn of 8+ words: something to respond to (a choice)
SAMPLE = 300  # pairs per set at most (a seeded sample: enough for a tight bootstrap interval)
SEED = 0
SETS = ("annomi_high", "annomi_low", "counselchat")


def cache_root() -> Path:
    from therapy_align.paths import cache_dir

    return cache_dir() / "human_reference"


def _sample(records: list[dict], n: int, seed: int) -> list[dict]:
    if len(records) <= n:
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=n, replace=False))
    return [records[i] for i in keep]


def annomi_pairs(quality: str, data_dir=None) -> list[dict]:
    """(client turn of 8+ words -> next therapist turn) pairs of AnnoMI sessions of `quality`."""
    from therapy_align.data.transcripts import CLIENT, THERAPIST, load_annomi

    transcripts, _ = load_annomi(data_dir)
    pairs = []
    for transcript in transcripts:
        if transcript.quality != quality:
            continue
        turns = transcript.turns
        for k in range(1, len(turns)):
            before, turn = turns[k - 1], turns[k]
            if (turn.speaker == THERAPIST and before.speaker == CLIENT and turn.text.strip()
                    and len(before.text.split()) >= MIN_CLIENT_WORDS):
                pairs.append({"id": f"annomi-{quality}-{transcript.transcript_id}-{k}",
                              "seeker": before.text.strip(), "response": turn.text.strip()})
    return pairs


def counselchat_pairs(data_dir=None) -> list[dict]:
    """The top-voted answer (ties: first in the file) of every CounselChat question."""
    from therapy_align.data.transcripts import COUNSELCHAT_FILE, read_csv_strict
    from therapy_align.paths import data_file

    frame = read_csv_strict(data_file(COUNSELCHAT_FILE, data_dir), ("questionID", "questionTitle", "questionText",
                                                                  "answerText", "upvotes"), what="CounselChat")
    best: dict[str, tuple[int, int]] = {}
    for row, (qid, upvotes, answer) in enumerate(zip(frame["questionID"], frame["upvotes"], frame["answerText"])):
        if not str(answer).strip():
            continue
        try:
            votes = int(float(upvotes))
        except ValueError:
            votes = 0
        if qid not in best or votes > best[qid][0]:
            best[qid] = (votes, row)
    pairs = []
    for qid, (_, row) in best.items():
        seeker = " ".join(str(frame[c].iloc[row]).strip() for c in ("questionTitle", "questionText")
                          if str(frame[c].iloc[row]).strip())
        if seeker:
            pairs.append({"id": f"counselchat-{qid}", "seeker": seeker, "response": str(frame["answerText"].iloc[row]).strip()})
    return pairs


def _sources(data_dir) -> list[Path]:
    from therapy_align.data.transcripts import ANNOMI_FILES, COUNSELCHAT_FILE
    from therapy_align.paths import data_file

    return [data_file(ANNOMI_FILES["full"], data_dir), data_file(COUNSELCHAT_FILE, data_dir)]


def _fingerprint(data_dir) -> str:
    parts = [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in _sources(data_dir)]
    parts.append(json.dumps({"min_client_words": MIN_CLIENT_WORDS, "sample": SAMPLE, "seed": SEED, "version": 1}))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_all(out_dir: str | os.PathLike | None = None, data_dir=None) -> dict[str, Path]:
    """Write the three pairs files once (atomically) into `out_dir` (default: the cache) and reuse
    them while the sources are unchanged. Returns {set name: path}."""
    root = Path(out_dir) if out_dir is not None else cache_root()
    fingerprint = _fingerprint(data_dir)
    paths = {name: root / f"{name}.jsonl" for name in SETS}
    manifest = root / "manifest.json"
    try:
        if json.loads(manifest.read_text())["fingerprint"] == fingerprint and all(p.is_file() for p in paths.values()):
            return paths
    except (OSError, ValueError, KeyError, TypeError):
        pass
    records = {
        "annomi_high": _sample(annomi_pairs("high", data_dir), SAMPLE, SEED),
        "annomi_low": _sample(annomi_pairs("low", data_dir), SAMPLE, SEED),
        "counselchat": _sample(counselchat_pairs(data_dir), SAMPLE, SEED),
    }
    for name, rows in records.items():
        atomic_write_jsonl(paths[name], rows)
    atomic_write_json(manifest, {"fingerprint": fingerprint, "counts": {k: len(v) for k, v in records.items()}})
    return paths


# Builders of the cell evaluator's reference rows (signature build_pairs(out_dir) -> Path). The
# files live in the shared cache whatever out_dir is, so every report reuses one build.
def build_annomi_high(out_dir: Path) -> Path:
    return build_all()["annomi_high"]


def build_annomi_low(out_dir: Path) -> Path:
    return build_all()["annomi_low"]


def build_counselchat(out_dir: Path) -> Path:
    return build_all()["counselchat"]


def measure(model: str = "artifacts/empeval", *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Each set scored by the EMP-EVAL artifact `model`: per-1,000 sums, Table-1 final and its
    bootstrap 95% interval (pairs resampled), for docs/evaluator.md."""
    import empeval
    from empeval.mechanisms import MECHANISMS, PAPER_INPUTS, final_score

    from therapy_align.scoring import read_pairs

    evaluator = empeval.load(model)
    rng = np.random.default_rng(seed)
    out = {}
    for name, path in build_all().items():
        pairs, _ = read_pairs(path)
        scores = evaluator.score([p.seeker for p in pairs], [p.response for p in pairs])
        levels = np.array([scores.levels[m] for m in MECHANISMS], dtype=float)  # (3, n)
        per_pair = np.array([final_score(*levels[:, i]) for i in range(levels.shape[1])]) * PAPER_INPUTS
        draws = [per_pair[rng.integers(0, len(per_pair), len(per_pair))].mean() for _ in range(bootstrap)]
        out[name] = {
            "n": len(pairs),
            **{m: float(levels[k].mean() * PAPER_INPUTS) for k, m in enumerate(MECHANISMS)},
            "final": float(per_pair.mean()),
            "final_ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
        }
    return out


def main(model: Annotated[str, typer.Option(help="EMP-EVAL artifact directory")] = "artifacts/empeval") -> dict:
    """Score the human reference sets with an EMP-EVAL artifact: the table of docs/evaluator.md.

    ``python -m therapy_align.evaluation.human_reference [--model DIR]``"""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = measure(model)
    print("| set | n | E | I | X | final (95% CI) |\n|---|---|---|---|---|---|")
    for name, row in result.items():
        print(f"| {name} | {row['n']} | {row['emotional_reactions']:.0f} | {row['interpretations']:.0f} | "
              f"{row['explorations']:.0f} | {row['final']:.0f} ({row['final_ci95'][0]:.0f}–{row['final_ci95'][1]:.0f}) |")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(typer.run)(main)
