"""`therapy-align reward score`: every reward term and the total for (seeker, reply) pairs, with the
weights the RL recipes use by default (``--config guarded``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from therapy_align.errors import exit_on_user_error

app = typer.Typer(no_args_is_help=True, help="The guarded RL reward (EMP-EVAL + guards).")


@app.command()
def score(
    in_path: Annotated[Path, typer.Option("--in", help="JSONL, one {\"id\", \"seeker\", \"response\"} per line.")],
    out: Annotated[Path, typer.Option(help="JSONL: id, seeker, response, terms, measures, total; resumable.")],
    config: Annotated[str, typer.Option(help="named reward config: guarded (the recipes' default) | empeval-only")] = "guarded",
    empeval: Annotated[Path | None, typer.Option(help="EMP-EVAL artifact (default: the config's, artifacts/empeval)")] = None,
    force: Annotated[bool, typer.Option(help="recompute stored scores made with other settings or pairs")] = False,
) -> None:
    """Score pairs with the reward; print the mean of every term and of the total. Template rate and
    specificity look across the pairs of the file (in chunks of 512)."""
    _score(in_path, out, config, empeval, force)


@exit_on_user_error
def _score(in_path: Path, out: Path, config_name: str, empeval: Path | None, force: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from dataclasses import replace

    from rich.console import Console
    from rich.table import Table

    from therapy_align.files import check_output_path, store_side_files
    from therapy_align.rl.reward import GuardedReward, RewardScorer, load_config
    from therapy_align.scoring import read_pairs, score_pairs

    config = load_config(config_name)
    if empeval is not None:
        config = replace(config, empeval_path=str(empeval))
    check_output_path(out, inputs=[in_path, empeval], side_files=store_side_files(out))
    pairs, _ = read_pairs(in_path)  # validates before anything loads
    reward = GuardedReward(config)
    reward.evaluator  # a missing artifact fails before any output is written
    scorer = RewardScorer(reward)
    scores = score_pairs(scorer, pairs, out, force=force)
    table = Table(title=f"reward '{config.name}' on {len(pairs)} pairs ({in_path})")
    for column in ("term", "weight", "mean", "weighted mean"):
        table.add_column(column, justify="right" if column != "term" else "left")
    for term in reward.active_terms():
        mean = sum(s["terms"][term] for s in scores) / len(scores)
        weight = getattr(config.weights, term)
        table.add_row(term, f"{weight:g}", f"{mean:.4f}", f"{weight * mean:.4f}")
    table.add_row("[bold]total[/]", "", "", f"[bold]{sum(s['total'] for s in scores) / len(scores):.4f}[/]")
    Console().print(table)
    typer.echo(f"wrote {out}")


@app.command()
def curves(
    run: Annotated[Path, typer.Argument(help="an RL run directory runs/<name> (GRPO or DPO)")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("curves.png"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Per-step curves of an RL run: reward terms, held-out reward vs judge, KL, reply length."""
    _curves(run, out, force=force)


@exit_on_user_error
def _curves(run: Path, out: Path, *, force: bool = False) -> None:
    from therapy_align.errors import UserError
    from therapy_align.files import check_output_path, refuse_to_replace
    from therapy_align.rl.curves import plot_run

    if not (run / "metrics.json").is_file():
        raise UserError("no metrics.json: not a finished RL run", file=run, fix="give runs/<name> of rl_empathy/dpo_empathy")
    check_output_path(out, inputs=[run / "metrics.json", run / "config.json"])
    refuse_to_replace(out, force=force)
    typer.echo(f"wrote {plot_run(run, out)}")


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="RL runs to draw side by side: runs/<name> or label=runs/<name>")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("compare.png"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Several RL runs per step on one figure: guard measures of the training replies (template,
    question and copy rates, length, repetition), the EMP-EVAL term, and the held-out judge."""
    _compare(runs, out, force=force)


@exit_on_user_error
def _compare(runs: list[str], out: Path, *, force: bool = False) -> None:
    from therapy_align.errors import UserError
    from therapy_align.files import check_output_path, refuse_to_replace
    from therapy_align.rl.curves import plot_compare

    named: dict[str, Path] = {}
    for item in runs:
        label, _, path = item.rpartition("=") if "=" in item else (Path(item).name, "", item)
        run = Path(path)
        if not (run / "metrics.json").is_file():
            raise UserError("no metrics.json: not a finished RL run", file=run, fix="give runs/<name> of rl_empathy/dpo_empathy")
        if label in named:
            raise UserError(f"two runs are labelled {label!r}", field="RUNS", fix="label them: name=runs/<name>")
        named[label] = run
    check_output_path(out, inputs=[p / "metrics.json" for p in named.values()])
    refuse_to_replace(out, force=force)
    typer.echo(f"wrote {plot_compare(named, out)}")
