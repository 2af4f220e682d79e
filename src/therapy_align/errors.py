"""One error style for every command and recipe.

A mistake the user can fix (a bad file, line, field, override, path) is a :class:`UserError`. At the
door of every command, :func:`exit_on_user_error` turns it into one or two lines on stderr,

    error: FILE:LINE: field: what is wrong; what to do

and exit status 2, with no traceback unless ``--debug`` is on the command line or
``THERAPY_ALIGN_DEBUG=1`` is set. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

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

    return wrapper  # type: ignore[return-value]


def strip_debug_flag(argv: list[str]) -> list[str]:
    """``argv`` without ``--debug`` (which :func:`debug_enabled` has already seen)."""
    return [arg for arg in argv if arg != "--debug"]
