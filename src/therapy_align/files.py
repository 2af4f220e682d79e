"""The one home of file writing and JSON helpers: atomic writes, JSON-able values, strict JSONL input.

Every output a person may open (reports, summaries, configs) is written to a temporary name in the
same directory and renamed into place, so a kill never leaves a half-written file. JSONL inputs
(``{"id", ...}`` per line) are read by :func:`read_jsonl`, which names the file, line and field of
the first bad line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from therapy_align.errors import FileSystemError, UserError, file_system_error


class InputFileError(UserError):
    """A bad line or field in an input file."""


@contextlib.contextmanager
def file_system_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn the user's file-system problems met in the block into :class:`FileSystemError` naming
    ``path`` (or the file the OS names); a ``<out>.part`` written so far stays for the resume."""
    try:
        yield
    except OSError as err:
        error = file_system_error(err, path)
        if error is None:
            raise
        raise error from err


# --------------------------------------------------------------------------- JSON values


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples, paths and enums as plain JSON values (dicts, lists, str, numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):  # in a fixed order: hash order differs between processes
        return sorted((jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def canonical_json(value: Any) -> str:
    """A stable serialisation (sorted keys, no spaces) for hashing."""
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- atomic writes


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with file_system_errors(path):
        if path.exists() and not path.is_file():
            # os.replace would rename the temporary file over a device node or a pipe
            raise FileSystemError("is not a regular file (a device, pipe or socket)", file=path,
                                  fix="choose a file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with tmp.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | os.PathLike, value: Any, *, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(value), indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(jsonable(r), ensure_ascii=False) + "\n" for r in records))


def append_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> int:
    """Append whole lines in one write, flushed and fsynced: a kill leaves at most a torn last line."""
    payload = "".join(json.dumps(jsonable(r), ensure_ascii=False) + "\n" for r in records)
    if payload:
        with file_system_errors(path), open(path, "a", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    return payload.count("\n")


def repair_torn_tail(path: str | os.PathLike) -> int:
    """Cut a torn last line (no trailing newline, e.g. after a kill mid-write) off ``path``.

    Returns the number of bytes removed (0 when the file is whole or absent).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with file_system_errors(path), path.open("rb+") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return len(data) - keep


# --------------------------------------------------------------------------- strict JSONL input

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list",
               dict: "an object"}


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _check_field(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, kinds)


def read_jsonl(
    path: str | os.PathLike,
    *,
    fields: Mapping[str, type | tuple[type, ...]],
    optional: Mapping[str, type | tuple[type, ...]] | None = None,
    lenient: bool = False,
    unique_id: str | None = "id",
    allow_empty: bool = False,
    nonblank: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a JSONL file, each checked for ``fields`` (name -> type), plus skipped-line messages.

    Strict by default: the first bad line raises :class:`InputFileError` naming the file, the line
    and the field. With ``lenient`` bad lines are skipped and their messages returned. Ids (field
    ``unique_id``) must not repeat; a file with no records is an error unless ``allow_empty``.
    Fields named in ``nonblank`` must not be blank (empty or whitespace only).
    Each record gets ``_line`` (its 1-based line number) for later messages.
    """
    path = Path(path)
    with file_system_errors(path):
        if not path.exists():
            raise InputFileError("no such file", file=path, fix="check the path")
    if path.is_dir():
        raise InputFileError("is a directory, expected a JSONL file", file=path)
    optional = optional or {}
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    seen: dict[Any, int] = {}
    with file_system_errors(path), path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                record = _parse_record(path, number, raw, fields, optional)
                if record is None:
                    continue
                for name in nonblank:
                    if not str(record.get(name, "")).strip():
                        raise InputFileError("is blank", file=path, line=number, field=name,
                                             fix="give a non-empty value")
                if unique_id is not None:
                    key = str(record[unique_id])  # 1 and "1" are one id to every store keyed by str
                    if key in seen:
                        raise InputFileError(f"id {key!r} repeats line {seen[key]}", file=path, line=number,
                                             field=unique_id, fix="ids must be unique")
                    seen[key] = number
            except InputFileError as error:
                if not lenient:
                    raise
                skipped.append(str(error))
                continue
            records.append(record)
    if not records and not allow_empty:
        what = "has no valid records" if skipped else "is empty"
        raise InputFileError(what, file=path, fix="give at least one JSON object per line")
    return records, skipped


def _parse_record(path: Path, number: int, raw: bytes, fields: Mapping[str, Any],
                  optional: Mapping[str, Any]) -> dict[str, Any] | None:
    if number == 1 and raw.startswith(UTF8_BOM):  # Windows editors mark UTF-8 so; CSV and session files take it too
        raw = raw[len(UTF8_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"not UTF-8 (byte {err.start} of the line)", file=path, line=number,
                             fix="save the file as UTF-8") from None
    if not text.strip():
        return None
    record = parse_json_text(text, file=path, line=number)
    if not isinstance(record, dict):
        raise InputFileError(f"expected a JSON object, got {type(record).__name__}", file=path, line=number)
    for name, kind in fields.items():
        if name not in record:
            raise InputFileError("missing field", file=path, line=number, field=name,
                                 fix=f"each line needs {', '.join(repr(f) for f in fields)}")
        if not _check_field(record[name], kind):
            raise InputFileError(f"must be {_type_name(kind)}, got {type(record[name]).__name__}",
                                 file=path, line=number, field=name)
    for name, kind in optional.items():
        if name in record and record[name] is not None and not _check_field(record[name], kind):
            raise InputFileError(f"must be {_type_name(kind)}, got {type(record[name]).__name__}",
                                 file=path, line=number, field=name)
    record["_line"] = number
    return record


# --------------------------------------------------------------------------- text at the door

UTF8_BOM = b"\xef\xbb\xbf"
# Deeper than any record this project reads; bounded so that a hostile file meets a clear error
# instead of the interpreter's recursion limit (in json, the hashes and the writers).
MAX_JSON_DEPTH = 64


def text_problem(text: str) -> str | None:
    """What makes ``text`` unstorable as UTF-8, or None: a lone surrogate (``"\\ud800"`` escaped in
    JSON decodes to one, and no UTF-8 writer or hash can encode it)."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    for index, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            return f"holds a lone surrogate U+{ord(char):04X} (at character {index}), which is not valid Unicode"
    return None


def check_json_value(value: Any, *, file: Any = None, line: int | None = None) -> None:
    """Refuse a decoded JSON value nested deeper than :data:`MAX_JSON_DEPTH` or holding text that is
    not valid Unicode, naming the file, line and field (walked without recursion)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputFileError(f"nested deeper than {MAX_JSON_DEPTH} levels", file=file, line=line,
                                 field=where or None, fix="flatten the record")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise InputFileError(problem, file=file, line=line, field=where or None,
                                     fix="remove the character or save the text as valid UTF-8")
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    raise InputFileError(f"a key {problem}", file=file, line=line, field=where or None,
                                         fix="remove the character or save the text as valid UTF-8")
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))


def parse_json_text(text: str, *, file: Any = None, line: int | None = None) -> Any:
    """``json.loads(text)`` for input files: invalid JSON, nesting deeper than :data:`MAX_JSON_DEPTH`
    and text that is not valid Unicode are one :class:`InputFileError` naming the file and line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(f"invalid JSON ({err.msg} at column {err.colno})", file=file, line=line) from None
    except RecursionError:
        raise InputFileError(f"nested deeper than {MAX_JSON_DEPTH} levels", file=file, line=line,
                             fix="flatten the record") from None
    check_json_value(value, file=file, line=line)
    return value


def read_json_file(path: str | os.PathLike) -> Any:
    """A whole JSON file (a BOM allowed), checked as :func:`parse_json_text` checks a line."""
    path = Path(path)
    with file_system_errors(path):
        data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(f"not UTF-8 (byte {err.start})", file=path, fix="save the file as UTF-8") from None
    return parse_json_text(text, file=path)


# --------------------------------------------------------------------------- output paths


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same path after symlinks, or the same inode (a hard link)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return os.path.samefile(a, b)
    except (OSError, RuntimeError):  # either is absent (or a symlink loop): no file to share
        return False


def _kind_of(path: Path) -> str | None:
    """``"file"``, ``"dir"``, ``"other"`` (a device node, pipe or socket) or None when absent."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno in (errno.ENOTDIR, errno.ELOOP) or file_system_error(err, path) is None:
            return None
        raise
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


NAME_MAX = 255  # bytes in one file name on every common file system
# What the writers add to an output's name: ".<name>.part.tmp-<pid>" is the longest.
WRITER_SUFFIX = len("." + ".part" + ".tmp-") + 7


def file_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of a file's SHA-256, read in 1 MiB blocks (a model file may be large)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def refuse_to_replace(out: str | os.PathLike | None, *, force: bool, field: str = "--out") -> None:
    """A report that a command writes whole (not a resumable store) never replaces an existing file
    unless the user passed ``--force``: the file may be theirs, or a result they meant to keep."""
    if out is not None and not force and Path(out).exists():
        raise UserError("exists; not replaced", file=out, field=field,
                        fix=f"pass --force to replace it, or choose another {field}")


def check_output_path(out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                      kind: str = "file", side_files: Iterable[str | os.PathLike] = (),
                      field: str = "--out", force: bool | None = None) -> Path:
    """Refuse, before any work, an output that would overwrite an input or cannot be written.

    ``out`` and every file written with it (``side_files``: its ``.part``, its summary, the files of
    an output directory) must not be an input, by path, through a symlink or as a hard link (the
    same device and inode). An existing output or side file must be a regular file (a device node or
    pipe would be renamed by the atomic writers), its directory writable, its name short enough for
    the writers' temporary names, and ``kind`` says what ``out`` is: ``"file"`` (not a
    directory) or ``"dir"`` (not a file). With ``force`` given (the command's ``--force``), a side
    file that exists while no earlier output does is someone's own file: refused unless ``force``.
    No message for a collision with an input advises ``--force``: it would destroy the input.
    """
    out = Path(out)
    sources = [Path(source) for source in inputs if source is not None]
    with file_system_errors(out):
        if kind == "file" and len(os.fsencode(out.name)) > NAME_MAX - WRITER_SUFFIX:
            raise FileSystemError(f"file name too long (over {NAME_MAX - WRITER_SUFFIX} bytes)", file=out,
                                  field=field, fix="choose a shorter name")
        for written in (out, *(Path(side) for side in side_files)):
            role = "output" if written == out else f"output's side file {written}"
            for source in sources:
                if same_file(written, source):
                    how = "the same path as" if written.resolve() == source.resolve() else "the same file (a link) as"
                    raise UserError(f"{role} is {how} the input {source}", file=out, field=field,
                                    fix=f"choose another {field}: writing it would destroy the input")
            if written != out and _kind_of(written) not in (None, "file"):
                raise UserError(f"{role} exists and is not a regular file", file=out, field=field,
                                fix=f"choose another {field}")
        earlier_run = any(_kind_of(Path(p)) == "file" for p in (out, out.with_name(out.name + ".part")))
        if force is False and kind == "file" and not earlier_run:
            for side in side_files:
                side = Path(side)
                if side != out.with_name(out.name + ".part") and _kind_of(side) == "file":
                    raise UserError(f"{side} exists and is not from an earlier run of this output",
                                    file=out, field=field,
                                    fix=f"pass --force to replace {side.name}, or choose another {field}")
        found = _kind_of(out)
        if kind == "file" and found == "dir":
            raise UserError("is a directory, expected a file path", file=out, field=field)
        if kind == "dir" and found == "file":
            raise UserError("is a file, expected a directory", file=out, field=field)
        if found == "other":
            raise UserError("is not a regular file (a device, pipe or socket): it would be replaced",
                            file=out, field=field, fix=f"choose a file path for {field}")
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UserError(f"parent {parent} is not a directory", file=out, field=field)
        # Where the writers create their temporary files: refused now, not after the work is done.
        home = out if kind == "dir" and found == "dir" else parent
        if not os.access(home, os.W_OK | os.X_OK):
            raise FileSystemError(f"directory {home} is not writable (read-only or no permission)", file=out,
                                  field=field, fix=f"choose another {field}, or make the directory writable")
    return out


def store_side_files(out: str | os.PathLike) -> list[Path]:
    """The files a resumable store writes beside ``out`` (:class:`therapy_align.store.ResultStore`)."""
    out = Path(out)
    return [out.with_name(out.name + ".part")]


def summary_beside(out: str | os.PathLike) -> Path:
    """``flags.jsonl`` -> ``flags.summary.json``: the summary a scoring command writes beside its output."""
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")
