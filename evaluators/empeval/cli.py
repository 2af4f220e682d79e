"""`therapy-align empeval train|score`. torch/lightning are imported inside the commands so that
`therapy-align --help` stays fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from empeval.scoring import DEFAULT_ARTIFACT
from therapy_align.errors import exit_on_user_error

app = typer.Typer(no_args_is_help=True, help="EMP-EVAL: score empathy (ER), interpretation (IP), exploration (EX).")



# The command's short options, kept for existing scripts: each is one key of recipes/empeval_train.py.
TRAIN_ALIASES = {"--seed": "--train.seed", "--limit": "--train.limit_batches", "--max-epochs": "--train.max_epochs",
                 "--batch-size": "--train.batch_size", "--learning-rate": "--train.learning_rate",
                 "--backbone": "--train.backbone", "--data-dir": "--train.data_dir",
                 "--class-weight-power": "--train.class_weight_power", "--fast-dev-run": "--train.fast_dev_run",
                 "--no-progress": "--progress=false"}


def translate_aliases(argv: list[str]) -> list[str]:
    """``--seed 1`` -> ``--train.seed 1``, ``--limit=2`` -> ``--train.limit_batches=2``; others as given."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        out.append(TRAIN_ALIASES.get(key, key) + sep + value)
    return out


def recipe_path() -> Path:
    """recipes/empeval_train.py of this checkout."""
    return Path(__file__).resolve().parents[2] / "recipes" / "empeval_train.py"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train the three-mechanism classifier on EPITOME: recipes/empeval_train.py (its --preset and
    --key=value overrides, e.g. --preset fast, --train.seed=1, --out DIR; --help lists them).
    Resumes an interrupted run."""
    exit_on_user_error(_train)(list(ctx.args))


def _train(argv: list[str]) -> None:
    import importlib.util
    import sys

    from therapy_align.errors import UserError

    path = recipe_path()
    if not path.is_file():
        raise UserError("the EMP-EVAL recipe is not in this installation", file=path,
                        fix="run from a checkout of the repository (pip install -e .)")
    argv = translate_aliases(argv)
    spec = importlib.util.spec_from_file_location("empeval_recipe", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    module.main(argv)


@app.command()
def score(
    in_path: Annotated[Path, typer.Option("--in", help="JSONL, one {\"id\", \"seeker\", \"response\"} per line.")],
    out: Annotated[Path, typer.Option(help="JSONL of levels and probabilities; <out stem>.summary.json is written beside it.")],
    model: Annotated[Path, typer.Option(help="Trained artifact directory.")] = Path(DEFAULT_ARTIFACT),
    lenient: Annotated[bool, typer.Option(help="Skip and count bad lines instead of stopping at the first.")] = False,
    force: Annotated[bool, typer.Option(help="Recompute stored scores made by another artifact or from other pairs.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Score (seeker, response) pairs; an interrupted run resumes from <out>.part."""
    _score(in_path, out, model, lenient, force, batch_size, progress)


@exit_on_user_error
def _score(in_path: Path, out: Path, model: Path, lenient: bool, force: bool, batch_size: int, progress: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    from rich.progress import Progress

    from empeval.artifact import ArtifactError
    from empeval.scoring import EmpevalScorer, score_file
    from therapy_align.errors import UserError
    from therapy_align.scoring import read_pairs

    total = len(read_pairs(in_path, lenient=lenient)[0])  # validates before loading the model
    scorer = EmpevalScorer(model, batch_size=batch_size)
    try:
        scorer.evaluator  # load now: a bad artifact fails before any output is written
    except ArtifactError:
        raise  # already names the artifact and --model
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=total)
        summary = score_file(scorer, in_path, out, lenient=lenient, force=force,
                             on_start=lambda done, _: bar.update(task, completed=done),
                             on_progress=lambda n: bar.advance(task, n))
    shown = {k: v for k, v in summary.items() if k != "skipped_lines"}
    typer.echo(json.dumps(shown, indent=2))


@app.command()
def probe(
    model: Annotated[Path, typer.Option(help="Trained artifact directory.")] = Path(DEFAULT_ARTIFACT),
    out: Annotated[Optional[Path], typer.Option(help="Directory for probe.md and probe.json (default: <model>/probe).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Directory holding epitome/*.csv.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Use the first N test pairs only (0 = all).")] = 0,
) -> None:
    """Blind-spot probes (canned reply, seeker shuffle, repetition, copying, empty/filler, late empathy)."""
    from empeval.probe import run_probe_command

    exit_on_user_error(run_probe_command)(model, out, data_dir, limit)

if __name__ == "__main__":
    app()
