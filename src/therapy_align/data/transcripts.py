"""Reading counselling transcripts: AnnoMI's CSV and a plain-text format for users' own sessions.

Both give :class:`Transcript` objects, the input of :mod:`therapy_align.data.cleaning`. Bad input fails
with the file, the row or line, and the field at fault; with ``lenient=True`` bad utterances are
skipped and counted instead.
"""

from __future__ import annotations

import difflib
import io
import re
import unicodedata
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


# ---------------------------------------------------------------------------- plain-text sessions
#
# The speaker-label grammar (docs/sft.md, "Transcript format"). A labelled line is
#
#     [timestamp] [emphasis]label[emphasis] colon [emphasis] text
#
# and the label is resolved to a role by, in order: a name declared in a ``# therapist:`` /
# ``# client:`` header, a role word or alias (any case, accents optional), a role word with a number
# or a name in brackets ("Client 2", "Therapist (Dr Lee)"). Everything else that has the shape of a
# label is refused: taking it as a continuation line would train one speaker's words as the other's.

_ROLE_WORDS = {
    THERAPIST: ("therapist", "t", "th", "counsellor", "counselor", "clinician", "psychologist", "psychotherapist",
                # Spanish, Portuguese, Italian, French, German
                "terapeuta", "psicologo", "psicologa", "consejero", "consejera",
                "therapeute", "psychologue", "conseiller", "conseillere", "therapeut", "therapeutin",
                "berater", "beraterin",
                # Chinese, Japanese (typed with the full-width colon)
                "治疗师", "咨询师", "心理咨询师", "カウンセラー", "セラピスト"),
    CLIENT: ("client", "c", "cl", "patient", "p", "pt",
             "cliente", "paciente", "consultante", "paziente",
             "patiente", "klient", "klientin", "patientin",
             "来访者", "求助者", "患者", "クライエント", "相談者"),
}
_LABELS = {word: role for role, words in _ROLE_WORDS.items() for word in words}
# Numbered or generic speakers say nothing about who is the therapist; they need a declaration.
_NUMBERED_SPEAKER = re.compile(r"^(?:speaker|person|participant|spk|interlocutor|voice|sprecher|locuteur|hablante)"
                               r"\s*#?\s*\d+$")
_ROLE_WITH_SUFFIX = re.compile(r"^(?P<word>[a-z]+)\s*(?:#?\s*\d+|\(.*\))$")
_COLONS = ":\uff1a\ufe55"  # ASCII, full-width (CJK input methods), small
_EMPHASIS = r"(?:\*\*|__|\*|_)"
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?(?:\s*[AaPp]\.?[Mm]\.?)?"
# A time before the label: "[00:01:23]", "(12:03 PM)", "00:01 ", "12:03 PM -". A bare time needs a
# space or a dash after it, so "10:30 is when it happened." is still text.
_TIMESTAMP = re.compile(rf"^(?:[\[(]\s*{_TIME}\s*[\])]|{_TIME}(?=\s|[-\u2013\u2014|]))\s*(?:[-\u2013\u2014|]\s*)?")
_TIMESTAMP_ONLY = re.compile(rf"^\s*(?:[\[(]\s*{_TIME}\s*[\])]|{_TIME})\s*$")
_LABEL_CHAR = r"(?:[^\W_]|[ .'\u2019()\-])"
# Emphasis after the colon closes one opened before the label ("**Therapist:** ..."); otherwise it
# belongs to the text ("T: *sighs* okay").
_LABEL = re.compile(
    rf"^(?P<open>{_EMPHASIS})?(?P<label>[^\W\d_]{_LABEL_CHAR}{{0,29}}?)\s*(?P<close>{_EMPHASIS})?\s*[{_COLONS}]"
    rf"(?(close)|(?(open)(?:\s*{_EMPHASIS})?))(?P<rest>.*)$"
)
_MAX_LABEL_WORDS = 3
_LABEL_HELP = "Therapist:/Client:/T:/C:"
_HEADER_LINE = re.compile(rf"^\s*#\s*(\w+)\s*[{_COLONS}]\s*(.*)$")
_SESSION_HEADERS = ("id", "topic", THERAPIST, CLIENT)  # the headers this format reads


def _fold(label: str) -> str:
    """A label compared case-insensitively, accents optional, spaces collapsed, a final dot dropped."""
    decomposed = unicodedata.normalize("NFKD", label.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split()).rstrip(".").strip()


@dataclass(frozen=True)
class _Label:
    label: str  # as written, without emphasis and colon
    text: str  # the rest of the line


def _split_label(line: str) -> _Label | None:
    """The label and text of a line that has the shape of a labelled line, else None."""
    body = line.strip()
    stamp = _TIMESTAMP.match(body)
    if stamp:
        body = body[stamp.end():]
    match = _LABEL.match(body)
    if not match:
        return None
    label = match.group("label").strip()
    if len(re.sub(r"\(.*\)", "", label).split()) > _MAX_LABEL_WORDS:  # "Therapist (Dr Ann Lee)" is one speaker
        return None  # "But the thing is: ..." is a sentence, not a speaker
    return _Label(label, match.group("rest").strip())


