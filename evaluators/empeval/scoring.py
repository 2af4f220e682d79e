"""`empeval score`: JSONL of (id, seeker, response) in, JSONL of levels + summary.json out.

Output is written to `<out>.part` one complete line per pair and renamed to `<out>` only at the
end. A rerun after an interruption keeps the whole lines of the `.part` file and scores only the
ids not in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from empeval.mechanisms import MECHANISMS, summarise_levels

REQUIRED_FIELDS = ("id", "seeker", "response")
SUMMARY_FILE = "summary.json"


class PairsFileError(ValueError):
    """A bad input line; the message names the file, the line number and the problem."""


@dataclass(frozen=True, kw_only=True)
class Pair:
    id: str | int
    seeker: str
    response: str
    line: int


def _parse_line(path: Path, number: int, text: str) -> Pair:
    if not text.strip():
        raise PairsFileError(f"{path}:{number}: blank line")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise PairsFileError(f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise PairsFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise PairsFileError(f"{path}:{number}: missing field(s) {', '.join(repr(f) for f in missing)}")
    if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        raise PairsFileError(f"{path}:{number}: field 'id' must be a string or an integer")
    for name in ("seeker", "response"):
        if not isinstance(record[name], str):
            raise PairsFileError(f"{path}:{number}: field {name!r} must be a string, got {type(record[name]).__name__}")
    return Pair(id=record["id"], seeker=record["seeker"], response=record["response"], line=number)


def read_pairs(path: str | os.PathLike, lenient: bool = False) -> tuple[list[Pair], list[str]]:
    """Valid pairs and, with `lenient`, the messages of skipped lines (else the first bad line raises)."""
    path = Path(path)
    pairs, skipped, seen = [], [], {}
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            try:
                pair = _parse_line(path, number, text)
                if pair.id in seen:
                    raise PairsFileError(f"{path}:{number}: id {pair.id!r} repeats line {seen[pair.id]}")
            except PairsFileError as err:
                if not lenient:
                    raise
                skipped.append(str(err))
                continue
            seen[pair.id] = number
            pairs.append(pair)
    return pairs, skipped


def _finished_lines(part: Path) -> dict[str | int, dict]:
    """Results already in `<out>.part`, keeping whole lines only (a cut-off last line is redone)."""
    if not part.exists():
        return {}
    done, keep = {}, 0
    with part.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                break
            done[record["id"]] = record
            keep += len(raw)
    with part.open("r+b") as handle:
        handle.truncate(keep)  # drop a torn tail so appends start on a line boundary
    return done


def score_file(
    evaluator,
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    lenient: bool = False,
    batch_size: int = 64,
    flush_every: int = 512,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Score every pair of `in_path` into `out_path` and `summary.json` beside it; returns the summary.

    Results are appended to `<out>.part` every `flush_every` pairs, so an interrupted run loses at
    most one chunk of work.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    pairs, skipped = read_pairs(in_path, lenient=lenient)
    part = out_path.with_name(out_path.name + ".part")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = _finished_lines(part)
    wanted_ids = {p.id for p in pairs}
    stale = [i for i in done if i not in wanted_ids]
    if stale:
        raise PairsFileError(
            f"{part} holds results for id(s) not in {in_path} (e.g. {stale[0]!r}): it belongs to another "
            "input; delete it to start over"
        )
    todo = [p for p in pairs if p.id not in done]
    if on_progress and done:
        on_progress(len(done))
    with part.open("a", encoding="utf-8") as handle:
        for start in range(0, len(todo), flush_every):
            chunk = todo[start : start + flush_every]
            scores = evaluator.score([p.seeker for p in chunk], [p.response for p in chunk], batch_size=batch_size)
            for index, pair in enumerate(chunk):
                record = {"id": pair.id, **scores.row(index)}
                done[pair.id] = record
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            if on_progress:
                on_progress(len(chunk))
    # Output in input order, whatever order the pieces were scored in.
    ordered = [done[p.id] for p in pairs]
    tmp_out = out_path.with_name(f".{out_path.name}.tmp")
    with tmp_out.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in ordered)
    summary = summarise_levels({m: [r[m]["level"] for r in ordered] for m in MECHANISMS}, n_skipped=len(skipped))
    summary["input"] = str(in_path)
    summary["skipped_lines"] = skipped
    summary_path = out_path.with_name(SUMMARY_FILE)
    tmp_summary = summary_path.with_name(f".{SUMMARY_FILE}.tmp")
    tmp_summary.write_text(json.dumps(summary, indent=2))
    os.replace(tmp_out, out_path)
    os.replace(tmp_summary, summary_path)
    part.unlink()
    return summary
