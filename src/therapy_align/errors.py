"""One error style for every command and recipe.

A mistake the user can fix (a bad file, line, field, override, path) is a :class:`UserError`, and so
is a file-system refusal (disk full, read-only, no permission, name too long). At the
door of every command, :func:`exit_on_user_error` turns it into one or two lines on stderr,

    error: FILE:LINE: field: what is wrong; what to do

and exit status 2, with no traceback unless ``--debug`` is on the command line or
``THERAPY_ALIGN_DEBUG=1`` is set. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

EXIT_USER_ERROR = 2
DEBUG_ENV = "THERAPY_ALIGN_DEBUG"

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem with what the user gave us; the message says where and what to do.

    ``file``/``line``/``field`` locate it; ``fix`` says what to do. Subclasses name the kind of input
    (transcript, pairs file, override, artifact, ...) so callers can catch narrowly.
    """

    def __init__(self, what: str, *, file: Any = None, line: int | None = None, field: str | None = None,
                 fix: str | None = None) -> None:
        self.what, self.file, self.line, self.field, self.fix = what, file, line, field, fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{where}{field}{self.what}{fix}"

    def __str__(self) -> str:
        return self.message


class FileSystemError(UserError):
    """The file system refused a read or write (disk full, read-only, no permission, name too long)."""


# What the user's machine, not the program, got wrong: each becomes one line naming the path. Any
# other OSError is unexpected here and keeps its traceback.
USER_FS_ERRNOS = {
    errno.ENOSPC: ("no space left on the device", "free some space and rerun: the finished part is kept"),
    errno.EDQUOT: ("disk quota exceeded", "free some space and rerun: the finished part is kept"),
    errno.EACCES: ("permission denied", "check its permissions, or choose another path"),
    errno.EPERM: ("operation not permitted", "check its permissions, or choose another path"),
    errno.EROFS: ("read-only file system", "choose a path on a writable file system"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter name"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "check the path"),
    errno.EISDIR: ("is a directory", "give a file path"),
    errno.ELOOP: ("too many levels of symbolic links", "check the path"),
    errno.EEXIST: ("a file is in the way of a directory on the path", "check the path"),
}


def file_system_error(err: OSError, path: str | os.PathLike | None = None) -> FileSystemError | None:
    """``err`` as a one-line :class:`FileSystemError` naming the path, or None when it is not one of
    the user's file-system problems (:data:`USER_FS_ERRNOS`)."""
    known = USER_FS_ERRNOS.get(err.errno)
    if known is None:
        return None
    what, fix = known
    return FileSystemError(what, file=err.filename if err.filename is not None else path, fix=fix)


def debug_enabled(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def report_and_exit(error: BaseException) -> None:
    """Print ``error: <message>`` on stderr and exit 2 (re-raise with a traceback in debug mode)."""
    if debug_enabled():
        raise error
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR)


def exit_on_user_error(fn: F) -> F:
    """Decorator for command and recipe entry points: a :class:`UserError` exits 2 without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as error:
            report_and_exit(error)
        except OSError as error:
            # Disk full or a read-only mount met by a library's writer (a checkpoint, a dataset):
            # still one line naming the file. Other OSErrors are bugs and keep their traceback.
            known = file_system_error(error)
            if known is None or debug_enabled():
                raise
            report_and_exit(known)

    return wrapper  # type: ignore[return-value]


def exit_quietly_on_closed_pipe() -> None:
    """End the process when the reader of stdout went away (``therapy-align ... --help | head -1``):
    point stdout at /dev/null so the interpreter's last flush cannot fail again, and exit 1 (as
    click does) without a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no descriptor (already replaced): nothing left to flush
        pass
    raise SystemExit(1)


def strip_debug_flag(argv: list[str]) -> list[str]:
    """``argv`` without ``--debug`` (which :func:`debug_enabled` has already seen)."""
    return [arg for arg in argv if arg != "--debug"]
