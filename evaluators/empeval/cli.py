"""`therapy-align empeval train|score`. torch/lightning are imported inside the commands so that
`therapy-align --help` stays fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from empeval import DEFAULT_ARTIFACT
from therapy_align.errors import exit_on_user_error

app = typer.Typer(no_args_is_help=True, help="EMP-EVAL: score empathy (ER), interpretation (IP), exploration (EX).")


# The command's short options, kept for existing scripts: each is one key of `empeval.config.TrainRun`.
TRAIN_ALIASES = {"--seed": "--train.seed", "--limit": "--train.limit_batches", "--max-epochs": "--train.max_epochs",
                 "--batch-size": "--train.batch_size", "--learning-rate": "--train.learning_rate",
                 "--backbone": "--train.backbone", "--data-dir": "--train.data_dir",
                 "--class-weight-power": "--train.class_weight_power", "--fast-dev-run": "--train.fast_dev_run",
                 "--no-progress": "--progress=false"}
TRAIN_USAGE = """Train EMP-EVAL on EPITOME (one encoder, three mechanism heads) and publish the artifact:

    therapy-align empeval train [--out artifacts/empeval] [--train.<field>=value ...] [--restart]

Every field of empeval.config.TrainRun is a --key=value override, and every field of
empeval.config.TrainConfig a --train.<field>=value one (listed below). An interrupted run resumes
from <out>.checkpoints (--restart discards them). Presets (fast, smoke) are in
recipes/empeval_train.py of a source checkout; fast = --train.max_epochs=1 --train.freeze_layers=3.
"""


def translate_aliases(argv: list[str]) -> list[str]:
    """``--seed 1`` -> ``--train.seed 1``, ``--limit=2`` -> ``--train.limit_batches=2``; others as given."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        out.append(TRAIN_ALIASES.get(key, key) + sep + value)
    return out


def run_train(argv: list[str], base=None, *, read_outs=(), usage: str = TRAIN_USAGE):
    """Apply `--key=value` overrides to `base` (an `empeval.config.TrainRun`; default: its
    defaults), train it with the extra test `read_outs` (`empeval.training.train`), print
    metrics.json; `--help` prints `usage` and the keys. Returns the artifact directory (None for
    --help). The command's body, shared with recipes/empeval_train.py."""
    from empeval.config import TrainRun
    from therapy_align.files import check_output_path
    from therapy_align.overrides import apply_overrides, describe_keys

    base = TrainRun() if base is None else base
    if "--help" in argv or "-h" in argv:
        print(usage + "\nKeys (--key=value):\n" + describe_keys(base))
        return None
    run = apply_overrides(base, argv)  # a bad key or value: a UserError naming it
    check_output_path(run.out, kind="dir")  # a file, a device or a read-only place: before anything loads
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: a hub id backbone is not fetched
    import torch

    from empeval.training import train

    if run.threads:
        torch.set_num_threads(run.threads)
    out = Path(run.out)
    train(run.train, out, restart=run.restart, progress=run.progress, read_outs=read_outs)
    print(f"wrote {out}\n{(out / 'metrics.json').read_text()}")
    return out


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train the three-mechanism classifier on EPITOME: --out DIR and --train.<field>=value
    overrides of empeval.config.TrainConfig (e.g. --train.seed=1; --help lists them). Resumes an
    interrupted run."""
    exit_on_user_error(_train)(list(ctx.args))


def _train(argv: list[str]) -> None:
    from therapy_align.errors import UserError

    if any(arg.partition("=")[0] == "--preset" for arg in argv):
        raise UserError("presets are chosen in recipes/empeval_train.py, not by this command", field="--preset",
                        fix="pass the fields instead (fast: --train.max_epochs=1 --train.freeze_layers=3), "
                            "or run `python recipes/empeval_train.py --preset fast` from a checkout")
    run_train(translate_aliases(argv))


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
    from therapy_align.evaluation.scorers.empeval import EmpevalScorer, score_file
    from therapy_align.errors import UserError
    from therapy_align.files import check_output_path, store_side_files, summary_beside
    from therapy_align.scoring import read_pairs

    check_output_path(out, inputs=[in_path, model], side_files=[*store_side_files(out), summary_beside(out)],
                      force=force)
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

    exit_on_user_error(_check_probe_out)(model, out, data_dir)
    exit_on_user_error(run_probe_command)(model, out, data_dir, limit)


def _check_probe_out(model: Path, out: Optional[Path], data_dir: Optional[Path]) -> None:
    """The probe writes into <model>/probe by default: a read-only artifact is refused before the
    minutes of scoring, and no probe file may be an input (the artifact's own files included)."""
    from therapy_align.files import check_output_path

    target = out if out is not None else model / "probe"
    written = [target / "probe.md", target / "probe.json"]
    inputs = [data_dir, *(sorted(model.iterdir()) if model.is_dir() else ())]
    check_output_path(target, inputs=inputs, kind="dir", side_files=written, field="--out" if out else "--model")


if __name__ == "__main__":
    app()
