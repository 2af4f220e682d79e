"""An output head over the tokens the project's corpora use: an inference-time option.

    with vocabulary_for(model, tokenizer, "corpora"):    # what generate_batch does for
        model.generate(...)                               # GenerationSpec(vocabulary="corpora")

A small model's output head dominates a CPU decoding step: Gemma 3 270M's tied head is 640 x
262,144, over 60% of the step's multiply-adds, while the counselling corpora (AnnoMI transcripts,
CounselChat, EPITOME, the Reddit evaluation inputs) use a small share of that vocabulary.
:class:`RestrictedHead` replaces ``lm_head`` with one that multiplies only the kept rows of its
weight and scatters them into a full-size logits tensor filled with ``-inf`` (the value
transformers' own warpers give a filtered-out token), so ``generate``, the logits processors, the
stop ids and decoding all stay in the full id space, unchanged.

What it promises: a kept token's logit is the full head's for that row (the same dot product of
the same hidden state with the same weight row), every other token's is ``-inf``. So greedy
decoding gives the full model's reply whenever the full model's argmax is a kept token at every
step (up to the last-bit rounding of a matrix product of another width, which can only matter
between near-tied logits), and sampling draws from the full distribution conditioned on the kept
tokens. A reply the full model would spell with a token the corpora never use comes out spelled
otherwise: the option trades that for speed and is off by default (``GenerationSpec.vocabulary``).

The kept ids (:func:`corpus_token_ids`) are the corpora's tokens under the given tokenizer, every
special and added token, the byte-fallback tokens (so any text stays spellable), the tokens of
every registered system prompt in the chat template, and (at install) the model's stop ids. They
are cached under :func:`therapy_align.paths.cache_dir`, keyed by a fingerprint of the tokenizer
and of the source files' bytes, and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from therapy_align.errors import UserError
from therapy_align.files import atomic_write_text, file_digest

__all__ = ["CORPORA", "RestrictedHead", "corpus_token_ids", "kept_ids", "restricted_head", "tokenizer_fingerprint",
           "vocabulary_for"]

# What the cached id lists are made by; a change to the recipe below bumps it, so old caches are redone.
RECIPE_VERSION = 1
CACHE_FOLDER = "vocabularies"
# Where a restricted head is remembered on a model (a plain attribute: neither a submodule nor a parameter,
# so it is not in the model's state dict and moves with nothing).
_HEADS = "_therapy_align_restricted_heads"


@dataclass(frozen=True)
class CorpusSource:
    """One data file (relative to the data directory) and the text columns (CSV) or field (JSONL) read."""

    relative: str
    columns: tuple[str, ...]


# The corpora the models are trained and evaluated on (../shared/README.md): every text column, all splits.
CORPORA: dict[str, tuple[CorpusSource, ...]] = {
    "annomi": (CorpusSource("annomi/AnnoMI-full.csv", ("utterance_text",)),),
    "counselchat": (CorpusSource("counsel_chat/counsel_chat.csv", ("questionTitle", "questionText", "answerText")),),
    "epitome": tuple(CorpusSource(f"epitome/{name}-reddit.csv", ("seeker_post", "response_post"))
                     for name in ("emotional-reactions", "interpretations", "explorations")),
    "reddit_eval_inputs": (CorpusSource("eval_inputs/reddit_mental_health_1000.jsonl", ("text",)),),
}


# --------------------------------------------------------------------------------------------
# Which ids are kept
# --------------------------------------------------------------------------------------------


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what decides the ids a text gets: the tokenizer's class, its full serialisation
    (vocabulary, merges, normaliser, pre-tokeniser) or else its vocabulary, its added and special
    tokens and its chat template."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode("utf-8"))
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])).encode("utf-8"))
    digest.update(json.dumps({"added": sorted(tokenizer.get_added_vocab().items(), key=lambda kv: kv[1]),
                              "special": {k: str(v) for k, v in tokenizer.special_tokens_map.items()},
                              "template": tokenizer.chat_template or "", "size": len(tokenizer)},
                             sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:20]


def _source_paths(data_dir: str | os.PathLike | None) -> list[Path]:
    from therapy_align.paths import data_file

    return [data_file(source.relative, data_dir) for sources in CORPORA.values() for source in sources]


def _corpus_texts(data_dir: str | os.PathLike | None) -> Iterator[str]:
    from therapy_align.data.transcripts import read_csv_strict
    from therapy_align.evaluation.generation import read_inputs
    from therapy_align.paths import data_file

    for name, sources in CORPORA.items():
        for source in sources:
            path = data_file(source.relative, data_dir)
            if path.suffix == ".jsonl":  # the evaluation inputs, read as generation reads them
                yield from (record.text for record in read_inputs(path).records)
                continue
            frame = read_csv_strict(path, source.columns, what=name)
            for column in source.columns:
                yield from (text for text in frame[column].tolist() if text.strip())


def _template_texts(tokenizer) -> list[str]:
    """The chat template's own text around every registered system prompt (a prompt and a reply)."""
    from therapy_align.data.chat_format import render_text
    from therapy_align.data.system_prompts import SYSTEM_PROMPTS

    texts = []
    for system in [None, *SYSTEM_PROMPTS.values()]:
        messages = [] if system is None else [{"role": "system", "content": system}]
        messages += [{"role": "user", "content": "I feel low."}, {"role": "assistant", "content": "I hear you."}]
        texts.append(render_text(messages, tokenizer)[0])
    return texts


