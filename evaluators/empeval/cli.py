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



def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


@app.command()
def train(
    data_dir: Annotated[Optional[Path], typer.Option(help="Directory holding epitome/*.csv (default: $THERAPY_ALIGN_DATA, ../shared/data).")] = None,
    out: Annotated[Path, typer.Option(help="Artifact directory to write.")] = Path(DEFAULT_ARTIFACT),
    seed: Annotated[int, typer.Option(help="Seed of the split and of training.")] = 0,
    backbone: Annotated[Optional[str], typer.Option(help="HF encoder path (default: all-MiniLM-L6-v2).")] = None,
    max_epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1)] = None,
    learning_rate: Annotated[Optional[float], typer.Option()] = None,
    class_weight_power: Annotated[Optional[float], typer.Option(help="0 = plain CE, 1 = inverse-frequency weights.")] = None,
    fast_dev_run: Annotated[bool, typer.Option(help="One batch of train/dev/test: a smoke test.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Use at most N batches per split (0 = all).")] = 0,
    restart: Annotated[bool, typer.Option(help="Discard checkpoints of an interrupted run instead of resuming.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: Annotated[int, typer.Option(min=0, help="torch CPU threads (0 = torch's default); 1 is faster on a shared, busy machine.")] = 0,
) -> None:
    """Train the three-mechanism classifier on EPITOME; resumes an interrupted run."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from therapy_align.paths import DataNotFoundError

    from empeval.config import TrainConfig
    from empeval.epitome_data import EpitomeFormatError
    from empeval.training import CheckpointConfigMismatch, train as run_training

    overrides = {
        "backbone": backbone, "max_epochs": max_epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "class_weight_power": class_weight_power,
    }
    config = TrainConfig(
        data_dir=str(data_dir) if data_dir else None, seed=seed, fast_dev_run=fast_dev_run, limit_batches=limit,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    if threads:
        torch.set_num_threads(threads)
    try:
        run_training(config, out, restart=restart, progress=progress)
    except (DataNotFoundError, EpitomeFormatError, CheckpointConfigMismatch) as err:
        raise _fail(str(err)) from None
    metrics = (out / "metrics.json").read_text()
    typer.echo(f"wrote {out}\n{metrics}")


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
