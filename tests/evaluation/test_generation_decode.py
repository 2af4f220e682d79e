"""Batched decoding with the tiny Llama-2 on the real inputs: same tokens as one-at-a-time,
deterministic, resumable through the store, stale replies refused."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DATA_DIR
from therapy_align.evaluation.generation import (
    GenerationSpec,
    generate_batch,
    generate_file,
    prompt_ids,
    read_inputs,
)
from therapy_align.store import StaleResultError, read_results
from therapy_align.data.system_prompts import get_system_prompt

pytestmark = pytest.mark.integration

INPUTS = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"


@pytest.fixture(scope="module")
def tiny(tokenizer):
    import torch

    from therapy_align.training.tiny_model import build_tiny_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a ~4M-parameter model: one thread beats two contending ones
    model = build_tiny_model(seed=0)
    model.eval()
    yield model, tokenizer
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def records():
    return read_inputs(INPUTS, limit=4).records


def test_prompt_is_the_chat_template_and_ends_at_inst(tokenizer):
    ids = prompt_ids(tokenizer, get_system_prompt("standard"), "I feel low.")
    text = tokenizer.decode(ids)
    assert ids[0] == tokenizer.bos_token_id
    assert "<<SYS>>" in text and text.endswith("I feel low. [/INST]")


def test_batched_greedy_equals_one_at_a_time(tiny, records):
    model, tokenizer = tiny
    system = get_system_prompt("new")
    prompts = [prompt_ids(tokenizer, system, r.text) for r in records]
    assert len({len(p) for p in prompts}) > 1  # padding really happens
    settings = GenerationSpec(batch_size=len(prompts), max_new_tokens=10)
    batched = generate_batch(model, tokenizer, prompts, settings)
    single = [generate_batch(model, tokenizer, [p], settings)[0] for p in prompts]
    assert batched == single
    assert all(count == 10 or text for text, count in batched)


def test_sampling_is_reproducible_under_a_seed(tiny, records):
    model, tokenizer = tiny
    prompts = [prompt_ids(tokenizer, None, r.text) for r in records[:3]]
    settings = GenerationSpec(max_new_tokens=10, do_sample=True, temperature=1.0, top_p=0.95)
    first = generate_batch(model, tokenizer, prompts, settings, seed=7)
    assert first == generate_batch(model, tokenizer, prompts, settings, seed=7)
    assert first != generate_batch(model, tokenizer, prompts, settings, seed=8)


def test_reads_the_real_inputs_in_order_with_limit():
    report = read_inputs(INPUTS, limit=5)
    assert [r.id for r in report.records] == [f"rmh-000{i}" for i in range(5)]
    assert all(r.text.strip() for r in report.records)
    assert len(read_inputs(INPUTS).records) == 1000


def _run(tiny, records, out, spec=GenerationSpec(batch_size=4, max_new_tokens=8), **kw):
    model, tokenizer = tiny
    return generate_file((model, tokenizer), records, out, model_ref="tiny-base", prompt_name="standard",
                         system_prompt=get_system_prompt("standard"), spec=spec, **kw)


def test_generate_file_lines_in_input_order_whatever_the_batching(tiny, records, tmp_path):
    summary = _run(tiny, records, tmp_path / "a.jsonl")
    _run(tiny, records, tmp_path / "b.jsonl", spec=GenerationSpec(batch_size=3, max_new_tokens=8, sort_by_length=False))
    lines = read_results(tmp_path / "a.jsonl")
    assert summary.generated == len(records) == len(lines)
    assert [r["id"] for r in lines] == [r.id for r in records]  # sorted by length to batch, written in input order
    assert set(lines[0]) == {"id", "text", "prompt", "model", "response", "new_tokens"}
    assert all(0 < r["new_tokens"] <= 8 for r in lines)
    assert read_results(tmp_path / "b.jsonl") == lines


def test_rerun_skips_done_ids_and_repairs_a_torn_tail(tiny, records, tmp_path):
    out = tmp_path / "g.jsonl"
    _run(tiny, records[:2], out)
    part = out.with_name(out.name + ".part")
    out.rename(part)  # as if killed after two lines...
    with open(part, "a") as handle:
        handle.write('{"id": "rmh-0003", "text": "torn')  # ...in the middle of the third
    summary = _run(tiny, records, out)
    assert summary.already_done == 2 and summary.generated == 2 and summary.torn_bytes > 0
    ids = [r["id"] for r in read_results(out)]
    assert ids == [r.id for r in records] and not part.exists()
    assert _run(tiny, records, out).generated == 0


def test_stale_replies_are_refused_then_redone_with_force(tiny, records, tmp_path):
    out = tmp_path / "g.jsonl"
    _run(tiny, records[:2], out)
    before = read_results(out)
    with pytest.raises(StaleResultError, match="settings"):
        _run(tiny, records[:2], out, spec=GenerationSpec(batch_size=4, max_new_tokens=5))
    assert read_results(out) == before  # a refused rerun leaves the finished file as it was
    redone = _run(tiny, records[:2], out, spec=GenerationSpec(batch_size=4, max_new_tokens=5), force=True)
    assert redone.generated == 2 and redone.dropped_stale == 2
    assert all(r["new_tokens"] <= 5 for r in read_results(out))
    model, tokenizer = tiny
    with pytest.raises(StaleResultError, match="prompt"):
        generate_file((model, tokenizer), records[:2], out, model_ref="tiny-base", prompt_name="new",
                      system_prompt=get_system_prompt("new"), spec=GenerationSpec(batch_size=4, max_new_tokens=5))
