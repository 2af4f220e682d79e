"""Invariants of the chat rendering, masking and chunking, for both families: the real Llama-2
tokenizer, and Gemma's where it is prepared (``therapy-align model prepare gemma-3-270m``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import llama_tokenizer
from tests.data.test_gemma_format import gemma_tokenizer, needs_gemma
from tests.strategies import conversations, transcripts
from therapy_align.data.chat_format import render_text, tokenize_conversation
from therapy_align.data.chunking import plan_chunks
from therapy_align.data.cleaning import clean_turns, to_exchanges
from therapy_align.data.dataset_build import BuildConfig, chunk_transcript
from therapy_align.data.masking import IGNORE_INDEX, supervised_ids

pytestmark = pytest.mark.property

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYSTEM = "You are a counsellor. Listen first."
# What closes each supervised reply in each family's template.
FAMILIES = {"llama-2": "</s>", "gemma": "<end_of_turn>"}
family = pytest.mark.parametrize("family", list(FAMILIES))


def _tokenizer(family: str):
    if family == "gemma":
        needs_gemma()
        return gemma_tokenizer()
    return llama_tokenizer()


def _decode(tok, ids: list[int]) -> str:
    return tok.decode(ids, skip_special_tokens=True).strip()


@family
@SETTINGS
@given(messages=conversations())
def test_labels_align_with_input_ids(family, messages):
    encoded = tokenize_conversation(messages, _tokenizer(family))
    assert len(encoded["input_ids"]) == len(encoded["labels"])
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(encoded["input_ids"], encoded["labels"]))


@family
@SETTINGS
@given(messages=conversations())
def test_supervised_tokens_are_exactly_the_replies(family, messages):
    tok = _tokenizer(family)
    closing = tok.convert_tokens_to_ids(FAMILIES[family])
    encoded = tokenize_conversation(messages, tok)
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    # Each reply ends in the template's closing token: split the supervised stream there and decode each piece.
    pieces, current = [], []
    for token in supervised_ids(encoded["input_ids"], encoded["labels"]):
        if token == closing:
            pieces.append(_decode(tok, current))
            current = []
        else:
            current.append(token)
    assert not current, f"every supervised run ends with {FAMILIES[family]}"
    assert pieces == [_decode(tok, tok(r, add_special_tokens=False)["input_ids"]) for r in replies]


@family
@SETTINGS
@given(messages=conversations())
def test_no_system_or_client_character_is_supervised(family, messages):
    tok = _tokenizer(family)
    text, spans = render_text(messages, tok)
    encoding = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    encoded = tokenize_conversation(messages, tok)
    assert encoded["input_ids"] == encoding["input_ids"]
    for (start, end), label in zip(encoding["offset_mapping"], encoded["labels"]):
        inside = any(span_start <= start and end <= span_end for span_start, span_end in spans)
        if label != IGNORE_INDEX:
            assert inside, f"supervised token at {start}:{end} {text[start:end]!r} is outside every reply"
        elif end > start:
            assert not inside, f"reply token {text[start:end]!r} is not supervised"


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), max_size=40), st.integers(50, 700))
def test_chunk_plan_fits_and_preserves_order(lengths, max_tokens):
    first = [a + b for a, b in lengths]  # opening a chunk costs the system prompt too
    later = [a for a, _ in lengths]
    plan = plan_chunks(first, later, max_tokens)
    assert all(length <= max_tokens for length in plan.lengths(first, later))
    placed = [i for chunk in plan.chunks for i in chunk]
    assert sorted(placed + list(plan.oversize)) == list(range(len(lengths)))
    assert placed == sorted(placed), "chunks keep the exchange order, none split or repeated"
    assert all(first[i] > max_tokens for i in plan.oversize)


@family
@SETTINGS
@given(transcript=transcripts(), max_tokens=st.integers(90, 400))
def test_chunks_of_a_transcript(family, transcript, max_tokens):
    tok = _tokenizer(family)
    config = BuildConfig(max_tokens=max_tokens)
    rows, stats = chunk_transcript(transcript, tok, system_prompt=SYSTEM, config=config)
    exchanges, _ = to_exchanges(clean_turns(list(transcript.turns))[0])
    for row in rows:
        assert len(row["input_ids"]) <= max_tokens
        assert row["messages"][0] == {"role": "system", "content": SYSTEM}
        assert row["input_ids"] == tokenize_conversation(row["messages"], tok)["input_ids"]
        assert row["labels"] == tokenize_conversation(row["messages"], tok)["labels"]
    assert [r["chunk_index"] for r in rows] == list(range(len(rows)))
    # Concatenated chunks give back the exchanges in order, none split or repeated (oversize
    # exchanges are trimmed from the left of the client text, or dropped, and counted).
    chunked = [(m["content"], n["content"]) for r in rows for m, n in zip(r["messages"][1::2], r["messages"][2::2])]
    assert len(chunked) == len(exchanges) - stats["oversize_dropped"]
    originals = iter(exchanges)
    for client, therapist in chunked:
        original = next(e for e in originals if e.therapist == therapist)
        assert original.client.endswith(client) or client == "…"


@SETTINGS
@given(transcripts())
def test_cleaning_is_idempotent(transcript):
    once, _ = clean_turns(list(transcript.turns))
    twice, removed = clean_turns(once)
    assert twice == once
    assert not removed
    assert all(a.speaker != b.speaker for a, b in zip(once, once[1:])), "speakers alternate"