def _read_role_names(value: str, key: str, *, name: str, line: int, roles: dict[str, str]) -> None:
    # the name as it appears before the colon in the session ("**Speaker 1:**" declares "Speaker 1")
    for speaker in (part.strip().strip("*_").rstrip(_COLONS).strip() for part in value.split(",")):
        if not speaker:
            raise TranscriptFormatError(f"'# {key}:' names no speaker", file=name, line=line, field=key,
                                        fix=f"write '# {key}: NAME' with the label used in the session (e.g. Speaker 1)")
        folded = _fold(speaker)
        if roles.get(folded, key) != key:
            raise TranscriptFormatError(f"{speaker!r} is declared both therapist and client", file=name, line=line,
                                        field=key, fix="declare each speaker once")
        roles[folded] = key


def _resolve(label: _Label, declared: dict[str, str]) -> str | None:
    folded = _fold(label.label)
    if folded in declared:
        return declared[folded]
    if folded in _LABELS:
        return _LABELS[folded]
    suffixed = _ROLE_WITH_SUFFIX.match(folded)
    if suffixed and len(suffixed.group("word")) > 1 and suffixed.group("word") in _LABELS:
        return _LABELS[suffixed.group("word")]  # "Client 2", "Therapist (Dr Lee)"
    return None


def _unrecognised(label: _Label, *, name: str, line: int) -> TranscriptFormatError:
    written = label.label
    if _NUMBERED_SPEAKER.match(_fold(written)):
        return TranscriptFormatError(
            f"{written + ':'!r} does not say who is the therapist", file=name, line=line, field="speaker",
            fix=f"declare the speakers before the first utterance ('# therapist: {written}' and '# client: ...'), "
                f"or label the lines {_LABEL_HELP}")
    close = difflib.get_close_matches(_fold(written), [k for k in _LABELS if len(k) > 2], n=1, cutoff=0.6)
    guess = f"did you mean {close[0].capitalize()}:? " if close else ""
    return TranscriptFormatError(
        f"{written + ':'!r} looks like a speaker label but is not one ({_LABEL_HELP})", file=name, line=line,
        field="speaker",
        fix=f"{guess}fix the label, declare a named speaker before the first utterance ('# therapist: {written}' "
            f"or '# client: {written}'), or indent the line if it continues the previous utterance")


def parse_plain_transcript(text: str, *, name: str = "<text>") -> Transcript:
    """A speaker-labelled transcript, one session per file (grammar: docs/sft.md, "Transcript format").

    ``Therapist:``/``Client:`` lines (or aliases, any case, with emphasis, a full-width colon or a
    timestamp before them) start utterances; unlabelled lines continue the previous one; blank and
    timestamp-only lines are ignored. ``# key: value`` lines before the first utterance set metadata
    (``# id:``, ``# topic:``, and ``# therapist: NAME`` / ``# client: NAME`` for named or numbered
    speakers); other ``#`` lines are comments. Refused, naming the line: an unindented line with the
    shape of a label that is none of these, an undeclared numbered speaker, an empty or repeated
    ``# id:``, a session header after the first utterance; naming the file: a session without both roles.
    """
    metadata: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    declared: dict[str, str] = {}
    turns: list[list[str]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or _TIMESTAMP_ONLY.match(line):
            continue
        if line.lstrip().startswith("#"):
            header = _HEADER_LINE.match(line)
            key = header.group(1).lower() if header else None
            if key in _SESSION_HEADERS:
                value = header.group(2).strip()
                if turns:
                    raise TranscriptFormatError(
                        f"'# {key}:' after the first utterance", file=name, line=line_number, field=key,
                        fix="put session headers before the first utterance; give each session its own file")
                if key in (THERAPIST, CLIENT):
                    _read_role_names(value, key, name=name, line=line_number, roles=declared)
                    continue
                if not value:
                    raise TranscriptFormatError(f"'# {key}:' is empty", file=name, line=line_number, field=key,
                                                fix=f"give the session's {key} or remove the line")
                if key in header_lines:
                    raise TranscriptFormatError(
                        f"'# {key}:' given twice (lines {header_lines[key]} and {line_number})", file=name,
                        line=line_number, field=key, fix=f"give one '# {key}:' per file; one session per file")
                header_lines[key] = line_number
                metadata[key] = value
            elif header and not turns:
                metadata.setdefault(key, header.group(2).strip())
            continue
        labelled = _split_label(line)
        role = _resolve(labelled, declared) if labelled else None
        if role is not None:
            turns.append([role, labelled.text])
        elif labelled and not line[:1].isspace() and not labelled.text[:1] in ("/", *"0123456789"):
            # a time ("at 10:30 ...") or an address ("http://...") is text; anything else shaped
            # like a label is a mistyped, foreign or named speaker
            raise _unrecognised(labelled, name=name, line=line_number)
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
    counts = Counter(role for role, _ in turns)
    for role, other in ((CLIENT, THERAPIST), (THERAPIST, CLIENT)):
        if not counts[role]:
            # a one-sided session would be trained as replies to an invented opener, or not at all
            raise TranscriptFormatError(
                f"session {transcript_id!r} has no {role} turns ({counts[other]} {other}): a session needs both roles",
                file=name, fix=f"label the {role}'s lines {role.capitalize()}: (or declare the speaker: '# {role}: NAME')")
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
