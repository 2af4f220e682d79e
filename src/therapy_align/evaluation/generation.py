"""Batched, resumable response generation on the evaluation inputs (paper §2.2.2).

The paper fed 1,000 RSDD posts to each model under each system prompt and saved the answers for
EMP-EVAL. Here every input becomes the single-turn Llama-2 chat prompt of §4
(``<s>[INST] <<SYS>>…<</SYS>>\\n\\n{post} [/INST]``, rendered by the project's chat template) and
the model continues after ``[/INST]``.

* Batched: prompts are sorted by length, left-padded (decoder-only models continue from the
  right edge) and decoded together with the KV cache.
* Deterministic: greedy by default; with ``do_sample`` each batch is seeded from ``seed`` and the
  ids in it, so a resumed run samples the same way a fresh one would for the same batches.
* Resumable: one JSON line per input, written a whole batch at a time (one ``write``, then
  ``flush`` + ``fsync``). On restart the ids already in the file are skipped; a torn last line
  (a kill mid-write) is cut off first. Each id therefore ends up in the file exactly once.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT_FIELDS = ("id", "text")


class InputFileError(ValueError):
    """An inputs or outputs JSONL line that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class InputRecord:
    id: str
    text: str
    source: str | None = None


@dataclass(frozen=True)
class InputReport:
    records: list[InputRecord]
    skipped: list[tuple[int, str]]  # (line number, reason) of lines skipped under ``lenient``


def _check_input_line(raw: str) -> tuple[InputRecord | None, str]:
    if not raw.strip():
        return None, "blank line"
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at column {err.colno})"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    if "text" not in obj:
        return None, "missing 'text'"
    if not isinstance(obj["text"], str) or not obj["text"].strip():
        return None, "'text' must be a non-empty string"
    if "id" not in obj or not isinstance(obj["id"], (str, int)) or str(obj["id"]).strip() == "":
        return None, "missing or empty 'id'"
    source = obj.get("source")
    return InputRecord(str(obj["id"]), obj["text"], None if source is None else str(source)), ""


def read_inputs(path: str | os.PathLike, *, lenient: bool = False, limit: int | None = None) -> InputReport:
    """The inputs of a ``{"id", "text", ...}`` JSONL file, in file order.

    A blank line, invalid JSON, a missing/empty ``text`` or ``id``, or a repeated ``id`` raises
    :class:`InputFileError` naming the file and line; with ``lenient`` such lines are skipped and
    reported in ``InputReport.skipped``. ``limit`` keeps the first ``limit`` valid inputs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inputs file {path} does not exist")
    records: list[InputRecord] = []
    skipped: list[tuple[int, str]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if limit is not None and len(records) >= limit:
                break
            record, reason = _check_input_line(raw)
            if record is not None and record.id in seen:
                record, reason = None, f"duplicate id {record.id!r}"
            if record is None:
                if not lenient:
                    raise InputFileError(f"{path}:{number}: {reason} (use --lenient to skip bad lines)")
                skipped.append((number, reason))
                continue
            seen.add(record.id)
            records.append(record)
    return InputReport(records, skipped)


@dataclass(frozen=True)
class GenerationSettings:
    batch_size: int = 8
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.do_sample and (self.temperature <= 0 or not 0 < self.top_p <= 1):
            raise ValueError("sampling needs temperature > 0 and 0 < top_p <= 1")


# --------------------------------------------------------------------------------------------
# Output file: whole lines, resumable
# --------------------------------------------------------------------------------------------


def repair_tail(path: str | os.PathLike) -> int:
    """Cut a torn last line (no trailing newline, e.g. after a kill mid-write) off ``path``.

    Returns the number of bytes removed (0 when the file is whole or absent).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        # Walk back to the last newline; everything after it is the torn line.
        block = 1 << 16
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            chunk = handle.read(end - start)
            index = chunk.rfind(b"\n")
            if index >= 0:
                keep = start + index + 1
                break
            end = start
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


