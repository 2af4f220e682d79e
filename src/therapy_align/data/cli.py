"""`therapy-align data build|show`: the SFT data of paper §2.2.1 and §4, and a look at it.

Bad input ends the command with exit status 2 and one line on stderr (``error: FILE:LINE: field:
what; fix``) before any work; the output directory appears only when complete.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from therapy_align.errors import UserError, exit_on_user_error

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
@exit_on_user_error
def build(
    split: Annotated[str, typer.Option(help="annomi80 (paper's 80% model) or full_plus (100% + extras)")] = "annomi80",
    out: Annotated[Path, typer.Option(help="Output directory (datasets.save_to_disk + stats.json + split.json)")] = Path("runs/data"),
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory (default: $THERAPY_ALIGN_DATA or ../shared/data)")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="The target model's tokenizer: a registered model name (gemma-3-270m), a directory or a hub id (default: ../shared/tokenizers/llama-2)")] = None,
    max_tokens: Annotated[int, typer.Option(help="Chunk limit in tokens, system prompt and special tokens included")] = 4096,
    system_prompt: Annotated[str, typer.Option(help="Named system prompt or a file")] = "standard",
    extra: Annotated[Optional[list[Path]], typer.Option(help="Plain-text transcript(s) to add (full_plus)")] = None,
    counselchat: Annotated[bool, typer.Option(help="Add CounselChat's train split as single-turn conversations (full_plus)")] = False,
    opener_policy: Annotated[str, typer.Option(help="Transcripts opened by the therapist: neutral_opener or context")] = "neutral_opener",
    seed: Annotated[int, typer.Option(help="Seed of the 80/20 transcript split")] = 0,
    lenient: Annotated[bool, typer.Option(help="Skip and count bad utterances instead of failing")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory")] = False,
) -> None:
    """Build the chat SFT dataset, in the tokenizer's chat format, with assistant-only labels."""
    from therapy_align.data.dataset_build import BuildConfig, BuildConfigError
    from therapy_align.data.transcripts import load_plain_transcript
    from therapy_align.paths import resolve_data_dir, resolve_tokenizer

    # Everything the user gave is checked before any data or tokenizer is loaded.
    try:
        config = BuildConfig(
            split=split, data_dir=str(data_dir) if data_dir else None, tokenizer=tokenizer, max_tokens=max_tokens,
            system_prompt=system_prompt, extra_transcripts=tuple(str(p) for p in extra or ()),
            include_counselchat=counselchat, opener_policy=opener_policy, seed=seed, lenient=lenient,
        )
    except BuildConfigError as error:
        error.field = _FLAGS.get(error.field, error.field)
        raise
    check_system_prompt(system_prompt)
    if tokenizer is not None and tokenizer != (tokenizer := registered_tokenizer(tokenizer)):
        config = replace(config, tokenizer=tokenizer)  # stats.json records the directory the name stands for
    tokenizer_source = resolve_tokenizer(tokenizer)
    if data_dir is not None:
        resolve_data_dir(data_dir)
    for path in extra or ():
        load_plain_transcript(path)  # cheap: a bad session fails before the tokenizer loads
    check_build_out(out, overwrite=overwrite, inputs=[data_dir, tokenizer_source, system_prompt, *(extra or ())])
    _run_build(config, out, overwrite=overwrite, tokenizer_source=tokenizer_source)


_FLAGS = {"tokenizer": "--tokenizer", "max_tokens": "--max-tokens", "extra_transcripts": "--extra",
          "include_counselchat": "--counselchat", "split": "--split", "opener_policy": "--opener-policy", "seed": "--seed"}


def _run_build(config, out: Path, *, overwrite: bool, tokenizer_source: str) -> None:
    import datasets

    from therapy_align.data.dataset_build import BuildConfigError, build_dataset, save_dataset

    datasets.disable_progress_bars()  # the status spinner covers the whole build
    started = time.perf_counter()
    with console.status("loading tokenizer and data, cleaning, chunking, tokenizing…"):
        tok = load_tokenizer_checked(tokenizer_source)
        try:
            dataset, stats = build_dataset(config, tokenizer=tok)
        except UserError as error:  # a setting or the tokenizer's chat template, named as on the command line
            error.field = _FLAGS.get(error.field, error.field)
            raise
        save_dataset(dataset, stats, out, overwrite=overwrite)
    console.print(stats_table(stats, title=f"{config.split} -> {out} ({time.perf_counter() - started:.1f} s)"))


def check_system_prompt(name_or_file: str) -> str:
    """The system prompt's text, or a one-line error naming --system-prompt."""
    from therapy_align.data.system_prompts import check_prompt

    try:
        return check_prompt(name_or_file)
    except UserError as error:
        error.field = "--system-prompt"
        raise


def registered_tokenizer(name_or_path: str | None) -> str | None:
    """A registered model's name -> its directory (prepared on first use) or hub id, whose tokenizer
    and chat template the data is built with; anything else unchanged."""
    from therapy_align.training.model_registry import lookup, resolve

    return resolve(name_or_path) if name_or_path is not None and lookup(name_or_path) is not None else name_or_path


