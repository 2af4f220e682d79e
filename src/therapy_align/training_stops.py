"""How a training run stops early without looking finished: a loss or weight gone non-finite, or a
signal (SIGTERM from a scheduler or ``kill``, SIGINT from Ctrl+C).

Both stop the run before anything final is written (no published artifact, no final adapter):

- a non-finite loss, gradient norm or weight raises :class:`NonFiniteTraining` (a :class:`UserError`:
  exit 2, one line naming the quantity, its value and the step);
- a signal is recorded by :class:`SignalRecorder`, the trainer stops at the next step boundary,
  leaving a checkpoint the same command resumes from (TRL: one saved at that step; Lightning: the
  last finished epoch's), and :func:`exit_interrupted` exits ``128 + signal`` (143 for SIGTERM, 130
  for SIGINT), as a shell reports a process the signal ended.

The trainer-specific halves: :mod:`therapy_align.lightning_stops` (EMP-EVAL, MITI, the
safety head) and :mod:`therapy_align.trl_stops` (SFT, GRPO, DPO).
"""

from __future__ import annotations

import math
import signal
import sys
from types import FrameType
from typing import Any

from therapy_align.errors import UserError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class NonFiniteTraining(UserError):
    """The loss, a gradient norm or a weight became NaN or infinite: the run stopped, nothing was published."""


def non_finite(value: Any) -> bool:
    """True for a float (or 0-d tensor) that is NaN or infinite."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class SignalRecorder:
    """While entered, SIGTERM and SIGINT only record which one came (``received``); the trainer
    checks it at a step boundary and stops there, so the checkpoint it leaves is whole. A second
    signal of the same kind gets the handler that was there before (Ctrl+C twice still interrupts)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            print(f"\n{signal.Signals(signum).name} received: stopping at the end of this step, with a checkpoint",
                  file=sys.stderr, flush=True)
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __enter__(self) -> SignalRecorder:
        try:
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        except ValueError:  # not the main thread: signals stay as they were
            self._previous.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class TrainingInterrupted(SystemExit):
    """Exit ``128 + signal`` after a signal stopped training (its checkpoint kept for a resume)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + int(signum))
        self.signum = int(signum)


def exit_interrupted(signum: int, *, checkpoint: str, resume: str) -> None:
    """Say what was kept (``checkpoint``) and how to go on (``resume``), then raise
    :class:`TrainingInterrupted`."""
    name = signal.Signals(signum).name
    print(f"interrupted by {name}: nothing was published; {checkpoint}; {resume}", file=sys.stderr, flush=True)
    raise TrainingInterrupted(signum)
