"""`therapy-align data build|show`: the SFT data of paper §2.2.1 and §4, and a look at it."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def build(
    split: Annotated[str, typer.Option(help="annomi80 (paper's 80% model) or full_plus (100% + extras)")] = "annomi80",
    out: Annotated[Path, typer.Option(help="Output directory (datasets.save_to_disk + stats.json + split.json)")] = Path("runs/data"),
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory (default: $THERAPY_ALIGN_DATA or ../shared/data)")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer path or hub id (default: ../shared/tokenizers/llama-2)")] = None,
    max_tokens: Annotated[int, typer.Option(help="Chunk limit in tokens, system prompt and special tokens included")] = 4096,
    system_prompt: Annotated[str, typer.Option(help="Named system prompt or a file")] = "standard",
    extra: Annotated[Optional[list[Path]], typer.Option(help="Plain-text transcript(s) to add (full_plus)")] = None,
    counselchat: Annotated[bool, typer.Option(help="Add CounselChat's train split as single-turn conversations (full_plus)")] = False,
    opener_policy: Annotated[str, typer.Option(help="Transcripts opened by the therapist: neutral_opener or context")] = "neutral_opener",
    seed: Annotated[int, typer.Option(help="Seed of the 80/20 transcript split")] = 0,
    lenient: Annotated[bool, typer.Option(help="Skip and count bad utterances instead of failing")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory")] = False,
) -> None:
    """Build the Llama-2 chat SFT dataset with assistant-only labels."""
    from therapy_align.data.chat_format import load_tokenizer
    from therapy_align.data.dataset_build import BuildConfig, build_dataset, save_dataset

    with input_errors_exit():
        config = BuildConfig(
            split=split, data_dir=str(data_dir) if data_dir else None, tokenizer=tokenizer, max_tokens=max_tokens,
            system_prompt=system_prompt, extra_transcripts=tuple(str(p) for p in extra or ()),
            include_counselchat=counselchat, opener_policy=opener_policy, seed=seed, lenient=lenient,
        )
    if out.exists() and not overwrite:
        raise typer.BadParameter(f"{out} exists; pass --overwrite to replace it", param_hint="--out")
    import datasets

    datasets.disable_progress_bars()  # the status spinner covers the whole build
    started = time.perf_counter()
    with input_errors_exit(), console.status("loading tokenizer and data, cleaning, chunking, tokenizing…"):
        dataset, stats = build_dataset(config, tokenizer=load_tokenizer(tokenizer))
        save_dataset(dataset, stats, out, overwrite=overwrite)
    console.print(stats_table(stats, title=f"{split} -> {out} ({time.perf_counter() - started:.1f} s)"))


@contextmanager
def input_errors_exit():
    """Bad input (a missing file, a malformed row, an unknown name) ends the command with its
    message and exit code 2, not a traceback."""
    from therapy_align.paths import DataNotFoundError
    from therapy_align.data.transcripts import TranscriptFormatError

    try:
        yield
    except (DataNotFoundError, TranscriptFormatError, FileExistsError, KeyError, ValueError) as err:
        console.print(f"[bold red]error:[/] {err.args[0] if isinstance(err, KeyError) else err}")
        raise typer.Exit(2) from err


def stats_table(stats: dict, title: str) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in stats.items():
        if key in ("config", "split_ids"):
            continue
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    return table


@app.command()
def show(
    path: Annotated[Path, typer.Argument(help="A directory written by `data build`")],
    split: Annotated[str, typer.Option(help="train or heldout")] = "train",
    index: Annotated[int, typer.Option(help="Row to show")] = 0,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer path or hub id")] = None,
    max_chars: Annotated[int, typer.Option(help="Show at most this many characters (0: all)")] = 3000,
) -> None:
    """Print one chunk with the supervised (therapist) tokens highlighted."""
    from datasets import load_from_disk

    from therapy_align.data.chat_format import load_tokenizer, show_supervised

    dataset = load_from_disk(str(path))[split]
    if not 0 <= index < len(dataset):
        raise typer.BadParameter(f"{split} has {len(dataset)} rows", param_hint="--index")
    row = dataset[index]
    text = Text()
    for piece, supervised in show_supervised(row["input_ids"], row["labels"], load_tokenizer(tokenizer)):
        text.append(piece, style="bold green" if supervised else "dim")
    if max_chars and len(text) > max_chars:
        text = text[:max_chars] + Text(" …", style="dim")
    console.print(
        f"[bold]{row['conversation_id']}[/] chunk {row['chunk_index']} ({row['topic']}): "
        f"{row['num_tokens']} tokens, {row['num_supervised']} supervised ([bold green]green[/])"
    )
    console.print(text)
