"""Which tokens carry loss: the assistant-only mask of paper §4.

The paper trains a causal LM to produce the therapist's words while still *reading* the client's:
every token stays in ``input_ids`` (so attention sees the whole dialogue), but only therapist
tokens get a label. Everything else is labelled ``-100``, the ``ignore_index`` of PyTorch's
cross-entropy, so it contributes neither to the loss nor to its normalisation.

What counts as "therapist tokens" is decided on characters, not tokens: the chat template's
``{% generation %}`` blocks give the character span of each reply with its closing token, so the
model also learns to stop (Llama-2: ``" {reply} </s>"``; Gemma: ``"{reply}<end_of_turn>"``), and a
token is supervised when its character span overlaps a reply span. Deciding on characters makes
the mask independent of how the tokenizer happens to merge the space before a reply, and is the
same rule transformers uses for ``return_assistant_tokens_mask``, which is what TRL's
``assistant_only_loss`` reads. The two are compared in the tests, for both families.

These functions are pure: lists in, lists out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

IGNORE_INDEX = -100


def token_mask_from_char_spans(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """1 for each token whose character range ``[start, end)`` overlaps one of ``spans``, else 0.

    A zero-width token (``start == end``) is supervised when its position lies inside a span.
    ``offsets`` come from one tokenization (non-decreasing), and ``spans`` are sorted and
    disjoint, as the renderer produces them; each span costs two binary searches.
    """
    mask = [0] * len(offsets)
    starts = [start for start, _ in offsets]
    ends = [end for _, end in offsets]
    for span_start, span_end in spans:
        first = bisect_right(ends, span_start)  # first token ending after the span starts
        while first > 0 and starts[first - 1] == ends[first - 1] >= span_start:
            first -= 1  # zero-width tokens right at the span's start
        stop = bisect_left(starts, span_end)  # first token starting at or after the span's end
        for index in range(first, stop):
            mask[index] = 1
    return mask


def labels_from_mask(input_ids: Sequence[int], mask: Sequence[int]) -> list[int]:
    """The ``labels`` column: the input id where ``mask`` is 1, ``IGNORE_INDEX`` elsewhere.

    Labels are *not* shifted: Hugging Face causal LMs shift inside the loss.
    """
    if len(input_ids) != len(mask):
        raise ValueError(f"input_ids ({len(input_ids)}) and mask ({len(mask)}) differ in length")
    return [token if keep else IGNORE_INDEX for token, keep in zip(input_ids, mask, strict=True)]


def supervised_ids(input_ids: Sequence[int], labels: Sequence[int]) -> list[int]:
    """The ids that carry loss, in order."""
    return [token for token, label in zip(input_ids, labels, strict=True) if label != IGNORE_INDEX]