def _always_kept(tokenizer) -> set[int]:
    """Special and added tokens, and the byte-fallback tokens (``<0x00>`` ... ``<0xFF>``)."""
    ids = {int(i) for i in tokenizer.all_special_ids}
    ids.update(int(i) for i in tokenizer.get_added_vocab().values())
    ids.update(int(i) for token, i in tokenizer.get_vocab().items()
               if len(token) == 6 and token.startswith("<0x") and token.endswith(">"))
    return ids


def corpus_token_ids(tokenizer, *, data_dir: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                     refresh: bool = False) -> list[int]:
    """The sorted token ids the corpora use under ``tokenizer`` (each text tokenized alone, without
    added special tokens), with every special, added and byte-fallback token and the chat
    template's tokens around every system prompt.

    Cached in ``cache`` (default ``cache_dir()/vocabularies``) as one JSON file per tokenizer
    fingerprint; the file also records the digests of the source files, and is remade when they
    differ (or with ``refresh``)."""
    from therapy_align.paths import cache_dir

    folder = Path(cache) if cache is not None else cache_dir() / CACHE_FOLDER
    fingerprint = tokenizer_fingerprint(tokenizer)
    sources = {str(path.name): file_digest(path) for path in _source_paths(data_dir)}
    path = folder / f"corpora-{fingerprint}.json"
    if path.is_file() and not refresh:
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable: remade below
            cached = {}
        if cached.get("recipe") == RECIPE_VERSION and cached.get("sources") == sources and cached.get("ids"):
            return [int(i) for i in cached["ids"]]
    ids = _always_kept(tokenizer)
    texts = [*_corpus_texts(data_dir), *_template_texts(tokenizer)]
    for offset in range(0, len(texts), 1024):
        for row in tokenizer(texts[offset : offset + 1024], add_special_tokens=False)["input_ids"]:
            ids.update(row)
    kept = sorted(i for i in ids if 0 <= i < len(tokenizer))
    atomic_write_text(path, json.dumps({"recipe": RECIPE_VERSION, "tokenizer": fingerprint,
                                        "tokenizer_class": type(tokenizer).__name__, "vocabulary": len(tokenizer),
                                        "sources": sources, "kept": len(kept), "ids": kept}) + "\n")
    return kept


def kept_ids(model, tokenizer, vocabulary: str = "corpora", **options: Any) -> list[int]:
    """The ids a ``vocabulary`` keeps for ``model`` (``"corpora"``: :func:`corpus_token_ids` and the
    model's stop ids, which end a reply whatever the corpora hold)."""
    from therapy_align.evaluation.generation import stop_ids

    if vocabulary != "corpora":
        raise UserError(f"no restricted vocabulary named {vocabulary!r}", field="generation.vocabulary",
                        fix="use 'full' or 'corpora'")
    return sorted(set(corpus_token_ids(tokenizer, **options)) | set(stop_ids(model, tokenizer)))


# --------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------


