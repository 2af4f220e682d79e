"""Reading counselling transcripts: AnnoMI's CSV and a plain-text format for users' own sessions.

Both give :class:`Transcript` objects, the input of :mod:`therapy_align.data.cleaning`. Bad input fails
with the file, the row or line, and the field at fault; with ``lenient=True`` bad utterances are
skipped and counted instead.
"""

from __future__ import annotations

import difflib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from therapy_align.errors import UserError
from therapy_align.paths import DataNotFoundError, data_file

THERAPIST, CLIENT = "therapist", "client"
SPEAKERS = (THERAPIST, CLIENT)

ANNOMI_FILES = {"full": "annomi/AnnoMI-full.csv", "simple": "annomi/AnnoMI-simple.csv"}
ANNOMI_REQUIRED_COLUMNS = ("transcript_id", "mi_quality", "topic", "utterance_id", "interlocutor", "utterance_text")


class TranscriptFormatError(UserError, ValueError):
    """Malformed transcript input; the message names the file, row/line and field."""


@dataclass(frozen=True)
class Turn:
    speaker: str  # "therapist" or "client"
    text: str


@dataclass(frozen=True)
class Transcript:
    transcript_id: str
    topic: str
    quality: str  # AnnoMI's MI quality ("high"/"low"); "user" for the user's own sessions
    turns: tuple[Turn, ...]
    source: str = "annomi"


@dataclass
class ReadReport:
    """What reading skipped or removed, for stats.json."""

    rows_in: int = 0
    duplicate_rows_removed: int = 0
    skipped: Counter = field(default_factory=Counter)


