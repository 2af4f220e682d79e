"""The one home of file writing and JSON helpers: atomic writes, JSON-able values, strict JSONL input.

Every output a person may open (reports, summaries, configs) is written to a temporary name in the
same directory and renamed into place, so a kill never leaves a half-written file. JSONL inputs
(``{"id", ...}`` per line) are read by :func:`read_jsonl`, which names the file, line and field of
the first bad line.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError


class InputFileError(UserError):
    """A bad line or field in an input file."""


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
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
        with open(path, "a", encoding="utf-8") as handle:
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
    with path.open("rb+") as handle:
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
    if not path.exists():
        raise InputFileError("no such file", file=path, fix="check the path")
    if path.is_dir():
        raise InputFileError("is a directory, expected a JSONL file", file=path)
    optional = optional or {}
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    seen: dict[Any, int] = {}
    with path.open("rb") as handle:
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
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"not UTF-8 (byte {err.start} of the line)", file=path, line=number,
                             fix="save the file as UTF-8") from None
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(f"invalid JSON ({err.msg} at column {err.colno})", file=path, line=number) from None
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


# --------------------------------------------------------------------------- output paths


def check_output_path(out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                      kind: str = "file") -> Path:
    """Refuse, before any work, an output that would overwrite an input or cannot be written.

    ``kind`` is ``"file"`` (``out`` must not be a directory) or ``"dir"`` (``out`` must not be a file).
    """
    out = Path(out)
    resolved = out.resolve()
    for source in inputs:
        if source is not None and Path(source).resolve() == resolved:
            raise UserError("output is the same path as an input", file=out, field="--out",
                            fix="choose another output path")
    if kind == "file" and out.is_dir():
        raise UserError("is a directory, expected a file path", file=out, field="--out")
    if kind == "dir" and out.exists() and not out.is_dir():
        raise UserError("is a file, expected a directory", file=out, field="--out")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"parent {parent} is not a directory", file=out, field="--out")
    return out
