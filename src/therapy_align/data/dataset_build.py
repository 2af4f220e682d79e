"""AnnoMI (+ the user's own sessions, + CounselChat) -> chat SFT data with masked labels, in the
target model's chat format (Llama-2's by default).

The pipeline of paper §2.2.1 and §4, one pure step per module:
``transcripts`` (read) -> ``cleaning`` (asides, backchannels, merge) -> ``chunking`` (fit the
context, split between exchanges) -> ``chat_format`` (render, tokenize) -> ``masking`` (labels).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # datasets loads in build_dataset: recipes import BuildConfig cheaply
    from datasets import DatasetDict

from therapy_align.errors import UserError
from therapy_align.overrides import ConfigError
from therapy_align.data.chat_format import Message, has_generation_markers, load_tokenizer, render_continuation, render_text
from therapy_align.data.chunking import plan_chunks
from therapy_align.data.cleaning import OPENER_POLICIES, CleaningConfig, Exchange, clean_turns, to_exchanges
from therapy_align.data.masking import IGNORE_INDEX, labels_from_mask, token_mask_from_char_spans
from therapy_align.data.splits import SPLITS, TRAIN_FRACTION, split_transcript_ids
from therapy_align.data.system_prompts import get_system_prompt
from therapy_align.data.transcripts import (
    ANNOMI_FILES,
    Transcript,
    load_annomi,
    load_counselchat,
    load_plain_transcript,
)

HIGH_QUALITY = "high"  # paper §1: "We used only the good conversations to train our model"
# No real system prompt plus one exchange fits in fewer tokens; the exact floor (system prompt +
# template) is checked against the tokenizer in build_dataset.
MIN_MAX_TOKENS = 64


class BuildConfigError(ConfigError):
    """A data-build setting out of range, or an input that yields no data."""


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    split: str = "annomi80"  # "annomi80" (paper's 80% model) or "full_plus" (100% + extra sessions)
    data_dir: str | None = None
    tokenizer: str | None = None
    max_tokens: int = 4096  # §3: Llama-2's 4096-token context (§2.2.1 also says 4000)
    system_prompt: str = "standard"  # §4: the standard Llama-2 system prompt was used in training
    extra_transcripts: tuple[str, ...] = ()  # §2.2.1: "+2 conversations", plain-text files
    include_counselchat: bool = False  # not in the paper: more diverse single-turn data
    train_fraction: float = TRAIN_FRACTION
    seed: int = 0  # the paper does not give its split; seeded here so it can be repeated
    annomi_variant: str = "full"
    opener_policy: str = "neutral_opener"
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    lenient: bool = False

    def __post_init__(self) -> None:
        """Every setting is checked here, before anything is read or loaded."""
        if self.split not in SPLITS:
            raise BuildConfigError(f"unknown split {self.split!r}", field="split", fix=f"choose {' or '.join(SPLITS)}")
        if self.opener_policy not in OPENER_POLICIES:
            raise BuildConfigError(f"unknown opener policy {self.opener_policy!r}", field="opener_policy",
                                   fix=f"choose {' or '.join(OPENER_POLICIES)}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < MIN_MAX_TOKENS:
            raise BuildConfigError(f"{self.max_tokens} is too small", field="max_tokens",
                                   fix=f"give at least {MIN_MAX_TOKENS} tokens (Llama-2's context is 4096)")
        if not 0 < self.train_fraction < 1:
            raise BuildConfigError(f"{self.train_fraction} is not a fraction", field="train_fraction",
                                   fix="give a number between 0 and 1 (exclusive)")
        if self.annomi_variant not in ANNOMI_FILES:
            raise BuildConfigError(f"unknown AnnoMI variant {self.annomi_variant!r}", field="annomi_variant",
                                   fix=f"choose {' or '.join(ANNOMI_FILES)}")
        if self.split != "full_plus" and (self.extra_transcripts or self.include_counselchat):
            raise BuildConfigError("extra transcripts and CounselChat go into the full_plus split only",
                                   field="extra_transcripts" if self.extra_transcripts else "include_counselchat",
                                   fix="use --split full_plus")
        seen: dict[Path, str] = {}
        for path in self.extra_transcripts:
            key = Path(path).expanduser().resolve()
            if key in seen:
                raise BuildConfigError(f"given twice ({seen[key]} and {path})", file=path, field="extra_transcripts",
                                       fix="give each extra transcript once")
            seen[key] = path


def build_dataset(config: BuildConfig, tokenizer=None, *, cache: dict | None = None) -> tuple[DatasetDict, dict]:
    """A ``DatasetDict`` with ``train`` and ``heldout`` splits, and the build's statistics.

    ``heldout`` is always the seeded 20% of high-quality transcripts outside ``annomi80``; for
    ``full_plus`` they are part of ``train`` as well (stats say so). Pass the same ``cache`` dict
    to builds that differ only in ``split`` to clean and tokenize each transcript once.
    """
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer)
    system_prompt = get_system_prompt(config.system_prompt)
    check_chat_template(tokenizer)
    check_fits_system_prompt(tokenizer, system_prompt, config.max_tokens)
    extras = [(path, load_plain_transcript(path)) for path in config.extra_transcripts]  # bad files fail first
    _check_unique_ids(extras)
    builder = _ChunkBuilder(tokenizer, system_prompt, config, {} if cache is None else cache)
    for path, transcript in extras:  # cached: built once, reused below
        if not builder.rows([transcript], Counter()):
            raise BuildConfigError(f"yields no usable exchange ({builder.why_empty(transcript)})", file=path,
                                   field="extra_transcripts",
                                   fix="a session needs at least one client message answered by the therapist")
    annomi, read_report = load_annomi(config.data_dir, variant=config.annomi_variant, lenient=config.lenient)
    high = {t.transcript_id: t for t in annomi if t.quality == HIGH_QUALITY}
    if not high:
        qualities = Counter(t.quality for t in annomi)
        raise BuildConfigError(
            f"no transcript has mi_quality {HIGH_QUALITY!r} (found {', '.join(f'{q}: {n}' for q, n in qualities.items())})",
            file=_annomi_path(config), field="mi_quality", fix="the paper trains on high-quality sessions only")
    train_ids, heldout_ids = split_transcript_ids(high, fraction=config.train_fraction, seed=config.seed)

    train: list[Transcript] = [high[i] for i in (train_ids if config.split == "annomi80" else sorted(high, key=int))]
    stats: Counter = Counter()
    if config.split == "full_plus":
        train += [transcript for _, transcript in extras]
        if config.include_counselchat:
            counselchat, skipped = load_counselchat(config.data_dir)
            train += counselchat
            stats.update(skipped)

    splits = {"train": builder.rows(train, stats), "heldout": builder.rows([high[i] for i in heldout_ids], Counter())}
    used = {row["conversation_id"] for rows in splits.values() for row in rows}
    if not splits["train"]:
        raise BuildConfigError(f"the build yields no training rows from {len(train)} transcript(s)",
                               file=_annomi_path(config),
                               fix="check the input files and --max-tokens (stats of a lenient build name the drops)")
    from datasets import Dataset, DatasetDict

    features = Dataset.from_list(splits["train"]).features
    dataset = DatasetDict({name: Dataset.from_list(rows, features=features) for name, rows in splits.items()})
    unused = [t.transcript_id for t in train if _conversation_id(t) not in used]
    heldout_used = [i for i in heldout_ids if _conversation_id(high[i]) in used]

    train_rows = splits["train"]
    summary = {
        "split": config.split,
        "transcripts_in": len(annomi),
        "transcripts_high_quality": len(high),
        "transcripts_low_quality": len(annomi) - len(high),
        "transcripts_used": len({row["conversation_id"] for row in train_rows}),
        "transcripts_without_usable_exchange": list(dict.fromkeys(unused + [i for i in heldout_ids if i not in heldout_used])),
        "conversations_by_source": dict(Counter(row["source"] for row in train_rows if row["chunk_index"] == 0)),
        "chunks": len(train_rows),
        "heldout_transcripts": len(heldout_ids),
        "heldout_chunks": len(splits["heldout"]),
        "heldout_in_train": config.split == "full_plus",
        "annomi_rows_in": read_report.rows_in,
        "annomi_duplicate_rows_removed": read_report.duplicate_rows_removed,
        "utterances_in": sum(len(t.turns) for t in train),
        "utterances_dropped": {
            reason: stats[reason]
            for reason in ("therapist_backchannel", "empty_after_cleaning", "trailing_client_turn", *read_report.skipped)
        }
        | {reason: count for reason, count in read_report.skipped.items()},
        "utterances_with_asides_removed": stats["asides_removed"],
        "utterances_merged_same_speaker": stats["merged_same_speaker"],
        "therapist_first_transcripts": stats["therapist_first"],
        "opener_policy": config.opener_policy,
        "exchanges": stats["exchanges"],
        "tokens": sum(row["num_tokens"] for row in train_rows),
        "supervised_tokens": sum(row["num_supervised"] for row in train_rows),
        "max_chunk_tokens": max((row["num_tokens"] for row in train_rows), default=0),
        "max_tokens": config.max_tokens,
        "oversize_exchanges": {"trimmed": stats["oversize_trimmed"], "dropped": stats["oversize_dropped"]},
        "counselchat_skipped_empty": stats["counselchat_empty"],
        "config": _jsonable(asdict(config)),
    }
    summary["split_ids"] = {"train": [t.transcript_id for t in train if t.transcript_id not in unused],
                            "heldout": heldout_used}
    return dataset, summary


def _conversation_id(transcript: Transcript) -> str:
    return f"{transcript.source}-{transcript.transcript_id}"


def _annomi_path(config: BuildConfig) -> str:
    try:
        from therapy_align.paths import resolve_data_dir

        return str(resolve_data_dir(config.data_dir) / ANNOMI_FILES[config.annomi_variant])
    except UserError:
        return ANNOMI_FILES[config.annomi_variant]


def _check_unique_ids(extras: list[tuple[str, Transcript]]) -> None:
    seen: dict[str, str] = {}
    for path, transcript in extras:
        if transcript.transcript_id in seen:
            raise BuildConfigError(f"transcript id {transcript.transcript_id!r} is also the id of {seen[transcript.transcript_id]}",
                                   file=path, field="# id", fix="give each session its own '# id: ...' line")
        seen[transcript.transcript_id] = path


def check_chat_template(tokenizer) -> None:
    """Refuse, before any data is read, a chat template the builder cannot use: one without
    ``{% generation %}`` markers (no way to tell the assistant's tokens), or one whose turns do not
    tokenize the same alone as inside a conversation (chunks are assembled from exchanges)."""
    source = getattr(tokenizer, "name_or_path", None) or None
    if not has_generation_markers(tokenizer.chat_template):
        raise UserError("the tokenizer's chat template has no {% generation %} markers, so the assistant's tokens "
                        "cannot be told from the rest", file=source, field="tokenizer",
                        fix="give a template that wraps each assistant reply in {% generation %}...{% endgeneration %}")
    first = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel low."},
             {"role": "assistant", "content": "Tell me more."}]
    later = [{"role": "user", "content": "Work, mostly."}, {"role": "assistant", "content": "Work weighs on you."}]
    whole = render_text(first + later, tokenizer)[0]
    try:
        pieces = [render_text(first, tokenizer)[0], render_continuation(first, later, tokenizer)[0]]
    except ValueError:  # the first turns render differently once more follow
        pieces = []
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    if not pieces or encode(pieces[0]) + encode(pieces[1]) != encode(whole):
        raise UserError("the tokenizer's chat template does not tokenize a turn the same alone as inside a "
                        "conversation, so long conversations cannot be chunked between exchanges", file=source,
                        field="tokenizer", fix="use a template whose turns open with a special token")


def check_fits_system_prompt(tokenizer, system_prompt: str, max_tokens: int) -> int:
    """The tokens of the system prompt and the chat template around one empty exchange; an error
    (before any data is read) when ``max_tokens`` leaves no room for an exchange."""
    messages: list[Message] = [{"role": "system", "content": system_prompt}, {"role": "user", "content": "Hi."},
                               {"role": "assistant", "content": "Hello."}]
    text, _ = render_text(messages, tokenizer)
    floor = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    if max_tokens < floor:
        raise BuildConfigError(
            f"{max_tokens} is smaller than the system prompt and chat template with a two-word exchange ({floor} tokens)",
            field="max_tokens", fix=f"give at least {floor} (Llama-2's context is 4096), or a shorter --system-prompt")
    return floor


class _ChunkBuilder:
    """Cleans, chunks and tokenizes transcripts into dataset rows."""

    def __init__(self, tokenizer, system_prompt: str, config: BuildConfig, cache: dict):
        self.tokenizer, self.system_prompt, self.config = tokenizer, system_prompt, config
        # Rows depend on everything but the split: key on the rest, so a shared cache stays valid.
        settings = (tokenizer.name_or_path, tokenizer.chat_template, system_prompt, config.max_tokens, config.opener_policy, config.cleaning)
        self.cache = cache.setdefault(settings, {})

    def rows(self, transcripts: list[Transcript], stats: Counter) -> list[dict]:
        rows = []
        for transcript in transcripts:
            if transcript not in self.cache:
                counts: Counter = Counter()
                turns, removed = clean_turns(list(transcript.turns), self.config.cleaning)
                exchanges, opened = to_exchanges(turns, opener_policy=self.config.opener_policy)
                counts.update(removed)
                counts.update(opened)
                counts["exchanges"] += len(exchanges)
                self.cache[transcript] = (self._chunk_rows(transcript, exchanges, counts), counts)
            transcript_rows, counts = self.cache[transcript]
            stats.update(counts)
            rows += transcript_rows
        return rows

    def why_empty(self, transcript: Transcript) -> str:
        """Why ``transcript`` gave no rows, in words (for the error that refuses it)."""
        turns, removed = clean_turns(list(transcript.turns), self.config.cleaning)
        speakers = Counter(turn.speaker for turn in turns)
        dropped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in removed.items()
                            if reason in ("therapist_backchannel", "empty_after_cleaning"))
        _, counts = self.cache.get(transcript, ((), Counter()))
        if counts.get("oversize_dropped"):
            return f"{counts['oversize_dropped']} exchange(s) too long for max_tokens={self.config.max_tokens}"
        return (f"{speakers['client']} client and {speakers['therapist']} therapist turn(s) after cleaning"
                + (f"; dropped {dropped}" if dropped else ""))

    def _encode(self, exchanges: list[Exchange], first: bool) -> list[tuple[list[int], list[int]]]:
        """(ids, labels) of each exchange as a chunk opener (a conversation of its own, system
        prompt included) or as the template renders it after earlier turns. A chunk's encoding is
        the concatenation of its exchanges' (each turn opens with a special token, which the
        tokenizer never merges across: ``check_chat_template``), which the tests check against
        tokenizing the whole chunk."""
        if first:
            rendered = [render_text(self._messages([e]), self.tokenizer) for e in exchanges]
        else:
            context = self._messages([Exchange("Hi.", "Hello.")])
            rendered = [render_continuation(context, self._messages([e], False), self.tokenizer) for e in exchanges]
        if not rendered:
            return []
        encoded = self.tokenizer([text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True)
        return [
            (ids, labels_from_mask(ids, token_mask_from_char_spans(offsets, spans)))
            for ids, offsets, (_, spans) in zip(encoded["input_ids"], encoded["offset_mapping"], rendered, strict=True)
        ]

    def _lengths(self, exchanges: list[Exchange], first: bool) -> list[int]:
        return [len(ids) for ids, _ in self._encode(exchanges, first)]

    def _messages(self, exchanges: list[Exchange], with_system: bool = True) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": self.system_prompt}] if with_system else []
        for exchange in exchanges:
            messages += [{"role": "user", "content": exchange.client}, {"role": "assistant", "content": exchange.therapist}]
        return messages

    def _fit(self, exchange: Exchange) -> Exchange | None:
        """The exchange with the fewest client words removed from the left so that it fits as a
        chunk opener; None when even the reply alone does not fit."""
        words = exchange.client.split()
        fits = lambda keep: self._lengths([Exchange(" ".join(words[len(words) - keep:]) or "…", exchange.therapist)], True)[0] <= self.config.max_tokens  # noqa: E731
        if not fits(0):
            return None
        low, high = 0, len(words)  # fits(low) holds, fits(high) does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return Exchange(" ".join(words[len(words) - low:]) or "…", exchange.therapist)

    def _chunk_rows(self, transcript: Transcript, exchanges: list[Exchange], stats: Counter) -> list[dict]:
        first, later = self._encode(exchanges, True), self._encode(exchanges, False)
        oversize = plan_chunks([len(ids) for ids, _ in first], [len(ids) for ids, _ in later], self.config.max_tokens).oversize
        for index in oversize:
            fitted = self._fit(exchanges[index])
            stats["oversize_trimmed" if fitted else "oversize_dropped"] += 1
            exchanges[index] = fitted
            if fitted is not None:
                first[index], later[index] = self._encode([fitted], True)[0], self._encode([fitted], False)[0]
        kept = [i for i, e in enumerate(exchanges) if e is not None]
        exchanges, first, later = [exchanges[i] for i in kept], [first[i] for i in kept], [later[i] for i in kept]
        plan = plan_chunks([len(ids) for ids, _ in first], [len(ids) for ids, _ in later], self.config.max_tokens)
        assert not plan.oversize, "trimmed exchanges must fit"
        rows = []
        for chunk_index, chunk in enumerate(plan.chunks):
            parts = [first[chunk[0]]] + [later[i] for i in chunk[1:]]
            input_ids = [token for ids, _ in parts for token in ids]
            labels = [label for _, part_labels in parts for label in part_labels]
            rows.append(
                {
                    "conversation_id": f"{transcript.source}-{transcript.transcript_id}",
                    "chunk_index": chunk_index,
                    "topic": transcript.topic,
                    "source": transcript.source,
                    "messages": self._messages([exchanges[i] for i in chunk]),
                    "input_ids": input_ids,
                    "labels": labels,
                    "num_tokens": len(input_ids),
                    "num_supervised": sum(label != IGNORE_INDEX for label in labels),
                }
            )
        return rows


def save_dataset(dataset: DatasetDict, stats: dict, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write the dataset, ``stats.json`` and ``split.json`` to ``out``, which appears only when
    complete (built in a temporary sibling directory, then renamed)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        dataset.save_to_disk(str(tmp))
        split_ids = stats["split_ids"]
        (tmp / "split.json").write_text(json.dumps(split_ids, indent=1) + "\n")
        (tmp / "stats.json").write_text(json.dumps({k: v for k, v in stats.items() if k != "split_ids"}, indent=2) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, (frozenset, set)) else items
    return value


def chunk_transcript(
    transcript: Transcript, tokenizer, *, system_prompt: str, config: BuildConfig | None = None
) -> tuple[list[dict], Counter]:
    """One transcript's dataset rows (cleaned, chunked, tokenized, labelled) and what was removed."""
    stats: Counter = Counter()
    rows = _ChunkBuilder(tokenizer, system_prompt, config or BuildConfig(), {}).rows([transcript], stats)
    return rows, stats