def read_text_strict(path: Path) -> str:
    """The file decoded as UTF-8, or an error giving the byte offset of the first bad byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Excel, Notepad) is not text
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise TranscriptFormatError(
            f"not valid UTF-8 at byte offset {err.start} (byte 0x{raw[err.start]:02x})", file=path, line=line,
            fix="save the file as UTF-8",
        ) from None


def load_annomi(
    data_dir: str | Path | None = None,
    *,
    variant: str = "full",
    path: str | Path | None = None,
    lenient: bool = False,
) -> tuple[list[Transcript], ReadReport]:
    """All AnnoMI transcripts, one utterance per (transcript_id, utterance_id), in utterance order.

    The full CSV repeats utterances once per annotator; those repeats are removed here.
    """
    csv_path = Path(path) if path is not None else data_file(ANNOMI_FILES[variant], data_dir)
    if not csv_path.is_file():
        raise DataNotFoundError("not found", file=csv_path, fix="get AnnoMI from github.com/uccollab/AnnoMI")
    transcripts, rows_in, duplicates, skipped = _read_annomi(str(csv_path.resolve()), csv_path.stat().st_mtime_ns, lenient)
    return list(transcripts), ReadReport(rows_in, duplicates, Counter(dict(skipped)))


def read_csv_strict(csv_path: Path, required: tuple[str, ...], *, what: str) -> pd.DataFrame:
    """All cells as strings (so ids are never silently re-typed); an empty file, a file with no data
    rows, or missing columns fail naming the file."""
    text = read_text_strict(csv_path)
    if not text.strip():
        raise TranscriptFormatError("the file is empty", file=csv_path, fix=f"give the {what} CSV")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as err:
        raise TranscriptFormatError(f"not a readable CSV ({err})", file=csv_path) from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TranscriptFormatError(f"missing column(s) {', '.join(missing)}", file=csv_path, line=1, field="header",
                                    fix=f"the {what} CSV needs {', '.join(required)}")
    if frame.empty:
        raise TranscriptFormatError("has a header but no data rows", file=csv_path, fix=f"give the {what} CSV")
    return frame


def _as_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


@lru_cache(maxsize=4)
def _read_annomi(csv_file: str, mtime_ns: int, lenient: bool) -> tuple[tuple[Transcript, ...], int, int, tuple]:
    """Parsed once per file version (builds of several splits read the same file)."""
    csv_path = Path(csv_file)
    frame = read_csv_strict(csv_path, ANNOMI_REQUIRED_COLUMNS, what="AnnoMI")
    report = ReadReport(rows_in=len(frame))
    frame["csv_row"] = range(2, len(frame) + 2)  # 1-based line of the header is 1
    # Ids are integers: a stray non-numeric id would otherwise turn the column into strings and sort
    # every transcript's turns as 0, 1, 10, 11, ..., 2.
    keep = []
    for row in frame.itertuples(index=False):
        for column in ("transcript_id", "utterance_id"):
            if _as_int(getattr(row, column)) is None:
                if not lenient:
                    raise TranscriptFormatError(
                        f"{getattr(row, column)!r} is not an integer", file=csv_path, line=row.csv_row, field=column,
                        fix="AnnoMI ids are whole numbers; fix the cell or pass --lenient to skip the row")
                report.skipped[f"non_integer_{column}"] += 1
                break
        else:
            keep.append(row.csv_row)
    frame = frame[frame["csv_row"].isin(keep)].copy()
    frame["transcript_id"] = frame["transcript_id"].map(_as_int)
    frame["utterance_id"] = frame["utterance_id"].map(_as_int)
    deduplicated = frame.drop_duplicates(subset=["transcript_id", "utterance_id"], keep="first")
    report.duplicate_rows_removed = len(frame) - len(deduplicated)

    transcripts = []
    for transcript_id, rows in deduplicated.sort_values(["transcript_id", "utterance_id"]).groupby("transcript_id", sort=True):
        turns = []
        for row in rows.itertuples(index=False):
            ids = f"(transcript_id={transcript_id}, utterance_id={row.utterance_id})"
            speaker = str(row.interlocutor).strip().lower()
            text = row.utterance_text
            problem = None
            if speaker not in SPEAKERS:
                problem = ("interlocutor", f"unknown value {row.interlocutor!r} {ids}", "expected therapist or client",
                           "unknown_interlocutor")
            elif not isinstance(text, str) or not text.strip():
                problem = ("utterance_text", f"empty {ids}", "give the utterance's text", "empty_text")
            if problem is not None:
                column, what, fix, reason = problem
                if not lenient:
                    raise TranscriptFormatError(what, file=csv_path, line=row.csv_row, field=column,
                                                fix=f"{fix}, or pass --lenient to skip bad utterances")
                report.skipped[reason] += 1
                continue
            turns.append(Turn(speaker, text.strip()))
        first = rows.iloc[0]
        transcripts.append(
            Transcript(str(transcript_id), str(first.topic), str(first.mi_quality), tuple(turns), source="annomi")
        )
    if not transcripts:
        raise TranscriptFormatError("no usable rows (every row was skipped)", file=csv_path,
                                    fix="check the file; --lenient skipped: "
                                        + ", ".join(f"{k} {v}" for k, v in report.skipped.items()))
    return tuple(transcripts), report.rows_in, report.duplicate_rows_removed, tuple(report.skipped.items())


_LABELS = {
    "therapist": THERAPIST, "t": THERAPIST, "counselor": THERAPIST, "counsellor": THERAPIST,
    "client": CLIENT, "c": CLIENT, "patient": CLIENT,
}
_LABELLED_LINE = re.compile(r"^\s*([A-Za-z]+)\s*:\s?(.*)$")
# An unindented ``Word:`` that is no known label is most likely a mistyped one (``Clinet:``): taking it
# as a continuation would train on client speech as the therapist's. Indented lines continue.
_LABEL_LIKE = re.compile(r"^([A-Za-z][A-Za-z'-]*)\s*:")
_LABEL_HELP = "Therapist:/Client:/T:/C:"
_HEADER_LINE = re.compile(r"^\s*#\s*(\w+)\s*:\s*(.*)$")


def parse_plain_transcript(text: str, *, name: str = "<text>") -> Transcript:
    """A speaker-labelled transcript: ``Therapist:``/``Client:`` (or ``T:``/``C:``) lines.

    Unlabelled lines continue the previous utterance; blank lines are ignored; ``# key: value``
    lines before the first utterance set metadata (``# topic: grief``, ``# id: session-1``);
    other ``#`` lines are comments. An unindented line opening with an unknown ``Word:`` is
    refused as a probable mistyped label (indent it to continue the previous utterance).
    """
    metadata: dict[str, str] = {}
    turns: list[list[str]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            header = _HEADER_LINE.match(line)
            if header and not turns:
                metadata[header.group(1).lower()] = header.group(2).strip()
            continue
        labelled = _LABELLED_LINE.match(line)
        label_like = _LABEL_LIKE.match(line)
        if labelled and labelled.group(1).lower() in _LABELS:
            turns.append([_LABELS[labelled.group(1).lower()], labelled.group(2).strip()])
        elif label_like:
            word = label_like.group(1)
            close = difflib.get_close_matches(word.lower(), [k for k in _LABELS if len(k) > 1], n=1, cutoff=0.6)
            guess = f"did you mean {close[0].capitalize()}:? " if close else ""
            raise TranscriptFormatError(
                f"{word + ':'!r} looks like a speaker label but is not one ({_LABEL_HELP})", file=name,
                line=line_number, field="speaker",
                fix=f"{guess}fix the label, or indent the line if it continues the previous utterance")
        elif not turns:
            raise TranscriptFormatError(
                f"expected a speaker label ({_LABEL_HELP}), got {line.strip()[:60]!r}", file=name, line=line_number,
                field="speaker", fix="start the session with a labelled line")
        else:
            turns[-1][1] = f"{turns[-1][1]} {line.strip()}".strip()
    if not turns:
        raise TranscriptFormatError("no utterances found", file=name,
                                    fix=f"write one utterance per line, starting {_LABEL_HELP}")
    transcript_id = metadata.get("id", Path(name).stem)
    return Transcript(
        transcript_id=transcript_id,
        topic=metadata.get("topic", "other"),
        quality="user",
        turns=tuple(Turn(speaker, text) for speaker, text in turns),
        source="extra",
    )


def load_plain_transcript(path: str | Path) -> Transcript:
    path = Path(path)
    if not path.is_file():
        what = "is a directory, expected a transcript file" if path.is_dir() else "no such transcript file"
        raise DataNotFoundError(what, file=path, field="--extra", fix="give a plain-text transcript (.txt)")
    return parse_plain_transcript(read_text_strict(path), name=str(path))


COUNSELCHAT_FILE = "counsel_chat/counsel_chat.csv"
COUNSELCHAT_REQUIRED_COLUMNS = ("questionID", "questionTitle", "questionText", "answerText", "topic", "split")


def load_counselchat(data_dir: str | Path | None = None, *, split: str = "train") -> tuple[list[Transcript], Counter]:
    """CounselChat answers as single-exchange transcripts (question -> licensed therapist's answer)."""
    csv_path = data_file(COUNSELCHAT_FILE, data_dir)
    frame = read_csv_strict(csv_path, COUNSELCHAT_REQUIRED_COLUMNS, what="CounselChat")
    skipped: Counter = Counter()
    transcripts = []
    for row_number, row in enumerate(frame.itertuples(index=False), start=2):
        if row.split != split:
            continue
        question = " ".join(part.strip() for part in (row.questionTitle, row.questionText) if str(part).strip())
        answer = str(row.answerText).strip()
        if not question or not answer:
            skipped["counselchat_empty"] += 1
            continue
        transcripts.append(
            Transcript(f"counselchat-{row.questionID}-{row_number}", str(row.topic), "licensed",
                       (Turn(CLIENT, question), Turn(THERAPIST, answer)), source="counselchat")
        )
    return transcripts, skipped
