"""`therapy-align miti train|score|human`. torch and lightning load inside the commands, so that
`therapy-align --help` stays fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

import miti
from therapy_align.errors import exit_on_user_error

app = typer.Typer(no_args_is_help=True, help="MITI: MI-behaviour classifier and MITI 4.2.1 summary scores.")

DEFAULT_ARTIFACT = Path(miti.DEFAULT_ARTIFACT)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@exit_on_user_error
def train(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Artifact directory to write.")] = DEFAULT_ARTIFACT,
    restart: Annotated[bool, typer.Option(help="Discard checkpoints of an interrupted run instead of resuming.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train the classifier (~10 min on 2 CPU cores); --data.*, --model.*, --train.* (=value) override
    fields of miti.config.TrainConfig, e.g. --train.max_epochs=20. The presets (a fast slice) are in
    recipes/miti_train.py; a rerun after a kill resumes."""
    from miti.config import TrainConfig
    from therapy_align.errors import UserError
    from therapy_align.overrides import apply_overrides

    if any(arg.partition("=")[0] == "--preset" for arg in ctx.args):
        raise UserError("presets are chosen in recipes/miti_train.py, not by this command", field="--preset",
                        fix="pass the fields instead (fast: --data.max_train_turns=192 --data.max_eval_turns=64 "
                            "--model.max_length=48 --train.max_epochs=5), or run "
                            "`python recipes/miti_train.py --preset fast` from a checkout")
    cfg = apply_overrides(TrainConfig(), ctx.args)  # unknown keys and bad values fail here, before anything loads
    from therapy_align.files import check_output_path

    check_output_path(out, kind="dir")  # a file, a device or a read-only place: before training
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from miti.training import train as train_classifier

    written = train_classifier(cfg, out, restart=restart, progress=progress)
    typer.echo(f"wrote {written}; results: {written}/metrics.json")


@app.command()
@exit_on_user_error
def score(
    in_path: Annotated[Path, typer.Option("--in", help="JSONL, one {\"id\", \"client\", \"therapist\"} per line.")],
    out: Annotated[Path, typer.Option(help="Directory: scores.jsonl (label + probabilities per turn), summary.json.")],
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    model: Annotated[Path, typer.Option(help="Trained artifact directory.")] = DEFAULT_ARTIFACT,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    force: Annotated[bool, typer.Option(help="Recompute stored results made by another model or input.")] = False,
    lenient: Annotated[bool, typer.Option(help="Skip and count bad lines instead of stopping at the first.")] = False,
) -> None:
    """Label therapist turns (client turn before as context); an interrupted run resumes."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    from rich.progress import Progress

    from miti.predictor import load
    from therapy_align.evaluation.scorers.miti import SCORES_FILE, SUMMARY_FILE, read_turns, score_turns
    from therapy_align.files import check_output_path, store_side_files

    # out is a directory: its scores file, that file's .part and the summary must not be the input
    check_output_path(out, inputs=[in_path, model], kind="dir",
                      side_files=[out / SCORES_FILE, *store_side_files(out / SCORES_FILE), out / SUMMARY_FILE])
    total = len(read_turns(in_path, lenient=lenient)[0])  # validates the input before loading the model
    predictor = load(model, batch_size=batch_size)  # the input was valid: now load the model
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("labelling", total=total)
        summary = score_turns(predictor, in_path, out, lenient=lenient, force=force,
                              on_progress=lambda n: bar.advance(task, n))
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "skipped_lines"}, indent=2))


@app.command()
@exit_on_user_error
def human(
    data_dir: Annotated[Optional[Path], typer.Option(help="Directory holding annomi/AnnoMI-full.csv.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write the rows as JSON here.")] = None,
    model: Annotated[Path, typer.Option(help="Show this classifier's scores on the held-out sessions beside (if trained).")] = DEFAULT_ARTIFACT,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """The expert MITI rows from AnnoMI: high- vs low-quality sessions, and the held-out high ones."""
    from miti.human import classifier_row, human_rows, markdown_table
    from therapy_align.files import atomic_write_json, check_output_path, refuse_to_replace

    if out is not None:
        check_output_path(out, inputs=[data_dir, model])
        refuse_to_replace(out, force=force)
    rows = human_rows(data_dir)
    predicted = classifier_row(model)
    if predicted is not None:
        rows["rows"].append(predicted)
    typer.echo(markdown_table(rows))
    if out is not None:
        atomic_write_json(out, rows)
        typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
