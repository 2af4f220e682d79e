"""Which tokens carry loss: the assistant-only mask of paper §4.

The paper trains a causal LM to produce the therapist's words while still *reading* the client's:
every token stays in ``input_ids`` (so attention sees the whole dialogue), but only therapist
tokens get a label. Everything else is labelled ``-100``, the ``ignore_index`` of PyTorch's
cross-entropy, so it contributes neither to the loss nor to its normalisation.

What counts as "therapist tokens" is decided on characters, not tokens: the renderer records the
character span of each reply (``" {reply} </s>"``, so the model also learns to stop), and a token
is supervised when its character span overlaps a reply span. Deciding on characters makes the
mask independent of how SentencePiece happens to merge the space before a reply, and is the same
rule transformers uses for ``return_assistant_tokens_mask`` with ``{% generation %}`` markers,
which is what TRL's ``assistant_only_loss`` reads. The two are compared in the tests.

These functions are pure: lists in, lists out.
"""

from __future__ import annotations

from collections.abc import Sequence

IGNORE_INDEX = -100


def token_mask_from_char_spans(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """1 for each token whose character range ``[start, end)`` overlaps one of ``spans``, else 0.

    Zero-width tokens (``start == end``) are supervised when their position lies inside a span.
    ``spans`` must be sorted and non-overlapping, as the renderer produces them.
    """
    mask = [0] * len(offsets)
    span_index = 0
    for token_index, (start, end) in enumerate(offsets):
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        if span_index == len(spans):
            break
        span_start, span_end = spans[span_index]
        if start < span_end and (end > span_start if end > start else start >= span_start):
            mask[token_index] = 1
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
