"""The one resumable JSONL results store: generation, scoring and every later stage write through it.

A store holds one line per finished item, keyed by ``id``. While work is under way the lines go to
``<out>.part``; :meth:`ResultStore.finish` renames it to ``<out>``, so ``<out>`` exists only when
every item is done. A kill leaves at most a torn last line, cut off on the next start.

Each line carries, under ``"_made_from"``, short hashes of what produced it: one per component the
caller names (for example ``model`` and ``settings``) plus ``input``, the hash of that item's own
input. On a rerun, a line made from anything else is *stale*: the store refuses to reuse it with a
message naming the line, the id and what changed, or, with ``force=True``, drops it and the item is
redone. So a resumed result is reused only if its inputs, model and settings are unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.files import (InputFileError, append_jsonl, atomic_write_jsonl, canonical_json,
                                 file_system_errors, parse_json_text, repair_torn_tail, text_problem)

MADE_FROM = "_made_from"


class StaleResultError(UserError):
    """A stored result was produced from other inputs, another model or other settings."""


def digest(value: Any) -> str:
    """A short, stable hash of any JSON-able value (strings are hashed as given).

    A lone surrogate cannot be encoded as UTF-8; it is hashed by its code point ("surrogatepass")
    so that hashing never fails. Readers refuse such text at the door, naming the file and line."""
    text = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class ResultStore:
    """Resumable, fingerprinted JSONL results for one output path.

    ``made_from`` names what every result depends on (``{"model": ..., "settings": ...}``); values
    may be any JSON-able object and are hashed. Typical use::

        store = ResultStore(out, made_from={"model": ref, "settings": spec}, force=force)
        todo = store.start({item.id: item.text for item in items})   # ids still to do
        for batch in batched(todo):
            store.append(compute(batch))                               # records with "id"
        store.finish()                                                 # <out>.part -> <out>
        records = store.records()
    """

    def __init__(self, path: str | os.PathLike, *, made_from: Mapping[str, Any], force: bool = False) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self.made_from = {name: digest(value) for name, value in made_from.items()}
        self.force = force
        self._inputs: dict[str, str] = {}
        self._done: dict[str, dict[str, Any]] = {}
        self.dropped_stale = 0
        self.repaired_bytes = 0

    # ------------------------------------------------------------------ reading

    def _read(self, path: Path) -> list[tuple[int, dict[str, Any]]]:
        return _read_result_lines(path)

    def _changes(self, record: dict[str, Any], item_id: str) -> list[str]:
        stamp = record.get(MADE_FROM)
        if not isinstance(stamp, dict):
            return ["provenance (the line has no '_made_from' stamp)"]
        changes = [name for name, value in self.made_from.items() if stamp.get(name) != value]
        if item_id in self._inputs and stamp.get("input") != self._inputs[item_id]:
            changes.append("input")
        return changes

    # ------------------------------------------------------------------ lifecycle

    def start(self, inputs: Mapping[Any, Any]) -> list[str]:
        """Load finished results, check their provenance, and return the ids still to do (input order).

        ``inputs`` maps each id to what its result is computed from (text, or any JSON-able value).
        Lines for ids not in ``inputs`` are kept as they are (a later, larger run may need them).
        """
        for item_id, value in inputs.items():
            problem = text_problem(canonical_json(value)) or text_problem(str(item_id))
            if problem:  # a UTF-8 results file cannot hold it: refuse before anything is written
                raise UserError(f"the input of id {str(item_id)!r} {problem}", file=self.path,
                                fix="remove the character from the input")
        for written in (self.path, self.part):
            if written.exists() and not written.is_file():  # os.replace would rename a device node
                raise UserError("is not a regular file (a device, pipe or socket)", file=written,
                                fix="choose another --out")
        self._inputs = {str(k): digest(v) for k, v in inputs.items()}
        # Read the unfinished file if there is one, else a finished <out>; nothing moves until the
        # stored lines have passed the provenance check, so a refused rerun leaves <out> as it was.
        source = self.part if self.part.exists() else self.path if self.path.exists() else None
        self._done = {}
        if source is None:
            return list(self._inputs)
        if source == self.part:
            self.repaired_bytes = repair_torn_tail(self.part)
        kept, stale = [], []
        for number, record in self._read(source):
            item_id = str(record["id"])
            if item_id in self._done:
                raise UserError(f"id {item_id!r} appears twice", file=source, line=number,
                                fix="delete the file or choose another --out")
            changes = self._changes(record, item_id)
            if changes:
                stale.append((number, item_id, changes))
                continue
            self._done[item_id] = record
            kept.append(record)
        if stale and not self.force:
            number, item_id, changes = stale[0]
            raise StaleResultError(
                f"{len(stale)} stored result(s) do not match this run's {' and '.join(changes)} "
                f"(first: id {item_id!r})", file=source, line=number,
                fix="rerun with --force to recompute them, or choose another --out")
        todo = [item_id for item_id in self._inputs if item_id not in self._done]
        if stale:
            self.dropped_stale = len(stale)
            atomic_write_jsonl(self.part, kept)
            if source == self.path:
                with file_system_errors(self.path):
                    self.path.unlink()
        elif todo and source == self.path:
            with file_system_errors(self.path):
                os.replace(self.path, self.part)  # reopen a finished file: <out> reappears at finish()
        return todo

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append finished results (each with an ``id`` given to :meth:`start`); refuses duplicates."""
        lines = []
        for record in records:
            item_id = str(record["id"])
            if item_id in self._done:
                raise ValueError(f"{self.part}: id {item_id!r} is already stored")
            if item_id not in self._inputs:
                raise ValueError(f"{self.part}: id {item_id!r} was not among the inputs given to start()")
            line = {**record, MADE_FROM: {**self.made_from, "input": self._inputs[item_id]}}
            self._done[item_id] = line
            lines.append(line)
        if lines:
            with file_system_errors(self.part):
                self.part.parent.mkdir(parents=True, exist_ok=True)
        return append_jsonl(self.part, lines)

    @property
    def done_ids(self) -> set[str]:
        return set(self._done)

    @property
    def complete(self) -> bool:
        return all(item_id in self._done for item_id in self._inputs)

    def finish(self) -> Path:
        """Publish ``<out>.part`` as ``<out>``, in input order (then any kept lines of other ids),
        so the finished file does not depend on batching or resumes; every input id must be done."""
        missing = [item_id for item_id in self._inputs if item_id not in self._done]
        if missing:
            raise ValueError(f"{self.part}: {len(missing)} item(s) not done yet, e.g. {missing[0]!r}")
        if self.part.exists():
            ordered = [self._done[item_id] for item_id in self._inputs]
            ordered += [record for item_id, record in self._done.items() if item_id not in self._inputs]
            atomic_write_jsonl(self.path, ordered)
            with file_system_errors(self.part):
                self.part.unlink()
        elif not self.path.exists():
            with file_system_errors(self.path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
        return self.path

    def records(self, *, strip: bool = True) -> list[dict[str, Any]]:
        """Results of the current inputs in input order (without ``_made_from`` unless ``strip=False``)."""
        out = []
        for item_id in self._inputs:
            if item_id in self._done:
                record = dict(self._done[item_id])
                if strip:
                    record.pop(MADE_FROM, None)
                out.append(record)
        return out


def _read_result_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of a store file; a line that is not a result (bad bytes, bad JSON, too
    deep, no ``id``) is one :class:`UserError` naming the file and line."""
    fix = "delete the file or choose another --out"
    rows = []
    with file_system_errors(path), path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"not a result line (not UTF-8 at byte {err.start})", file=path, line=number,
                                fix=fix) from None
            if not text.strip():
                continue
            try:
                record = parse_json_text(text, file=path, line=number)
            except InputFileError as err:
                raise UserError(f"not a result line ({err.what})", file=path, line=number, fix=fix) from None
            if not isinstance(record, dict) or "id" not in record:
                raise UserError("not a result line (no 'id')", file=path, line=number, fix=fix)
            rows.append((number, record))
    return rows


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The lines of a finished store file, without their ``_made_from`` stamps."""
    out = []
    for _, record in _read_result_lines(Path(path)):
        record.pop(MADE_FROM, None)
        out.append(record)
    return out
