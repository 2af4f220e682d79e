"""Reading counselling transcripts: AnnoMI's CSV and a plain-text format for users' own sessions.

Both give :class:`Transcript` objects, the input of :mod:`therapy_align.data.cleaning`. Bad input fails
with the file, the row or line, and the field at fault; with ``lenient=True`` bad utterances are
skipped and counted instead.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from therapy_align.paths import DataNotFoundError, data_file

THERAPIST, CLIENT = "therapist", "client"
SPEAKERS = (THERAPIST, CLIENT)

ANNOMI_FILES = {"full": "annomi/AnnoMI-full.csv", "simple": "annomi/AnnoMI-simple.csv"}
ANNOMI_REQUIRED_COLUMNS = ("transcript_id", "mi_quality", "topic", "utterance_id", "interlocutor", "utterance_text")


class TranscriptFormatError(ValueError):
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
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TranscriptFormatError(
            f"{path}: not valid UTF-8 at byte offset {err.start} (byte 0x{raw[err.start]:02x})"
        ) from err


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
        raise DataNotFoundError(f"{csv_path} not found (AnnoMI: github.com/uccollab/AnnoMI)")
    transcripts, rows_in, duplicates, skipped = _read_annomi(str(csv_path.resolve()), csv_path.stat().st_mtime_ns, lenient)
    return list(transcripts), ReadReport(rows_in, duplicates, Counter(dict(skipped)))


@lru_cache(maxsize=4)
def _read_annomi(csv_file: str, mtime_ns: int, lenient: bool) -> tuple[tuple[Transcript, ...], int, int, tuple]:
    """Parsed once per file version (builds of several splits read the same file)."""
    csv_path = Path(csv_file)
    frame = pd.read_csv(io.StringIO(read_text_strict(csv_path)), dtype={"utterance_text": object}, keep_default_na=False, na_values=[""])
    missing = [column for column in ANNOMI_REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise TranscriptFormatError(f"{csv_path}: missing column(s) {', '.join(missing)}")
    report = ReadReport(rows_in=len(frame))
    frame["csv_row"] = range(2, len(frame) + 2)  # 1-based line of the header is 1
    deduplicated = frame.drop_duplicates(subset=["transcript_id", "utterance_id"], keep="first")
    report.duplicate_rows_removed = len(frame) - len(deduplicated)

    transcripts = []
    for transcript_id, rows in deduplicated.sort_values(["transcript_id", "utterance_id"]).groupby("transcript_id", sort=True):
        turns = []
        for row in rows.itertuples(index=False):
            where = f"{csv_path}: row {row.csv_row} (transcript_id={transcript_id}, utterance_id={row.utterance_id})"
            speaker = str(row.interlocutor).strip().lower()
            text = row.utterance_text
            problem = None
            if speaker not in SPEAKERS:
                problem, reason = f"field interlocutor: unknown value {row.interlocutor!r} (expected therapist/client)", "unknown_interlocutor"
            elif not isinstance(text, str) or not text.strip():
                problem, reason = "field utterance_text: empty or NaN", "empty_text"
            if problem is not None:
                if not lenient:
                    raise TranscriptFormatError(f"{where}: {problem}")
                report.skipped[reason] += 1
                continue
            turns.append(Turn(speaker, text.strip()))
        first = rows.iloc[0]
        transcripts.append(
            Transcript(str(transcript_id), str(first.topic), str(first.mi_quality), tuple(turns), source="annomi")
        )
    return tuple(transcripts), report.rows_in, report.duplicate_rows_removed, tuple(report.skipped.items())


_LABELS = {
    "therapist": THERAPIST, "t": THERAPIST, "counselor": THERAPIST, "counsellor": THERAPIST,
    "client": CLIENT, "c": CLIENT, "patient": CLIENT,
}
_LABELLED_LINE = re.compile(r"^\s*([A-Za-z]+)\s*:\s?(.*)$")
_HEADER_LINE = re.compile(r"^\s*#\s*(\w+)\s*:\s*(.*)$")


def parse_plain_transcript(text: str, *, name: str = "<text>") -> Transcript:
    """A speaker-labelled transcript: ``Therapist:``/``Client:`` (or ``T:``/``C:``) lines.

    Unlabelled lines continue the previous utterance; blank lines are ignored; ``# key: value``
    lines before the first utterance set metadata (``# topic: grief``, ``# id: session-1``);
    other ``#`` lines are comments.
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
        if labelled and labelled.group(1).lower() in _LABELS:
            turns.append([_LABELS[labelled.group(1).lower()], labelled.group(2).strip()])
        elif not turns:
            raise TranscriptFormatError(
                f"{name}: line {line_number}: expected a speaker label "
                f"(Therapist:/Client:/T:/C:), got {line.strip()[:60]!r}"
            )
        else:
            turns[-1][1] = f"{turns[-1][1]} {line.strip()}".strip()
    if not turns:
        raise TranscriptFormatError(f"{name}: no utterances found")
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
        raise DataNotFoundError(f"transcript {path} not found")
    return parse_plain_transcript(read_text_strict(path), name=str(path))


COUNSELCHAT_FILE = "counsel_chat/counsel_chat.csv"
COUNSELCHAT_REQUIRED_COLUMNS = ("questionID", "questionTitle", "questionText", "answerText", "topic", "split")


def load_counselchat(data_dir: str | Path | None = None, *, split: str = "train") -> tuple[list[Transcript], Counter]:
    """CounselChat answers as single-exchange transcripts (question -> licensed therapist's answer)."""
    csv_path = data_file(COUNSELCHAT_FILE, data_dir)
    frame = pd.read_csv(io.StringIO(read_text_strict(csv_path)), keep_default_na=False)
    missing = [column for column in COUNSELCHAT_REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise TranscriptFormatError(f"{csv_path}: missing column(s) {', '.join(missing)}")
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
