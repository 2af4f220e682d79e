"""The restricted output head: a kept token's logit is the full head's, every other token's is -inf;
greedy decoding is the full model's while its choices are kept tokens; the kept ids are cached per
tokenizer and source files; ``GenerationSpec.vocabulary`` is checked and only swaps the head for the call."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DATA_DIR, llama_tokenizer
from therapy_align.data.system_prompts import get_system_prompt
from therapy_align.errors import UserError
from therapy_align.evaluation.generation import GenerationSpec, generate_batch, prompt_ids, read_inputs, stop_ids
from therapy_align.evaluation.restricted_vocab import (
    CORPORA,
    RestrictedHead,
    corpus_token_ids,
    kept_ids,
    restricted_head,
    tokenizer_fingerprint,
    vocabulary_for,
)

INPUTS = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"


@lru_cache(maxsize=1)
def tiny_model():
    """The tiny random-init Llama-2 (32k vocabulary, untied 64 x 32000 head), built once."""
    from therapy_align.training.tiny_model import build_tiny_model

    model = build_tiny_model(seed=0)
    model.eval()
    return model


@pytest.fixture()
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a ~4M-parameter model: one thread beats two contending ones
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------- the head


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 3), positions=st.integers(1, 4),
       kept_size=st.integers(1, 3000), tiny_head=st.booleans(), bias=st.booleans(),
       hidden=st.integers(1, 96), vocab=st.integers(2, 4000))
def test_kept_logits_are_the_full_heads_and_the_rest_the_minimum(seed, rows, positions, kept_size, tiny_head, bias,
                                                                  hidden, vocab):
    gen = torch.Generator().manual_seed(seed)
    if tiny_head:  # the tiny model's real output head
        full = tiny_model().get_output_embeddings()
    else:
        full = torch.nn.Linear(hidden, vocab, bias=bias)
        with torch.no_grad():
            full.weight.copy_(torch.randn(full.weight.shape, generator=gen))
            if bias:
                full.bias.copy_(torch.randn(full.bias.shape, generator=gen))
    vocab = full.out_features
    kept = torch.randperm(vocab, generator=gen)[: min(kept_size, vocab)]
    states = torch.randn((rows, positions, full.in_features), generator=gen) * 3
    head = RestrictedHead(full, kept.tolist())

    with torch.inference_mode():
        expected, got = full(states), head(states)
    mask = torch.zeros(vocab, dtype=torch.bool)
    mask[kept] = True
    assert got.shape == expected.shape and got.dtype == expected.dtype
    # The same dot products of the same rows; a matrix product of another width may sum them in
    # another order, so they agree within float32 summation rounding: |error| <= K eps sum |h_i w_i|
    magnitude = states.abs() @ full.weight.detach().abs().T + (0 if full.bias is None else full.bias.detach().abs())
    bound = full.in_features * torch.finfo(torch.float32).eps * magnitude + 1e-30
    assert bool(((got - expected).abs()[..., mask] <= bound[..., mask]).all())
    assert bool((got[..., ~mask] == -float("inf")).all())
    assert bool(torch.isfinite(got[..., mask]).all())


def test_the_head_keeps_the_models_parameters_and_notices_a_changed_weight():
    model = torch.nn.Linear(8, 50)
    head = RestrictedHead(model, [3, 1, 3, 7])
    assert head.kept.tolist() == [1, 3, 7] and head.weight is model.weight
    assert not head.is_stale()
    with torch.no_grad():
        model.weight.add_(1.0)  # as an optimiser step would
    assert head.is_stale()
    with pytest.raises(ValueError, match="within the head's 50 rows"):
        RestrictedHead(model, [0, 50])


# --------------------------------------------------------------------------------------------- greedy


@pytest.mark.integration
def test_greedy_is_the_full_models_when_every_token_it_emits_is_kept(tokenizer, one_thread):
    model = tiny_model()
    system = get_system_prompt("new")
    prompts = [prompt_ids(tokenizer, system, r.text) for r in read_inputs(INPUTS, limit=4).records]
    spec = GenerationSpec(batch_size=4, max_new_tokens=12)
    full = generate_batch(model, tokenizer, prompts, spec)

    # the tokens the full greedy run emits (re-decoded without cutting), a few others, and the stop ids
    from therapy_align.evaluation.generation import left_pad

    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    emitted = set(out[:, ids.shape[1]:].flatten().tolist())
    kept = sorted(emitted | set(range(100, 400)) | set(stop_ids(model, tokenizer)))
    assert len(kept) < model.config.vocab_size // 10

    loaded = model.get_output_embeddings()
    model.set_output_embeddings(RestrictedHead(loaded, kept))
    try:
        restricted = generate_batch(model, tokenizer, prompts, spec)
    finally:
        model.set_output_embeddings(loaded)
    assert restricted == full

    # without the argmax's token the reply changes: the head really decides
    model.set_output_embeddings(RestrictedHead(loaded, sorted(set(kept) - emitted)))
    try:
        assert generate_batch(model, tokenizer, prompts, spec) != full
    finally:
        model.set_output_embeddings(loaded)


@pytest.mark.integration
def test_generation_with_the_corpora_vocabulary_swaps_the_head_for_the_call_only(tokenizer, one_thread, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("THERAPY_ALIGN_CACHE", str(tmp_path))
    model = tiny_model()
    loaded = model.get_output_embeddings()
    prompts = [prompt_ids(tokenizer, get_system_prompt("new"), r.text) for r in read_inputs(INPUTS, limit=2).records]
    full = generate_batch(model, tokenizer, prompts, GenerationSpec(batch_size=2, max_new_tokens=10))
    spec = GenerationSpec(batch_size=2, max_new_tokens=10, vocabulary="corpora")
    replies = generate_batch(model, tokenizer, prompts, spec)
    assert model.get_output_embeddings() is loaded  # scoring with the same model sees the full head
    kept = set(kept_ids(model, tokenizer))
    assert set(restricted_head(model, tokenizer).kept.tolist()) == kept
    from therapy_align.evaluation.generation import left_pad

    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with vocabulary_for(model, tokenizer, "corpora"), torch.inference_mode():
        assert model.get_output_embeddings() is restricted_head(model, tokenizer)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    assert set(out[:, ids.shape[1]:].flatten().tolist()) <= kept  # a random model, yet only kept tokens
    model.set_output_embeddings(restricted_head(model, tokenizer))
    try:  # generate_batch with the option is generation with that head
        assert generate_batch(model, tokenizer, prompts, GenerationSpec(batch_size=2, max_new_tokens=10)) == replies
    finally:
        model.set_output_embeddings(loaded)
    assert replies != full  # a random model's argmax is rarely a corpus token: the option really acts
    assert generate_batch(model, tokenizer, prompts, GenerationSpec(batch_size=2, max_new_tokens=10)) == full
    assert restricted_head(model, tokenizer) is restricted_head(model, tokenizer)  # made once per model
    assert spec.identity()["vocabulary"] == "corpora" and "vocabulary" not in GenerationSpec().identity()


# --------------------------------------------------------------------------------------------- kept ids and cache


def _small_data(root: Path, extra: str = "") -> Path:
    """A data directory with every corpus file, each a row or two in the real columns."""
    texts = {"annomi/AnnoMI-full.csv": "utterance_text\nHow have you been sleeping?\n",
             "counsel_chat/counsel_chat.csv": "questionTitle,questionText,answerText\nWorried,I cannot stop worrying.,"
                                              "Let us talk about it.\n",
             "eval_inputs/reddit_mental_health_1000.jsonl": json.dumps({"id": "1", "text": "I feel alone." + extra}) + "\n"}
    for source in CORPORA["epitome"]:
        texts[source.relative] = "seeker_post,response_post\nNobody listens.,I am listening.\n"
    assert {s.relative for sources in CORPORA.values() for s in sources} == set(texts)
    for relative, text in texts.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def test_kept_ids_are_the_corpora_tokens_special_bytes_and_template(tokenizer, tmp_path):
    data = _small_data(tmp_path / "data")
    ids = corpus_token_ids(tokenizer, data_dir=data, cache=tmp_path / "cache")
    for text in ("How have you been sleeping?", "Let us talk about it.", "I am listening.", "I feel alone."):
        assert set(tokenizer(text, add_special_tokens=False)["input_ids"]) <= set(ids)
    assert set(tokenizer.all_special_ids) <= set(ids)
    assert tokenizer.convert_tokens_to_ids("<0x0A>") in ids  # byte fallback: any text stays spellable
    assert set(tokenizer("[INST] <<SYS>>", add_special_tokens=False)["input_ids"]) <= set(ids)  # the chat template
    assert ids == sorted(set(ids)) and len(ids) < 2000  # a handful of texts: a small share of 32,000


def test_the_cache_is_reused_then_rebuilt_when_the_tokenizer_or_a_source_changes(tmp_path):
    from therapy_align.data.chat_format import load_tokenizer

    data, cache = _small_data(tmp_path / "data"), tmp_path / "cache"
    tokenizer = llama_tokenizer()
    first = corpus_token_ids(tokenizer, data_dir=data, cache=cache)
    (written,) = cache.iterdir()
    assert json.loads(written.read_text())["tokenizer"] == tokenizer_fingerprint(tokenizer)
    stamp = written.stat().st_mtime_ns
    assert corpus_token_ids(tokenizer, data_dir=data, cache=cache) == first
    assert written.stat().st_mtime_ns == stamp  # reused, not rewritten

    changed = load_tokenizer()  # another tokenizer: one added token
    changed.add_tokens(["<counsellor_note>"])
    assert tokenizer_fingerprint(changed) != tokenizer_fingerprint(tokenizer)
    second = corpus_token_ids(changed, data_dir=data, cache=cache)
    assert len(list(cache.iterdir())) == 2
    assert set(second) - set(first) == {changed.convert_tokens_to_ids("<counsellor_note>")}

    _small_data(data, extra=" Zyzzogeton quixotically.")  # a source file changes
    third = corpus_token_ids(tokenizer, data_dir=data, cache=cache)
    assert set(tokenizer("Zyzzogeton", add_special_tokens=False)["input_ids"]) <= set(third)
    assert set(third) > set(first) and written.stat().st_mtime_ns != stamp


def test_an_unreadable_cache_file_is_remade(tokenizer, tmp_path):
    data, cache = _small_data(tmp_path / "data"), tmp_path / "cache"
    first = corpus_token_ids(tokenizer, data_dir=data, cache=cache)
    (written,) = cache.iterdir()
    written.write_text('{"ids": [1, 2')  # torn by hand (the writer itself is atomic)
    assert corpus_token_ids(tokenizer, data_dir=data, cache=cache) == first


# --------------------------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("value", ["corpus", "", "Full", "restricted"])
def test_a_bad_vocabulary_is_a_clear_error(value):
    with pytest.raises(UserError) as caught:
        GenerationSpec(vocabulary=value)
    assert caught.value.field == "generation.vocabulary"
    assert "full" in str(caught.value) and "corpora" in str(caught.value) and repr(value) in str(caught.value)


def test_an_unknown_vocabulary_name_is_refused_by_the_head_too(tokenizer):
    with pytest.raises(UserError, match="no restricted vocabulary named 'corpus'"):
        kept_ids(tiny_model(), tokenizer, "corpus")
    with vocabulary_for(tiny_model(), tokenizer, "full") as model:  # the default: nothing is swapped
        assert isinstance(model.get_output_embeddings(), torch.nn.Linear)
