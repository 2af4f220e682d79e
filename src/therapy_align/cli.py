"""The `therapy-align` console script: one typer app, a sub-app or command group per capability.

Sub-modules import torch, transformers and friends inside their commands, so `--help` stays fast.
:func:`main` is the console script's entry point: a :class:`~therapy_align.errors.UserError` from
any command ends it with exit status 2 and one line on stderr (a traceback only with ``--debug``
or ``THERAPY_ALIGN_DEBUG=1``), as does a full disk or a read-only path; typer's own usage errors exit
2 as well. A reader that closes the pipe early (``--help | head -1``) ends it quietly with status 1.
"""

from __future__ import annotations

import sys

import typer

from empeval.cli import app as empeval_app
from miti.cli import app as miti_app
from therapy_align.data.cli import app as data_app
from therapy_align.errors import (UserError, debug_enabled, exit_quietly_on_closed_pipe, file_system_error,
                                  report_and_exit, strip_debug_flag)
from therapy_align.evaluation import cli as evaluation_cli
from therapy_align.rl.cli import app as reward_app
from therapy_align.safety.cli import app as safety_app
from therapy_align.training.model_cli import app as model_app
from therapy_align.chat.cli import chat as chat_command

app = typer.Typer(no_args_is_help=True, help="therapy_align: counselling-chatbot alignment research.")
app.add_typer(data_app, name="data", help="Build and inspect the AnnoMI -> Llama-2 chat SFT data.")
app.add_typer(empeval_app, name="empeval", help="EMP-EVAL: train and run the empathy-mechanism evaluator.")
evaluation_cli.register(app)
app.add_typer(reward_app, name="reward", help="The guarded RL reward: every term and the total.")
app.add_typer(miti_app, name="miti", help="MITI: MI-behaviour classifier, MITI summary scores, expert rows.")
app.add_typer(safety_app, name="safety", help="Safety: crisis detection on messages, the detector's figures.")
app.command("chat")(chat_command)
app.add_typer(model_app, name="model", help="Models by name: prepare (verify, convert, cache) and list them.")


def main(argv: list[str] | None = None) -> None:
    """Run the app on ``argv`` (default: the command line); ``--debug`` anywhere keeps tracebacks."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            app(args=strip_debug_flag(argv), prog_name="therapy-align")
        finally:
            sys.stdout.flush()  # here, not at interpreter exit, so a closed pipe is caught below
    except BrokenPipeError:
        exit_quietly_on_closed_pipe()
    except UserError as error:
        report_and_exit(error)
    except OSError as error:
        known = file_system_error(error)  # disk full, read-only, ...: one line; anything else is a bug
        if known is None or debug_enabled():
            raise
        report_and_exit(known)


if __name__ == "__main__":
    main()
