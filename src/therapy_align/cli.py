"""The `therapy-align` console script: one typer app, a sub-app or command group per capability.

Sub-modules import torch, transformers and friends inside their commands, so `--help` stays fast.
"""

from __future__ import annotations

import typer

from empeval.cli import app as empeval_app
from therapy_align.evaluation import cli as evaluation_cli
from therapy_align.data.cli import app as data_app

app = typer.Typer(no_args_is_help=True, help="therapy_align: counselling-chatbot alignment research.")
app.add_typer(data_app, name="data", help="Build and inspect the AnnoMI -> Llama-2 chat SFT data.")
app.add_typer(empeval_app, name="empeval", help="EMP-EVAL: train and run the empathy-mechanism evaluator.")
evaluation_cli.register(app)

if __name__ == "__main__":
    app()
