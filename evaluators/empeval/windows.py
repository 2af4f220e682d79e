"""Whole replies: the views of a (seeker, response) pair that the evaluator reads, and how their
levels are combined.

A pair that fits `max_length` tokens is read whole, exactly as in training. A longer pair whose
response still fits beside the seeker post cut to half the window is read once, truncated
`longest_first` as in training (only the seeker post loses tokens). Otherwise the response is
cut into overlapping windows (half a window of overlap, so any sentence up to half a window long
lies whole inside one window), each read together with the seeker post cut to its first
`max_length // 2` tokens.

Combination, per mechanism: the view with the highest level (after the decision offsets), ties
broken by the higher expected level; its probabilities are reported. EPITOME labels a reply by
whether any part of it communicates the mechanism (its rationales are sub-spans), so a mechanism
communicated in one window is communicated by the reply. Max (not mean) also means that
repeating a sentence or padding a reply with neutral text neither adds nor dilutes credit; the
cost is a mild bias towards long replies (more windows, more chances), which the probe suite
measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase

from empeval.datamodule import encode_pairs


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Special tokens the tokenizer adds around a sentence pair ([CLS] a [SEP] b [SEP]: 3)."""
    with_special = len(tokenizer("a", "b")["input_ids"])
    without = len(tokenizer("a", add_special_tokens=False)["input_ids"]) + len(
        tokenizer("b", add_special_tokens=False)["input_ids"]
    )
    return with_special - without


def encode_views(
    tokenizer: PreTrainedTokenizerBase, seekers: Sequence[str], responses: Sequence[str], max_length: int,
    *, spans: bool = False,
):
    """(features of every view, index of the pair each view belongs to), pairs in input order.

    With `spans`, also each view's (start, end) character span of its response: the whole
    response for a pair read in one view, the window's part of it otherwise (what the fits-the-post
    gate compares with the post, so that a late window is judged on its own text)."""
    seekers, responses = list(seekers), list(responses)
    features = encode_pairs(tokenizer, seekers, responses, max_length)
    budget = max_length - _special_tokens(tokenizer)
    seeker_cap = budget // 2
    # Whole texts on purpose (the windows below cut them); verbose=False drops transformers'
    # "longer than the maximum ... indexing errors" warning, which does not apply here.
    seeker_tokens = tokenizer(seekers, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    response_lengths = [len(ids) for ids in tokenizer(responses, add_special_tokens=False, verbose=False)["input_ids"]]
    views: list[dict[str, list[int]]] = []
    owners: list[int] = []
    view_spans: list[tuple[int, int]] = []
    for i, feature in enumerate(features):
        n_seeker = len(seeker_tokens["input_ids"][i])
        if response_lengths[i] <= budget - min(n_seeker, seeker_cap):
            views.append(feature)  # whole, or only the seeker post truncated: the training view
            owners.append(i)
            view_spans.append((0, len(responses[i])))
            continue
        seeker = seekers[i]
        if n_seeker > seeker_cap:
            seeker = seeker[: seeker_tokens["offset_mapping"][i][seeker_cap - 1][1]]
        window = budget - min(n_seeker, seeker_cap)
        encoded = tokenizer(
            seeker, responses[i], truncation="only_second", max_length=max_length,
            stride=window // 2, return_overflowing_tokens=True, padding=False, return_offsets_mapping=spans,
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        for w in range(len(encoded["input_ids"])):
            views.append({k: encoded[k][w] for k in keys})
            owners.append(i)
            if spans:  # the response's tokens are those of sequence 1; their offsets are in the response
                offsets = [o for o, part in zip(encoded["offset_mapping"][w], encoded.sequence_ids(w)) if part == 1]
                view_spans.append((offsets[0][0], offsets[-1][1]) if offsets else (0, 0))
    return (views, owners, view_spans) if spans else (views, owners)


def combine_views(
    adjusted_logits: np.ndarray, owners: Sequence[int], n_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the (levels, probabilities) of the view with the highest level (ties: highest
    expected level). `adjusted_logits` is (views, levels) with decision offsets already added."""
    shifted = adjusted_logits - adjusted_logits.max(-1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(-1, keepdims=True)
    levels = probabilities.argmax(-1)
    key = levels + probabilities @ np.arange(probabilities.shape[-1]) / (probabilities.shape[-1] + 1.0)
    best = np.full(n_pairs, -1, dtype=np.int64)
    best_key = np.full(n_pairs, -np.inf)
    for view, owner in enumerate(owners):
        if key[view] > best_key[owner]:
            best[owner], best_key[owner] = view, key[view]
    return levels[best], probabilities[best]
