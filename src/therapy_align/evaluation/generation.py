"""Batched, resumable response generation on the evaluation inputs (paper §2.2.2).

The paper fed 1,000 RSDD posts to each model under each system prompt and saved the answers for
EMP-EVAL. Here every input becomes the single-turn Llama-2 chat prompt of §4
(``<s>[INST] <<SYS>>…<</SYS>>\\n\\n{post} [/INST]``, rendered by the project's chat template) and
the model continues after ``[/INST]``.

* :class:`GenerationSpec` is the one place the decoding knobs are declared; every config and
  command that generates nests it (``--generation.max_new_tokens=...`` in recipes).
* Batched: prompts are (by default) sorted by length, left-padded (decoder-only models continue
  from the right edge) and decoded together with the KV cache; the output file is in input order.
* Deterministic: greedy by default; with ``do_sample`` each batch is seeded from ``seed`` and the
  ids in it, so a resumed run samples the same way a fresh one would for the same batches.
* Resumable through :class:`~therapy_align.store.ResultStore`: one JSON line per input, a whole
  batch at a time; each line is stamped with the model's identity, the system prompt and the
  decoding settings, so a rerun reuses only what the same model, prompt and settings made from the
  same text (else it refuses, or redoes it with ``force``). ``<out>`` appears when all are done.
"""

from __future__ import annotations

import gc
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.files import InputFileError, file_digest, read_jsonl
from therapy_align.store import ResultStore

# Paper §2.2.2: 1,000 RSDD posts (here: 1,000 Reddit mental-health posts, ../shared/README.md).
DEFAULT_INPUTS = "../shared/data/eval_inputs/reddit_mental_health_1000.jsonl"
# Output heads generation can use (therapy_align.evaluation.restricted_vocab): every token, or the corpora's.
VOCABULARIES = ("full", "corpora")

__all__ = ["DEFAULT_INPUTS", "GenerationSpec", "InputFileError", "InputRecord", "InputReport", "ModelCache", "ModelLoad",
           "generate_batch", "generate_file", "model_identity", "read_inputs", "run_generation"]


@dataclass(frozen=True)
class InputRecord:
    id: str
    text: str
    source: str | None = None


@dataclass(frozen=True)
class InputReport:
    records: list[InputRecord]
    skipped: list[str]  # messages (file:line: field: what) of lines skipped under ``lenient``


def read_inputs(path: str | os.PathLike, *, lenient: bool = False, limit: int | None = None) -> InputReport:
    """The inputs of a ``{"id", "text", ...}`` JSONL file, in file order.

    Invalid JSON, a missing or blank ``text`` or ``id``, or a repeated ``id`` raises
    :class:`~therapy_align.files.InputFileError` naming the file, line and field; with ``lenient``
    such lines are skipped and reported. Blank lines are ignored. ``limit`` keeps the first
    ``limit`` valid inputs.
    """
    if limit is not None and limit < 1:
        raise UserError(f"must be at least 1, got {limit}", field="limit", fix="give a positive number of inputs")
    records, skipped = read_jsonl(path, fields={"id": (str, int), "text": str}, optional={"source": str},
                                  lenient=lenient, nonblank=("id", "text"))
    chosen = records[:limit] if limit is not None else records
    return InputReport([InputRecord(str(r["id"]), r["text"], r.get("source")) for r in chosen], skipped)