@lru_cache(maxsize=2)
def load_tokenizer_checked(source: str | None):
    """The tokenizer with its chat template (``chat_format.load_tokenizer``), or a one-line error
    naming the source when it cannot be loaded (cached: builds and shows only read it)."""
    from therapy_align.data.chat_format import load_tokenizer

    try:
        return load_tokenizer(source)
    except UserError as error:
        error.field = "--tokenizer" if error.field == "tokenizer" else error.field
        raise
    except (OSError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load a tokenizer ({first[:200]})", file=source, field="--tokenizer",
                        fix="give a directory holding tokenizer.model or tokenizer.json, or a hub id reachable from here") from None


def check_build_out(out: Path, *, overwrite: bool, inputs: list) -> Path:
    """Refuse, before any work, an --out that cannot receive a dataset directory: a file, a path under a
    file, an existing directory without --overwrite, or (with it) one that is not a previous build or
    that holds the inputs."""
    from therapy_align.files import check_output_path

    sources = [Path(str(source)) for source in inputs if source is not None and Path(str(source)).exists()]
    check_output_path(out, kind="dir", inputs=[source for source in sources if source.is_file()])
    if not out.exists():
        return out
    # Before advising --overwrite: it replaces the whole directory, so it must not hold an input
    # (by path, through a symlink, or as a hard link of a file inside it).
    resolved = out.resolve()
    held = {(f.stat().st_dev, f.stat().st_ino) for f in out.rglob("*") if f.is_file()} if out.is_dir() else set()
    for source in sources:
        path = source.resolve()
        linked = source.is_file() and (source.stat().st_dev, source.stat().st_ino) in held
        if path == resolved or resolved in path.parents or linked:
            raise UserError(f"holds the input {source}; replacing it would delete the input", file=out,
                            field="--out", fix="choose another --out")
    if not overwrite:
        raise UserError("exists", file=out, field="--out", fix="pass --overwrite to replace it, or choose another --out")
    if any(out.iterdir()) and not (out / "stats.json").is_file():
        raise UserError("is not a directory written by `data build` (no stats.json); refusing to replace it",
                        file=out, field="--out", fix="choose another --out, or remove the directory yourself")
    return out


def _built_with(path: Path) -> str | None:
    """The --tokenizer a dataset was built with (stats.json), None for the default."""
    try:
        return json.loads((path / "stats.json").read_text(encoding="utf-8"))["config"]["tokenizer"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stats_table(stats: dict, title: str) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in stats.items():
        if key in ("config", "split_ids"):
            continue
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    return table


@app.command()
@exit_on_user_error
def show(
    path: Annotated[Path, typer.Argument(help="A directory written by `data build`")],
    split: Annotated[str, typer.Option(help="train or heldout")] = "train",
    index: Annotated[int, typer.Option(help="Row to show")] = 0,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer to decode with: a registered model name, a directory or a hub id (default: the one the data was built with)")] = None,
    max_chars: Annotated[int, typer.Option(min=0, help="Show at most this many characters (0: all)")] = 3000,
) -> None:
    """Print one chunk with the supervised (therapist) tokens highlighted."""
    from datasets import load_from_disk

    from therapy_align.data.chat_format import show_supervised
    from therapy_align.paths import resolve_tokenizer

    if not path.is_dir():
        raise UserError("no such dataset directory" if not path.exists() else "is a file, expected a dataset directory",
                        file=path, fix="give a directory written by `therapy-align data build`")
    if not (path / "dataset_dict.json").is_file():
        raise UserError("is not a dataset written by `data build` (no dataset_dict.json)", file=path,
                        fix="give a directory written by `therapy-align data build`")
    if tokenizer is None:  # decode with the tokenizer the data was built with, not whatever is default here
        tokenizer = _built_with(path)
    tokenizer = registered_tokenizer(tokenizer)
    tokenizer_source = resolve_tokenizer(tokenizer)
    try:
        dataset_dict = load_from_disk(str(path))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot be loaded ({str(err).splitlines()[0][:200]})", file=path,
                        fix="rebuild it with `therapy-align data build --overwrite`") from None
    if split not in dataset_dict:
        raise UserError(f"no split {split!r} in this dataset", file=path, field="--split",
                        fix=f"choose {' or '.join(dataset_dict)}")
    dataset = dataset_dict[split]
    if len(dataset) == 0:
        raise UserError(f"split {split!r} has no rows", file=path, field="--split",
                        fix=f"choose another split ({', '.join(k for k in dataset_dict if k != split)})")
    if not 0 <= index < len(dataset):
        raise UserError(f"{index} is out of range: {split} has {len(dataset)} rows (0..{len(dataset) - 1})",
                        file=path, field="--index", fix="give an index in range")
    row = dataset[index]
    text = Text()
    for piece, supervised in show_supervised(row["input_ids"], row["labels"], load_tokenizer_checked(tokenizer_source)):
        text.append(piece, style="bold green" if supervised else "dim")
    if max_chars and len(text) > max_chars:
        text = text[:max_chars] + Text(" …", style="dim")
    console.print(
        f"[bold]{row['conversation_id']}[/] chunk {row['chunk_index']} ({row['topic']}): "
        f"{row['num_tokens']} tokens, {row['num_supervised']} supervised ([bold green]green[/])"
    )
    console.print(text)
