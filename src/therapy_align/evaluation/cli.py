"""`therapy-align generate` and `therapy-align sweep`.

Heavy imports (torch, transformers, wandb) happen inside the commands so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_INPUTS = "../shared/data/eval_inputs/reddit_mental_health_1000.jsonl"


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def generate(
    model: Annotated[str, typer.Option(help="base | tiny-base | a model dir | an SFT run dir runs/<name>")],
    out: Annotated[Path, typer.Option(help="output JSONL; rerunning resumes it (ids already there are skipped)")],
    prompt: Annotated[str, typer.Option(help="system prompt name (see `therapy-align sweep --list`) or a text file")] = "standard",
    inputs: Annotated[Path, typer.Option(help="inputs JSONL: one {\"id\", \"text\"} object per line")] = Path(DEFAULT_INPUTS),
    limit: Annotated[int | None, typer.Option(help="use only the first N inputs")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts decoded together")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="most tokens generated per response")] = 256,
    do_sample: Annotated[bool, typer.Option("--do-sample/--greedy", help="sample instead of greedy decoding")] = False,
    temperature: Annotated[float, typer.Option(help="sampling temperature (with --do-sample)")] = 1.0,
    top_p: Annotated[float, typer.Option(help="nucleus sampling mass (with --do-sample)")] = 1.0,
    seed: Annotated[int, typer.Option(help="seed of the sampling RNG (per batch)")] = 0,
    lenient: Annotated[bool, typer.Option(help="skip and count bad input lines instead of failing")] = False,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = torch's default)")] = 0,
) -> None:
    """Generate one response per input with MODEL under the system prompt PROMPT (paper §2.2.2)."""
    from rich.console import Console

    from therapy_align.evaluation.generation import GenerationSettings, InputFileError, read_inputs
    from therapy_align.data.system_prompts import get_system_prompt

    console = Console(stderr=True)
    try:
        system_prompt = get_system_prompt(prompt)
        report = read_inputs(inputs, lenient=lenient, limit=limit)
        settings = GenerationSettings(
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )
    except (KeyError, InputFileError, FileNotFoundError, ValueError) as err:
        _fail(err.args[0] if isinstance(err, KeyError) else str(err))
    if report.skipped:
        console.print(f"[yellow]skipped {len(report.skipped)} bad input line(s)[/]: "
                      + ", ".join(f"line {n} ({why})" for n, why in report.skipped[:5])
                      + (" ..." if len(report.skipped) > 5 else ""))
    from therapy_align.training.models import ModelReferenceError, classify_reference

    try:
        classify_reference(model)  # fails before any weights load
    except ModelReferenceError as err:
        _fail(str(err))
    from therapy_align.evaluation.generation import run_generation

    if threads:
        import torch

        torch.set_num_threads(threads)

    try:
        summary = run_generation(
            model_ref=model,
            prompt_name=prompt,
            system_prompt=system_prompt,
            inputs=report.records,
            out=out,
            settings=settings,
            console=console,
        )
    except InputFileError as err:
        _fail(str(err))
    except OSError as err:  # e.g. "base" (a hub model) offline
        _fail(f"could not load model {model!r}: {err}")
    console.print(
        f"{out}: {summary.already_done + summary.generated}/{summary.total} inputs done "
        f"({summary.generated} generated now, {summary.already_done} resumed"
        + (f", torn last line of {summary.torn_bytes} bytes discarded" if summary.torn_bytes else "")
        + f"); {summary.new_tokens} new tokens, {summary.tokens_per_second:.1f} tok/s"
    )


def sweep(
    config: Annotated[Path, typer.Argument(help="wandb sweep YAML (e.g. wandb/sweep_prompts.yaml)")] = Path(
        "wandb/sweep_prompts.yaml"
    ),
    model: Annotated[str | None, typer.Option(help="model ref (overrides the YAML's)")] = None,
    limit: Annotated[int | None, typer.Option(help="inputs per prompt (overrides the YAML's)")] = None,
    out: Annotated[Path | None, typer.Option(help="sweep directory (default runs/sweep-<model>)")] = None,
    empeval: Annotated[str | None, typer.Option(help="EMP-EVAL model dir (default artifacts/empeval, else a quick one)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="most tokens per response (overrides the YAML's)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="prompts decoded together")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (0 = torch's default)")] = None,
    list_prompts: Annotated[bool, typer.Option("--list", help="list the registered system prompts and exit")] = False,
) -> None:
    """Run a wandb prompt sweep's grid locally, each run logged to wandb offline, and rank the prompts."""
    from rich.console import Console

    console = Console()
    if list_prompts:
        from therapy_align.evaluation.sweep import prompt_listing

        console.print(prompt_listing())
        return
    from therapy_align.evaluation.sweep import SweepError, run_local_sweep

    overrides = {
        key: value
        for key, value in {
            "model": model,
            "limit": limit,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "empeval": empeval,
            "threads": threads,
        }.items()
        if value is not None
    }
    try:
        run_local_sweep(config, overrides=overrides, out=out, console=console)
    except (SweepError, KeyError, FileNotFoundError, ValueError) as err:
        _fail(err.args[0] if isinstance(err, KeyError) else str(err))
    except OSError as err:  # e.g. "base" (a hub model) offline
        _fail(f"could not load the model: {err}")


def register(app: typer.Typer) -> None:
    """Add the generation commands to the main app."""
    app.command("generate")(generate)
    app.command("sweep")(sweep)
