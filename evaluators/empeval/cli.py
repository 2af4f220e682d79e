"""EMP-EVAL command line (placeholder until the evaluator lands)."""

import typer

app = typer.Typer(no_args_is_help=True)
