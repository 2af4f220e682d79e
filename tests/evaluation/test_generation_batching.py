"""Generation at scale: the batch is halved on out-of-memory until it fits, and a static KV cache
decodes the same replies as the dynamic one (tiny model, real tokenizer)."""

from __future__ import annotations

import pytest
import torch

from therapy_align.data.system_prompts import get_system_prompt
from therapy_align.evaluation.generation import GenerationSpec, InputRecord, generate_file, read_generations
from therapy_align.training.tiny_model import build_tiny_model

pytestmark = pytest.mark.integration

TEXTS = ["I can't sleep and everything feels heavy.", "My sister stopped talking to me.",
         "Work is too much lately, I cry in the car.", "I feel alone even with friends around.",
         "Is it normal to feel numb after a breakup?"]
INPUTS = [InputRecord(str(i), text) for i, text in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def model():
    return build_tiny_model(seed=0).eval()


def _replies(path):
    return {r["id"]: (r["response"], r["new_tokens"]) for r in read_generations(path)}


def test_out_of_memory_halves_the_batch_until_it_fits(model, tokenizer, tmp_path):
    system = get_system_prompt("new")
    reference = generate_file((model, tokenizer), INPUTS, tmp_path / "b2.jsonl", model_ref="tiny-base",
                              prompt_name="new", system_prompt=system, spec=GenerationSpec(batch_size=2, max_new_tokens=6))
    real_generate, widths = model.generate, []

    def small_memory(*args, **kwargs):  # a device that holds at most 2 sequences
        widths.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_generate(*args, **kwargs)

    model.generate = small_memory
    try:
        summary = generate_file((model, tokenizer), INPUTS, tmp_path / "auto.jsonl", model_ref="tiny-base",
                                prompt_name="new", system_prompt=system,
                                spec=GenerationSpec(batch_size=16, max_new_tokens=6))
    finally:
        del model.generate
    assert widths[:2] == [5, 2] and max(widths[2:]) <= 2  # 16 -> all 5 inputs fail, halved to 2, which fit
    assert summary.batch_size == 2 and summary.generated == len(INPUTS)
    assert _replies(tmp_path / "auto.jsonl") == _replies(tmp_path / "b2.jsonl")
    assert reference.batch_size == 2


def test_a_batch_of_one_that_does_not_fit_fails_loudly(model, tokenizer, tmp_path):
    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    model.generate = no_memory
    try:
        with pytest.raises(torch.OutOfMemoryError):
            generate_file((model, tokenizer), INPUTS[:2], tmp_path / "x.jsonl", model_ref="tiny-base",
                          prompt_name="new", system_prompt=None, spec=GenerationSpec(batch_size=2, max_new_tokens=4))
    finally:
        del model.generate


def test_static_cache_decodes_the_same_replies_as_the_dynamic_cache(model, tokenizer, tmp_path):
    system = get_system_prompt("new")
    for cache in ("dynamic", "static"):
        generate_file((model, tokenizer), INPUTS, tmp_path / f"{cache}.jsonl", model_ref="tiny-base", prompt_name="new",
                      system_prompt=system, spec=GenerationSpec(batch_size=5, max_new_tokens=8, cache_implementation=cache))
    dynamic, static = _replies(tmp_path / "dynamic.jsonl"), _replies(tmp_path / "static.jsonl")
    assert static == dynamic and all(count > 0 for _, count in dynamic.values())