class RestrictedHead(nn.Module):
    """An output head computing logits only for ``kept`` ids, the others ``-inf``.

    ``weight`` (and ``bias``) stay the full head's own parameters (tied with the input embedding
    where the model ties them), so the model's parameters and state dict are unchanged; the kept
    rows are copied once into ``kept_weight``, as slicing 40k rows out of 262k at every step
    would cost what the smaller product saves. :meth:`is_stale` tells when the full weight has
    changed since (an optimiser step), so a cached head is rebuilt rather than used stale.
    """

    def __init__(self, full: nn.Linear, kept: Sequence[int] | torch.Tensor) -> None:
        super().__init__()
        weight = full.weight
        if not weight.dtype.is_floating_point:
            raise ValueError(f"a restricted head needs a floating-point head weight, got {weight.dtype}")
        kept = torch.as_tensor(kept, dtype=torch.long, device=weight.device).unique(sorted=True)
        vocab = weight.shape[0]
        if kept.numel() == 0 or int(kept[0]) < 0 or int(kept[-1]) >= vocab:
            raise ValueError(f"kept ids must be a non-empty set within the head's {vocab} rows")
        self.in_features, self.out_features = full.in_features, full.out_features
        self.weight = weight
        self.bias = full.bias
        self.register_buffer("kept", kept, persistent=False)
        self.register_buffer("kept_weight", weight.detach()[kept].clone(), persistent=False)
        self.register_buffer("kept_bias", None if full.bias is None else full.bias.detach()[kept].clone(),
                             persistent=False)
        # The head it replaces, out of the module tree (its parameters are ``weight`` and ``bias`` already)
        self.__dict__["full"] = full
        self._made_from = (weight.data_ptr(), weight._version)

    def is_stale(self) -> bool:
        """Whether the full weight was replaced or changed in place since the kept rows were copied."""
        return (self.weight.data_ptr(), self.weight._version) != self._made_from

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        kept_logits = nn.functional.linear(hidden_states, self.kept_weight, self.kept_bias)
        logits = kept_logits.new_full((*kept_logits.shape[:-1], self.out_features), -float("inf"))
        return logits.index_copy_(-1, self.kept, kept_logits)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kept={self.kept.numel()}"


def _refill_after_softcap(head: RestrictedHead):
    """A forward hook putting ``-inf`` back on the dropped ids after ``final_logit_softcapping``
    (``cap * tanh(-inf / cap)`` is ``-cap``, which would leave the dropped tokens some probability)."""
    dropped = torch.ones(head.out_features, dtype=torch.bool, device=head.kept.device)
    dropped[head.kept] = False

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        logits = getattr(output, "logits", None)
        if logits is not None and module.get_output_embeddings() is head:
            logits.masked_fill_(dropped.to(logits.device), -float("inf"))
        return output

    return hook


def restricted_head(model, tokenizer, vocabulary: str = "corpora", **options: Any) -> RestrictedHead:
    """The model's :class:`RestrictedHead` for ``vocabulary``, made on first use and remembered on
    the model (remade when the head's weight has changed since)."""
    heads: dict[str, RestrictedHead] = model.__dict__.setdefault(_HEADS, {})
    head = heads.get(vocabulary)
    full = model.get_output_embeddings()
    if isinstance(full, RestrictedHead):
        full = full.full
    if head is None or head.is_stale() or head.full is not full:
        if not isinstance(full, nn.Linear):
            raise UserError(f"the model's output head is a {type(full).__name__}, not a linear layer",
                            field="generation.vocabulary", fix="generate with --generation.vocabulary=full")
        head = heads[vocabulary] = RestrictedHead(full, kept_ids(model, tokenizer, vocabulary, **options))
    return head


@contextmanager
def vocabulary_for(model, tokenizer, vocabulary: str = "full", **options: Any) -> Iterator[Any]:
    """Within the block the model's output head is ``vocabulary``'s (``"full"``: as loaded;
    ``"corpora"``: :func:`restricted_head`); the loaded head is back afterwards, so scoring or
    training with the same model never sees the restricted logits."""
    if vocabulary == "full":
        yield model
        return
    head = restricted_head(model, tokenizer, vocabulary, **options)
    full = head.full
    config = getattr(model, "config", None)
    cap = getattr(getattr(config, "get_text_config", lambda: config)(), "final_logit_softcapping", None)
    hook = model.register_forward_hook(_refill_after_softcap(head)) if cap is not None else None
    model.set_output_embeddings(head)
    try:
        yield model
    finally:
        model.set_output_embeddings(full)
        if hook is not None:
            hook.remove()

