"""The real small model, Gemma 3 270M, through the evaluation paths: prompts open the model's turn
(single-turn, multi-turn, chat, DPO sampling), a base Gemma's replies end at ``<end_of_turn>``, and
a few tokens come out of batched generation. The prompt checks need the tokenizer only (seconds);
the generation is slow. Skipped where the model is absent."""

from __future__ import annotations

import pytest

from tests.fixtures.real_model import GEMMA, require_gemma

MODEL_TURN = "<start_of_turn>model\n"


@pytest.fixture(scope="module")
def gemma_tokenizer():
    require_gemma()
    from therapy_align.training.models import load_tokenizer_for

    return load_tokenizer_for(GEMMA)


def test_every_prompt_path_opens_the_model_turn(gemma_tokenizer):
    from therapy_align.chat.session import ChatSession
    from therapy_align.data.cleaning import Exchange
    from therapy_align.evaluation.generation import GenerationSpec, prompt_ids
    from therapy_align.evaluation.multiturn import fit_context
    from therapy_align.rl.dpo_rounds import prompt_token_ids

    tok = gemma_tokenizer
    history = [Exchange("I have been low.", "Tell me more.")]
    ids, start, cut = fit_context(tok, "Be kind.", history, "Work is hard.", window=512, max_new_tokens=48)
    assert (start, cut) == (0, 0)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Work is hard."}]
    session = ChatSession(object(), tok, "Be kind.", context_window=512, generation=GenerationSpec(max_new_tokens=16))
    for path_ids in (ids, prompt_ids(tok, "Be kind.", "Work is hard."), prompt_token_ids(tok, messages),
                     session.prompt_ids(session.model_messages("Work is hard."))):
        text = tok.decode(path_ids)
        assert text.startswith("<bos><start_of_turn>user\nBe kind.\n\n") and text.endswith(MODEL_TURN), text


def test_the_chat_turn_end_is_found_from_the_template(gemma_tokenizer):
    from tests.conftest import llama_tokenizer
    from therapy_align.evaluation.generation import chat_turn_end

    assert chat_turn_end(gemma_tokenizer) == "<end_of_turn>"
    assert chat_turn_end(llama_tokenizer()) == llama_tokenizer().eos_token == "</s>"


@pytest.mark.slow
def test_a_few_tokens_through_batched_generation():
    require_gemma()
    from therapy_align.evaluation.generation import GenerationSpec, generate_batch, prompt_ids
    from therapy_align.evaluation.generation import reply_models

    model, tokenizer = reply_models().get(GEMMA)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert tokenizer.eos_token_id == end_of_turn and end_of_turn in model.generation_config.eos_token_id
    spec = GenerationSpec(max_new_tokens=6, batch_size=2)
    prompts = [prompt_ids(tokenizer, "Be kind.", "I cannot sleep."), prompt_ids(tokenizer, None, "Hello.")]
    results = generate_batch(model, tokenizer, prompts, spec)
    assert len(results) == 2 and all(0 < count <= 6 for _, count in results)
    assert any(text for text, _ in results) and not any("<start_of_turn>" in text for text, _ in results)
