"""Splitting long conversations into chunks that fit the context window (paper §2.2.1).

The paper builds conversations "in the length of 4000 tokens (the amount Llama2 can take as an
input)"; longer ones are "split into parts, each one as a different conversation", and where the
limit falls inside an exchange, "we removed the client's answer and the therapist's response to
the next conversation": a chunk boundary only ever falls *between* exchanges (a client message
and the therapist's reply). The limit is configuration (4096 by default, Llama-2's context; the
paper also says 4000).

Every chunk is a conversation of its own and so opens with the system prompt, which the chat
template renders into the chunk's first turn (inside Llama-2's first ``[INST]``, or folded into
Gemma's first user turn). An exchange therefore has two token lengths: as the first of a chunk
(system prompt included) and later in a chunk. Because every turn opens with a special token the
tokenizer never merges across (``<s>``, ``<start_of_turn>``), a chunk's token count is exactly the
sum of its exchanges' lengths, so planning works on those integers alone and is pure.

An exchange longer than the limit even as the first of a chunk cannot be placed; it is reported
and the caller decides (the data builder trims the client text from the left, keeping the words
nearest the reply, or drops the exchange when the reply alone does not fit) and counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkPlan:
    chunks: tuple[tuple[int, ...], ...]  # exchange indices of each chunk, in order
    oversize: tuple[int, ...]  # exchanges that fit in no chunk, left out of ``chunks``

    def lengths(self, first_lengths: Sequence[int], later_lengths: Sequence[int]) -> list[int]:
        return [first_lengths[chunk[0]] + sum(later_lengths[i] for i in chunk[1:]) for chunk in self.chunks]


def plan_chunks(first_lengths: Sequence[int], later_lengths: Sequence[int], max_tokens: int) -> ChunkPlan:
    """Greedy, order-preserving packing of consecutive exchanges into chunks of at most
    ``max_tokens`` tokens.

    ``first_lengths[i]`` is exchange ``i``'s length when it opens a chunk (with the system prompt),
    ``later_lengths[i]`` its length anywhere else. Each chunk takes exchanges while the next still
    fits, so chunks are as long as possible and their number is minimal for this order. Every
    exchange that fits as a chunk opener appears in exactly one chunk; concatenating the chunks
    gives back the exchange order.
    """
    if len(first_lengths) != len(later_lengths):
        raise ValueError("first_lengths and later_lengths differ in length")
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    chunks: list[tuple[int, ...]] = []
    oversize: list[int] = []
    current: list[int] = []
    used = 0
    for index, (first, later) in enumerate(zip(first_lengths, later_lengths, strict=True)):
        if current and used + later <= max_tokens:
            current.append(index)
            used += later
            continue
        if current:
            chunks.append(tuple(current))
            current, used = [], 0
        if first <= max_tokens:
            current, used = [index], first
        else:
            oversize.append(index)
    if current:
        chunks.append(tuple(current))
    return ChunkPlan(tuple(chunks), tuple(oversize))
