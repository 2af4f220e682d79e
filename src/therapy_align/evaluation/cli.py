"""`therapy-align generate` and `therapy-align sweep`.

The decoding options of ``generate`` are made from :class:`GenerationSpec`'s fields (one
declaration of each knob). Heavy imports (torch, transformers, wandb) happen inside the commands
so `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated

import typer

from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.generation import DEFAULT_INPUTS, GenerationSpec, ModelCache, ModelLoad


def with_spec_options(spec_cls: type, param: str):
    """Decorator: the command gets one option per field of the dataclass ``spec_cls`` (help from
    the field's metadata) and receives them as one ``spec_cls`` instance in ``param``."""

    def decorate(command):
        signature = inspect.signature(command)
        hints = typing.get_type_hints(spec_cls)
        fields = dataclasses.fields(spec_cls)
        options = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                              annotation=Annotated[hints[f.name], typer.Option(help=f.metadata.get("help", ""))])
            for f in fields
        ]
        resolved = typing.get_type_hints(command, include_extras=True)  # the command's own string annotations
        kept = [p.replace(annotation=resolved.get(p.name, p.annotation))
                for p in signature.parameters.values() if p.name != param]

        @functools.wraps(command)
        def wrapper(**kwargs):
            spec = spec_cls(**{f.name: kwargs.pop(f.name) for f in fields})
            return command(**kwargs, **{param: spec})

        wrapper.__signature__ = signature.replace(parameters=kept + options)
        # Resolved annotations: typer evaluates string ones in *this* module's namespace otherwise.
        wrapper.__annotations__ = {p.name: p.annotation for p in kept + options}
        del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one
        return wrapper

    return decorate


@with_spec_options(ModelLoad, "load")
@with_spec_options(GenerationSpec, "generation")
@exit_on_user_error
def generate(
    model: Annotated[str, typer.Option(help="base | tiny-base | a model dir | an SFT run dir runs/<name>")],
    out: Annotated[Path, typer.Option(help="output JSONL; rerunning resumes it (<out>.part until all are done)")],
    generation: GenerationSpec,
    load: ModelLoad,
    prompt: Annotated[str, typer.Option(help="system prompt name (see `therapy-align sweep --list`) or a text file")] = "standard",
    inputs: Annotated[Path, typer.Option(help="inputs JSONL: one {\"id\", \"text\"} object per line")] = Path(DEFAULT_INPUTS),
    limit: Annotated[int | None, typer.Option(help="use only the first N inputs")] = None,
    lenient: Annotated[bool, typer.Option(help="skip and count bad input lines instead of failing")] = False,
    force: Annotated[bool, typer.Option(help="regenerate stored replies made from other inputs, model or settings")] = False,
) -> None:
    """Generate one response per input with MODEL under the system prompt PROMPT (paper §2.2.2)."""
    from rich.console import Console

    from therapy_align.data.system_prompts import check_prompt
    from therapy_align.errors import UserError, file_system_error
    from therapy_align.evaluation.generation import read_inputs, run_generation
    from therapy_align.files import check_output_path, store_side_files
    from therapy_align.training.models import ModelReferenceError, classify_reference

    console = Console(stderr=True)
    system_prompt = check_prompt(prompt)
    # the prompt may be a text file and the model a directory: neither may be where replies go
    check_output_path(out, inputs=[inputs, Path(prompt), Path(model)], side_files=store_side_files(out))
    report = read_inputs(inputs, lenient=lenient, limit=limit)
    if report.skipped:
        console.print(f"[yellow]skipped {len(report.skipped)} bad input line(s)[/]: " + "; ".join(report.skipped[:5])
                      + (" ..." if len(report.skipped) > 5 else ""), highlight=False)
    try:
        classify_reference(model)  # fails before any weights load
    except ModelReferenceError as err:
        raise UserError(str(err), field="--model") from None
    try:
        summary = run_generation(model_ref=model, prompt_name=prompt, system_prompt=system_prompt,
                                 inputs=report.records, out=out, spec=generation, force=force, console=console,
                                 models=ModelCache(load))
    except OSError as err:  # e.g. "base" (a hub model) offline
        if file_system_error(err) is not None:  # disk full or read-only while writing: not the model's fault
            raise
        raise UserError(f"could not load model {model!r}: {str(err).strip().splitlines()[0]}", field="--model") from None
    console.print(
        f"{out}: {summary.already_done + summary.generated}/{summary.total} inputs done "
        f"({summary.generated} generated now, {summary.already_done} resumed"
        + (f", torn last line of {summary.torn_bytes} bytes discarded" if summary.torn_bytes else "")
        + (f", {summary.dropped_stale} stale replies redone" if summary.dropped_stale else "")
        + (f", {summary.truncated} inputs over the model's window cut from the left" if summary.truncated else "")
        + f"); {summary.new_tokens} new tokens, {summary.tokens_per_second:.1f} tok/s", highlight=False)


@exit_on_user_error
def sweep(
    config: Annotated[Path, typer.Argument(help="wandb sweep YAML (e.g. wandb/sweep_prompts.yaml)")] = Path(
        "wandb/sweep_prompts.yaml"),
    model: Annotated[str | None, typer.Option(help="model ref (overrides the YAML's)")] = None,
    limit: Annotated[int | None, typer.Option(help="inputs per prompt (overrides the YAML's)")] = None,
    out: Annotated[Path | None, typer.Option(help="sweep directory (default runs/sweep-<model>)")] = None,
    empeval: Annotated[str | None, typer.Option(help="EMP-EVAL model dir (default artifacts/empeval, else a quick one)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="any run setting, KEY=VALUE (repeatable), e.g. generation.max_new_tokens=64")] = None,
    list_prompts: Annotated[bool, typer.Option("--list", help="list the registered system prompts and exit")] = False,
) -> None:
    """Run a wandb prompt sweep's grid locally, each run logged to wandb offline, and rank the prompts."""
    from rich.console import Console

    from therapy_align.errors import UserError, file_system_error
    from therapy_align.evaluation.sweep import prompt_listing, run_local_sweep
    from therapy_align.files import check_output_path

    console = Console()
    if list_prompts:
        console.print(prompt_listing())
        return
    overrides = {key: value for key, value in {"model": model, "limit": limit, "empeval": empeval}.items()
                 if value is not None}
    for item in set_ or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"expected KEY=VALUE, got {item!r}", field="--set")
        overrides[key] = value
    if out is not None:
        check_output_path(out, inputs=[config], kind="dir")
    try:
        run_local_sweep(config, overrides=overrides, out=out, console=console)
    except OSError as err:  # e.g. "base" (a hub model) offline
        if file_system_error(err) is not None:  # disk full or read-only while writing: not the model's fault
            raise
        raise UserError(f"could not load the model: {str(err).strip().splitlines()[0]}", field="--model") from None


def register(app: typer.Typer) -> None:
    """Add the generation commands to the main app."""
    app.command("generate")(generate)
    app.command("sweep")(sweep)