def read_outputs(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The generation records of an output file (after :func:`repair_tail`), in file order."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise InputFileError(f"{path}:{number}: not a generation record ({err.msg})") from err
            if not isinstance(obj, dict) or "id" not in obj:
                raise InputFileError(f"{path}:{number}: not a generation record (no 'id')")
            records.append(obj)
    return records


def done_ids(out: str | os.PathLike, *, prompt_name: str, model_ref: str) -> set[str]:
    """Ids already in ``out``; refuses a file made with another prompt or model."""
    done = set()
    for number, record in enumerate(read_outputs(out), start=1):
        if record.get("prompt") != prompt_name or record.get("model") != model_ref:
            raise InputFileError(
                f"{out}:{number}: holds a generation for prompt {record.get('prompt')!r} and model "
                f"{record.get('model')!r}, not {prompt_name!r} / {model_ref!r}; choose another --out"
            )
        done.add(str(record["id"]))
    return done


def append_records(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Append whole lines in one write, then flush and fsync: a kill leaves at most a torn tail."""
    payload = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if not payload:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------------------------
# Prompts and batched decoding
# --------------------------------------------------------------------------------------------


def prompt_ids(tokenizer, system_prompt: str | None, text: str) -> list[int]:
    """Token ids of the §4 single-turn chat prompt; generation continues after ``[/INST]``."""
    from therapy_align.data.chat_format import prompt_messages

    encoded = tokenizer.apply_chat_template(prompt_messages(system_prompt, text), tokenize=True)
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return list(ids)


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int):
    """``input_ids`` and ``attention_mask`` tensors, left-padded to the longest sequence."""
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def _generation_config(model, tokenizer, settings: GenerationSettings):
    from transformers import GenerationConfig

    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "use_cache": True,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    return GenerationConfig(**kwargs)


def batch_seed(seed: int, ids: Sequence[str]) -> int:
    """The sampling seed of one batch: a function of the run seed and the ids in the batch."""
    return (seed * 1_000_003 + zlib.crc32("\x1f".join(ids).encode("utf-8"))) % (2**31 - 1)


def cut_at_eos(tokens: Sequence[int], eos_id: int | None, pad_id: int | None) -> list[int]:
    """The new tokens up to and including the first end-of-sequence; trailing padding dropped."""
    out: list[int] = []
    for token in tokens:
        out.append(int(token))
        if eos_id is not None and token == eos_id:
            return out
    while out and pad_id is not None and pad_id != eos_id and out[-1] == pad_id:
        out.pop()
    return out


def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings,
    *,
    seed: int | None = None,
) -> list[tuple[str, int]]:
    """(response text, number of new tokens) for each prompt, decoded together."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids, attention_mask = left_pad(prompts, pad_id)
    device = next(model.parameters()).device
    config = _generation_config(model, tokenizer, settings)
    if settings.do_sample:
        torch.manual_seed(settings.seed if seed is None else seed)
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=config,
        )
    new = output[:, input_ids.shape[1] :].tolist()
    results = []
    for row in new:
        tokens = cut_at_eos(row, tokenizer.eos_token_id, pad_id)
        text = tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        results.append((text.strip(), len(tokens)))
    return results


@dataclass(frozen=True)
class GenerationSummary:
    out: Path
    total: int  # inputs requested
    already_done: int  # ids found in the file at start
    generated: int  # lines written by this call
    new_tokens: int  # tokens generated by this call
    seconds: float
    torn_bytes: int  # bytes of a torn last line cut off at start

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def generate_file(
    model,
    tokenizer,
    inputs: Sequence[InputRecord],
    out: str | os.PathLike,
    *,
    model_ref: str,
    prompt_name: str,
    system_prompt: str | None,
    settings: GenerationSettings = GenerationSettings(),
    on_batch: Callable[[int, int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Generate a response for every input not yet in ``out`` and append it there.

    ``on_start(already_done, total)`` is called once, ``on_batch(lines_written, tokens)`` after
    each batch (progress bars). An existing ``out`` made with another prompt or model is refused
    rather than silently mixed.
    """
    import time

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torn = repair_tail(out)
    done = done_ids(out, prompt_name=prompt_name, model_ref=model_ref)
    pending = [record for record in inputs if record.id not in done]
    if on_start is not None:
        on_start(len(inputs) - len(pending), len(inputs))

    encoded = [(record, prompt_ids(tokenizer, system_prompt, record.text)) for record in pending]
    # Longest first: batches of similar length waste little on padding, and an out-of-memory
    # failure (if any) shows up in the first batch rather than the last.
    encoded.sort(key=lambda pair: -len(pair[1]))

    was_training = getattr(model, "training", False)
    model.eval()
    start = time.perf_counter()
    written = tokens_total = 0
    try:
        for offset in range(0, len(encoded), settings.batch_size):
            batch = encoded[offset : offset + settings.batch_size]
            ids = [record.id for record, _ in batch]
            results = generate_batch(
                model, tokenizer, [p for _, p in batch], settings, seed=batch_seed(settings.seed, ids)
            )
            lines = [
                {
                    "id": record.id,
                    "text": record.text,
                    "prompt": prompt_name,
                    "model": model_ref,
                    "response": response,
                    "new_tokens": count,
                }
                for (record, _), (response, count) in zip(batch, results, strict=True)
            ]
            append_records(out, lines)
            written += len(lines)
            batch_tokens = sum(count for _, count in results)
            tokens_total += batch_tokens
            if on_batch is not None:
                on_batch(len(lines), batch_tokens)
    finally:
        if was_training:
            model.train()
    return GenerationSummary(
        out=out,
        total=len(inputs),
        already_done=len(inputs) - len(pending),
        generated=written,
        new_tokens=tokens_total,
        seconds=time.perf_counter() - start,
        torn_bytes=torn,
    )


def progress_bar(console=None, transient: bool = False):
    """The rich progress bar every long stage uses (inputs done, rate, time left)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def run_generation(
    *,
    model_ref: str,
    prompt_name: str,
    system_prompt: str | None,
    inputs: Sequence[InputRecord],
    out: str | os.PathLike,
    settings: GenerationSettings = GenerationSettings(),
    console=None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
    description: str | None = None,
) -> GenerationSummary:
    """:func:`generate_file` with the model loaded from ``model_ref`` (unless given) and a rich
    progress bar. Nothing is loaded when ``out`` already holds every input."""
    import time

    import dataclasses

    out = Path(out)
    torn = repair_tail(out)
    done = done_ids(out, prompt_name=prompt_name, model_ref=model_ref)
    if all(record.id in done for record in inputs):
        return GenerationSummary(out, len(inputs), len(inputs), 0, 0, 0.0, torn)
    if model_and_tokenizer is None:
        from therapy_align.training.models import load_model_for_inference

        model_and_tokenizer = load_model_for_inference(model_ref)
    model, tokenizer = model_and_tokenizer
    with progress_bar(console) as progress:
        task = progress.add_task(description or f"generate {model_ref} / {prompt_name}", total=len(inputs), rate="")
        started = time.perf_counter()
        tokens = 0

        def on_start(already: int, total: int) -> None:
            progress.update(task, completed=already)

        def on_batch(lines: int, batch_tokens: int) -> None:
            nonlocal tokens
            tokens += batch_tokens
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=lines, rate=f"{rate:.0f} tok/s")

        summary = generate_file(
            model,
            tokenizer,
            inputs,
            out,
            model_ref=model_ref,
            prompt_name=prompt_name,
            system_prompt=system_prompt,
            settings=settings,
            on_batch=on_batch,
            on_start=on_start,
        )
    return dataclasses.replace(summary, torn_bytes=summary.torn_bytes + torn)