@dataclass(frozen=True, kw_only=True)
class GenerationSpec:
    """How replies are decoded: the one declaration of the decoding knobs.

    Nested as ``generation`` by every config that generates (``recipes/eval_paper.py``,
    ``recipes/prompts.py``) and turned into options by ``therapy-align generate``. Only the fields
    in :meth:`identity` change what is generated; the others are throughput.
    """

    batch_size: int = field(default=8, metadata={
        "help": "prompts decoded together; halved on out-of-memory, so a large value finds the largest batch "
                "that fits (throughput only)"})
    max_new_tokens: int = field(default=256, metadata={
        "help": "most tokens per reply (paper silent; its example answers run ~200 tokens, cut mid-sentence)"})
    do_sample: bool = field(default=False, metadata={
        "help": "sample instead of greedy decoding (paper silent: greedy, so tables are reproducible)"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (with do_sample)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (with do_sample)"})
    seed: int = field(default=0, metadata={"help": "seed of the sampling RNG, per batch (with do_sample)"})
    sort_by_length: bool = field(default=True, metadata={
        "help": "batch prompts of similar length together (less padding; output order unchanged)"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads, 0 = torch's default (throughput only)"})
    cache_implementation: str = field(default="dynamic", metadata={
        "help": "KV cache: 'dynamic', or 'static' (preallocated; on CUDA transformers then compiles the decode "
                "step, the first batch of each shape paying the compile) (throughput only)"})
    vocabulary: str = field(default="full", metadata={
        "help": "output head: 'full', or 'corpora' (logits only for the tokens the corpora, the chat template and "
                "the stop ids use; the others can never be generated: several times faster on a CPU for a "
                "small model, greedy replies unchanged wherever the full model's choice is such a token)"})

    def __post_init__(self) -> None:
        import math

        if self.batch_size < 1:
            raise UserError(f"must be >= 1, got {self.batch_size}", field="generation.batch_size")
        if self.max_new_tokens < 1:
            raise UserError(f"must be >= 1, got {self.max_new_tokens}", field="generation.max_new_tokens")
        if self.threads < 0:
            raise UserError(f"must be >= 0, got {self.threads}", field="generation.threads")
        if self.cache_implementation not in ("dynamic", "static"):
            raise UserError(f"must be 'dynamic' or 'static', got {self.cache_implementation!r}",
                            field="generation.cache_implementation")
        # NaN passes no comparison and so slipped past the sampling check below into the sampler;
        # checked even when greedy, since a recipe may turn sampling on later with the same values.
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise UserError(f"must be a finite number, got {value!r}", field=f"generation.{name}")
        if self.seed < 0:  # torch.manual_seed refuses it, after the model has loaded
            raise UserError(f"must be >= 0, got {self.seed}", field="generation.seed")
        if self.vocabulary not in VOCABULARIES:
            raise UserError(f"must be one of {', '.join(VOCABULARIES)}, got {self.vocabulary!r}",
                            field="generation.vocabulary", fix="use 'full' (every token) or 'corpora'")
        if self.do_sample and (self.temperature <= 0 or not 0 < self.top_p <= 1):
            raise UserError("sampling needs temperature > 0 and 0 < top_p <= 1", field="generation")

    def identity(self) -> dict[str, Any]:
        """The knobs that change the replies (sampling ones only when sampling; the vocabulary only
        when restricted, so replies stamped before it existed still match a full-vocabulary run)."""
        restricted = {} if self.vocabulary == "full" else {"vocabulary": self.vocabulary}
        if not self.do_sample:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False, **restricted}
        return {"max_new_tokens": self.max_new_tokens, "do_sample": True, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, **restricted}


# --------------------------------------------------------------------------------------------
# Model identity and loading
# --------------------------------------------------------------------------------------------


def model_identity(ref: str) -> dict[str, Any]:
    """What a model reference stands for, for result stamps: the reference, plus for an SFT run a
    hash of its adapter weights (a retrained run is another model), for a model directory its
    config and weight-file sizes. Loads nothing."""
    from therapy_align.training.models import classify_reference

    kind, source = classify_reference(ref)
    identity: dict[str, Any] = {"ref": ref, "kind": kind}
    path = Path(source)
    if kind == "run":
        adapter = path / "adapter"
        identity["adapter"] = {f.name: file_digest(f) for f in sorted(adapter.iterdir())
                               if f.is_file() and f.suffix in (".safetensors", ".bin", ".json")}
    elif kind == "model":
        identity["config"] = file_digest(path / "config.json")
        identity["weights"] = {f.name: f.stat().st_size for f in sorted(path.iterdir())
                               if f.suffix in (".safetensors", ".bin")}
    return identity


@dataclass(frozen=True, kw_only=True)
class ModelLoad:
    """How a model reference is loaded for generation (the decoding knobs are :class:`GenerationSpec`).

    Nested as ``load`` beside ``generation``. At 7B scale a bf16 base with the SFT run's LoRA
    merged generates several times faster than LoRA layers over 4-bit weights (docs/evaluation.md); merging
    changes only rounding, but it is part of what stamps a cell's replies (:meth:`identity`).
    """

    quantization: str = field(default="none", metadata={"help": "none | 4bit | 8bit (bitsandbytes, CUDA only)"})
    dtype: str = field(default="auto", metadata={"help": "auto | bfloat16 | float16 | float32"})
    merge_adapter: bool = field(default=True, metadata={
        "help": "fold an SFT run's LoRA adapter into the weights (unquantized bases only)"})

    def __post_init__(self) -> None:
        if self.quantization not in ("none", "4bit", "8bit"):
            raise UserError(f"must be none, 4bit or 8bit, got {self.quantization!r}", field="load.quantization")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise UserError(f"must be auto, bfloat16, float16 or float32, got {self.dtype!r}", field="load.dtype")
        if self.merge_adapter and self.quantization != "none":
            raise UserError("an adapter cannot be merged into a quantized base", field="load.merge_adapter",
                            fix="set --load.merge_adapter=false or --load.quantization=none")

    def identity(self) -> dict[str, Any]:
        return {"quantization": self.quantization, "dtype": self.dtype, "merge_adapter": self.merge_adapter}

    def __call__(self, ref: str) -> tuple[Any, Any]:
        from therapy_align.training.models import load_model_for_inference

        return load_model_for_inference(ref, quantization=None if self.quantization == "none" else self.quantization,
                                        dtype=self.dtype, merge=self.merge_adapter)


class ModelCache:
    """Holds one loaded model at a time: :meth:`get` loads a reference (with ``load``) on first use
    and drops the previous model, so a grid that visits each model's cells together loads each
    model once."""

    def __init__(self, load: ModelLoad | None = None, *, loader: Callable[[str], tuple[Any, Any]] | None = None) -> None:
        self.load = load or ModelLoad()
        self._loader = loader or self.load
        self._ref: str | None = None
        self._loaded: tuple[Any, Any] | None = None

    def get(self, ref: str) -> tuple[Any, Any]:
        if self._ref != ref:
            self.release()
            self._loaded, self._ref = self._loader(ref), ref
        return self._loaded

    def put(self, ref: str, model_and_tokenizer: tuple[Any, Any]) -> None:
        """Use an already loaded model for ``ref``."""
        self.release()
        self._ref, self._loaded = ref, model_and_tokenizer

    def release(self) -> None:
        self._ref = self._loaded = None
        gc.collect()


# --------------------------------------------------------------------------------------------
# Prompts and batched decoding
# --------------------------------------------------------------------------------------------


def prompt_ids(tokenizer, system_prompt: str | None, text: str) -> list[int]:
    """Token ids of the §4 single-turn chat prompt; generation continues after ``[/INST]``."""
    from therapy_align.data.chat_format import prompt_messages

    # The generation prompt opens the model's turn where the template has one (Gemma's
    # ``<start_of_turn>model``); Llama-2's template ends at ``[/INST]`` either way.
    encoded = tokenizer.apply_chat_template(prompt_messages(system_prompt, text), tokenize=True,
                                            add_generation_prompt=True)
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return list(ids)


def fit_prompt(tokenizer, system_prompt: str | None, text: str, limit: int | None) -> tuple[list[int], int]:
    """:func:`prompt_ids` within ``limit`` tokens (the model's window less the reply's tokens): an
    input too long has its text cut from the left, keeping the end nearest the question, rather than failing.
    Returns ``(ids, tokens of the text cut)``; a system prompt that alone leaves no room is an error."""
    ids = prompt_ids(tokenizer, system_prompt, text)
    if limit is None or len(ids) <= limit:
        return ids, 0
    text_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    keep = max(0, len(text_ids) - (len(ids) - limit))
    while True:
        ids = prompt_ids(tokenizer, system_prompt, tokenizer.decode(text_ids[len(text_ids) - keep:]) if keep else "")
        if len(ids) <= limit:
            return ids, len(text_ids) - keep
        if keep == 0:
            raise UserError(f"the system prompt and chat template alone take {len(ids)} tokens, over the "
                            f"{limit} the model's window leaves beside max_new_tokens", field="generation.max_new_tokens",
                            fix="give fewer --max-new-tokens or a shorter system prompt")
        keep = max(0, keep - max(1, len(ids) - limit))


def model_window(model) -> int | None:
    """The model's context length (``max_position_embeddings``), or None when it does not say."""
    config = getattr(model, "config", None)
    return getattr(config, "max_position_embeddings", None) if config is not None else None


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


def generation_config(tokenizer, spec: GenerationSpec):
    """The transformers ``GenerationConfig`` of a spec (the chat uses it too)."""
    from transformers import GenerationConfig

    kwargs: dict[str, Any] = {
        "max_new_tokens": spec.max_new_tokens,
        "do_sample": spec.do_sample,
        "use_cache": True,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if spec.do_sample:
        kwargs.update(temperature=spec.temperature, top_p=spec.top_p, top_k=0)
    if spec.cache_implementation == "static":
        kwargs["cache_implementation"] = "static"
    return GenerationConfig(**kwargs)


def batch_seed(seed: int, ids: Sequence[str]) -> int:
    """The sampling seed of one batch: a function of the run seed and the ids in the batch."""
    return (seed * 1_000_003 + zlib.crc32("\x1f".join(ids).encode("utf-8"))) % (2**31 - 1)


def chat_turn_end(tokenizer) -> str | None:
    """The special token the chat template writes right after an assistant reply (Llama-2's ``</s>``,
    Gemma's ``<end_of_turn>``), or None when plain text or nothing follows the reply."""
    from therapy_align.data.chat_format import render_text

    marker = "REPLY-MARKER"
    text, _ = render_text([{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenizer)
    ids = tokenizer(text[text.index(marker) + len(marker):].lstrip(" "), add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    first = tokenizer.convert_ids_to_tokens(ids[0])
    return first if first in tokenizer.all_special_tokens or first in tokenizer.get_added_vocab() else None


def end_replies_at_turn_end(model, tokenizer):
    """``(model, tokenizer)`` with the tokenizer's end of sequence made the token that closes an
    assistant turn, where the two differ: a base Gemma tokenizer's is ``<eos>``, but its chat replies
    end at ``<end_of_turn>``, and batched generation stops (and cuts) a reply at
    ``tokenizer.eos_token_id``: without this a reply runs on into a made-up next turn. Llama-2's
    ``</s>`` is both; a Gemma SFT run's tokenizer already has it (TRL's ``eos_token``). The model's
    generation config stops there too, beside its own stop tokens."""
    turn_end = chat_turn_end(tokenizer)
    if turn_end is None or turn_end == tokenizer.eos_token:
        return model, tokenizer
    tokenizer.eos_token = turn_end
    config = getattr(model, "generation_config", None)
    if config is not None:
        stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
        config.eos_token_id = [tokenizer.eos_token_id, *(i for i in stops if i is not None and i != tokenizer.eos_token_id)]
    return model, tokenizer


def reply_models(load=None):
    """A :class:`~therapy_align.evaluation.generation.ModelCache` whose models end replies at the end
    of their chat turn (:func:`end_replies_at_turn_end`)."""
    load = load or ModelLoad()
    return ModelCache(load, loader=lambda ref: end_replies_at_turn_end(*load(ref)))


def stop_ids(model, tokenizer) -> list[int]:
    """Every id that ends a reply: the tokenizer's end of sequence and the model's own stop ids. A
    chat family may end a turn with its own token (Gemma's ``<end_of_turn>``, in the model's
    generation config beside ``<eos>``); Llama-2 ends both with ``</s>``."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    own = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for token in own if isinstance(own, (list, tuple)) else [own]:
        if token is not None and int(token) not in ids:
            ids.append(int(token))
    return ids


def cut_at_eos(tokens: Sequence[int], eos_id: int | Sequence[int] | None, pad_id: int | None) -> list[int]:
    """The new tokens up to and including the first end-of-sequence; trailing padding dropped."""
    stops = set() if eos_id is None else {eos_id} if isinstance(eos_id, int) else set(eos_id)
    out: list[int] = []
    for token in tokens:
        out.append(int(token))
        if token in stops:
            return out
    while out and pad_id is not None and pad_id not in stops and out[-1] == pad_id:
        out.pop()
    return out


def generate_batch(model, tokenizer, prompts: Sequence[Sequence[int]], spec: GenerationSpec, *,
                   seed: int | None = None) -> list[tuple[str, int]]:
    """(response text, number of new tokens) for each prompt, decoded together."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids, attention_mask = left_pad(prompts, pad_id)
    device = next(model.parameters()).device
    config = generation_config(tokenizer, spec)
    stops = stop_ids(model, tokenizer)
    config.eos_token_id = stops if len(stops) > 1 else config.eos_token_id
    processors = None
    if spec.do_sample:
        # transformers' top-p sorts the whole vocabulary at every step; this takes the top candidates
        # and sorts only when they cannot hold the nucleus (same kept tokens, same samples)
        from therapy_align.evaluation.sampling import candidate_sampling

        config, processors = candidate_sampling(config)
        torch.manual_seed(spec.seed if seed is None else seed)
    # A restricted vocabulary swaps the output head for the call only (made once per model, then
    # remembered on it); logits stay full-size, so the config, processors and stop ids are unchanged.
    from therapy_align.evaluation.restricted_vocab import vocabulary_for

    with vocabulary_for(model, tokenizer, spec.vocabulary), torch.inference_mode():
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                generation_config=config, logits_processor=processors)
    new = output[:, input_ids.shape[1] :].tolist()
    results = []
    for row in new:
        tokens = cut_at_eos(row, stops, pad_id)
        text = tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        results.append((text.strip(), len(tokens)))
    return results


# --------------------------------------------------------------------------------------------
# Generation files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSummary:
    out: Path
    total: int  # inputs requested
    already_done: int  # inputs found done at start
    generated: int  # lines written by this call
    new_tokens: int  # tokens generated by this call
    seconds: float
    torn_bytes: int  # bytes of a torn last line cut off at start
    dropped_stale: int = 0  # stale lines dropped under force
    truncated: int = 0  # inputs over the model's window, cut from the left (records: "input_tokens_cut")
    batch_size: int = 0  # the batch size in the end (spec.batch_size, halved on each out-of-memory)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def generation_store(out: str | os.PathLike, *, model_ref: str, system_prompt: str | None, spec: GenerationSpec,
                     load: ModelLoad | None = None, force: bool = False) -> ResultStore:
    """The store of one generation file: stamped with model identity (and how it was loaded, when
    known), system prompt and settings."""
    model = model_identity(model_ref)
    if load is not None:
        model["load"] = load.identity()
    return ResultStore(out, made_from={"model": model, "prompt": system_prompt or "", "settings": spec.identity()},
                       force=force)


def generate_file(
    model_and_tokenizer: tuple[Any, Any] | Callable[[], tuple[Any, Any]],
    inputs: Sequence[InputRecord],
    out: str | os.PathLike,
    *,
    model_ref: str,
    prompt_name: str,
    system_prompt: str | None,
    spec: GenerationSpec = GenerationSpec(),
    load: ModelLoad | None = None,
    force: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Generate a reply for every input not yet done in ``out``; returns what was done.

    ``model_and_tokenizer`` may be a zero-argument callable: it is called only when something is
    left to generate (a finished file loads no model). ``on_start(already_done, total)`` is called
    once, ``on_batch(lines_written, tokens)`` after each batch (progress bars). ``load`` says how
    the model was loaded (part of the replies' stamp).
    """
    store = generation_store(out, model_ref=model_ref, system_prompt=system_prompt, spec=spec, load=load, force=force)
    todo = set(store.start({record.id: record.text for record in inputs}))
    pending = [record for record in inputs if record.id in todo]
    if on_start is not None:
        on_start(len(inputs) - len(pending), len(inputs))
    start = time.perf_counter()
    written = tokens_total = 0
    size = spec.batch_size
    cut: dict[str, int] = {}
    if pending:
        model, tokenizer = model_and_tokenizer() if callable(model_and_tokenizer) else model_and_tokenizer
        if spec.threads:
            import torch

            torch.set_num_threads(spec.threads)
        window = model_window(model)
        if window and spec.max_new_tokens >= window:  # no room left for even one prompt token
            raise UserError(f"must be below {window}, the model's max_position_embeddings, got {spec.max_new_tokens}",
                            field="generation.max_new_tokens", fix=f"give --max-new-tokens={window // 2} or less")
        limit = window - spec.max_new_tokens if window else None
        fitted = {record.id: fit_prompt(tokenizer, system_prompt, record.text, limit) for record in pending}
        cut = {record_id: n for record_id, (_, n) in fitted.items() if n}
        encoded = [(record, fitted[record.id][0]) for record in pending]
        if spec.sort_by_length:
            # Longest first: batches of similar length waste little on padding, and an
            # out-of-memory failure (if any) shows up in the first batch rather than the last.
            encoded.sort(key=lambda pair: -len(pair[1]))
        was_training = getattr(model, "training", False)
        model.eval()
        try:
            offset = 0
            while offset < len(encoded):
                batch = encoded[offset : offset + size]
                ids = [record.id for record, _ in batch]
                try:
                    results = generate_batch(model, tokenizer, [p for _, p in batch], spec,
                                             seed=batch_seed(spec.seed, ids))
                except Exception as err:  # the largest batch that fits: halve on out-of-memory, retry
                    if len(batch) == 1 or not _is_out_of_memory(err):
                        raise
                    size = max(1, len(batch) // 2)
                    _release_accelerator_memory()
                    continue
                offset += len(batch)
                store.append({"id": record.id, "text": record.text, "prompt": prompt_name, "model": model_ref,
                              "response": response, "new_tokens": count,
                              **({"input_tokens_cut": cut[record.id]} if record.id in cut else {})}
                             for (record, _), (response, count) in zip(batch, results, strict=True))
                written += len(batch)
                batch_tokens = sum(count for _, count in results)
                tokens_total += batch_tokens
                if on_batch is not None:
                    on_batch(len(batch), batch_tokens)
        finally:
            if was_training:
                model.train()
    store.finish()
    return GenerationSummary(out=Path(out), total=len(inputs), already_done=len(inputs) - len(pending),
                             generated=written, new_tokens=tokens_total, seconds=time.perf_counter() - start,
                             torn_bytes=store.repaired_bytes, dropped_stale=store.dropped_stale,
                             truncated=len(cut), batch_size=size)


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))


def _release_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def read_generations(out: str | os.PathLike, inputs: Sequence[InputRecord] | None = None) -> list[dict[str, Any]]:
    """The records of a finished generation file (only those of ``inputs``, in their order, if given)."""
    from therapy_align.store import read_results

    records = read_results(out)
    if inputs is None:
        return records
    by_id = {str(r["id"]): r for r in records}
    return [by_id[record.id] for record in inputs if record.id in by_id]


def progress_bar(console=None, transient: bool = False):
    """The rich progress bar every long stage uses (inputs done, rate, time left)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=transient)


def run_generation(
    *,
    model_ref: str,
    prompt_name: str,
    system_prompt: str | None,
    inputs: Sequence[InputRecord],
    out: str | os.PathLike,
    spec: GenerationSpec = GenerationSpec(),
    force: bool = False,
    console=None,
    models: ModelCache | None = None,
    description: str | None = None,
) -> GenerationSummary:
    """:func:`generate_file` with a rich progress bar; the model comes from ``models`` (a
    :class:`ModelCache`, loaded only if something is left to generate)."""
    models = models or ModelCache()
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

        return generate_file(lambda: models.get(model_ref), inputs, out, model_ref=model_ref,
                             prompt_name=prompt_name, system_prompt=system_prompt, spec=spec, load=models.load,
                             force=force, on_start=on_start, on_batch=on_batch)
