"""Batched decoding with the tiny Llama-2: same tokens as one-at-a-time, deterministic, resumable."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DATA_DIR
from therapy_align.evaluation.generation import (
    GenerationSettings,
    InputFileError,
    generate_batch,
    generate_file,
    prompt_ids,
    read_inputs,
    read_outputs,
)
from therapy_align.data.system_prompts import get_system_prompt

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
    settings = GenerationSettings(batch_size=len(prompts), max_new_tokens=10)
    batched = generate_batch(model, tokenizer, prompts, settings)
    single = [generate_batch(model, tokenizer, [p], settings)[0] for p in prompts]
    assert batched == single
    assert all(count == 10 or text for text, count in batched)


def test_sampling_is_reproducible_under_a_seed(tiny, records):
    model, tokenizer = tiny
    prompts = [prompt_ids(tokenizer, None, r.text) for r in records[:3]]
    settings = GenerationSettings(max_new_tokens=10, do_sample=True, temperature=1.0, top_p=0.95)
    first = generate_batch(model, tokenizer, prompts, settings, seed=7)
    assert first == generate_batch(model, tokenizer, prompts, settings, seed=7)
    assert first != generate_batch(model, tokenizer, prompts, settings, seed=8)


def _run(tiny, records, out, **kw):
    model, tokenizer = tiny
    return generate_file(model, tokenizer, records, out, model_ref="tiny-base", prompt_name="standard",
                         system_prompt=get_system_prompt("standard"),
                         settings=GenerationSettings(batch_size=4, max_new_tokens=8), **kw)


def test_generate_file_lines_and_determinism(tiny, records, tmp_path):
    summary = _run(tiny, records, tmp_path / "a.jsonl")
    _run(tiny, records, tmp_path / "b.jsonl")
    lines = read_outputs(tmp_path / "a.jsonl")
    assert summary.generated == len(records) == len(lines)
    assert {r["id"] for r in lines} == {r.id for r in records}
    assert set(lines[0]) == {"id", "text", "prompt", "model", "response", "new_tokens"}
    assert all(0 < r["new_tokens"] <= 8 for r in lines)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_rerun_skips_done_ids_and_repairs_a_torn_tail(tiny, records, tmp_path):
    out = tmp_path / "g.jsonl"
    _run(tiny, records[:2], out)
    with open(out, "a") as handle:
        handle.write('{"id": "rmh-0003", "text": "torn')
    summary = _run(tiny, records, out)
    assert summary.already_done == 2 and summary.generated == 2 and summary.torn_bytes > 0
    ids = [r["id"] for r in read_outputs(out)]
    assert sorted(ids) == sorted(r.id for r in records) and len(ids) == len(set(ids))
    again = _run(tiny, records, out)
    assert again.generated == 0


def test_refuses_to_mix_prompts_in_one_file(tiny, records, tmp_path):
    out = tmp_path / "g.jsonl"
    out.write_text(json.dumps({"id": "x", "prompt": "new", "model": "tiny-base"}) + "\n")
    with pytest.raises(InputFileError, match="choose another --out"):
        _run(tiny, records[:1], out)
