"""Gemma's chat format: the template alone (always), and the prepared tokenizer (when prepared).

The template-level tests render ``gemma3_chat.jinja`` without a tokenizer, so they run everywhere;
the tokenizer-level ones need ``artifacts/models/gemma-3-270m`` (``therapy-align model prepare
gemma-3-270m``) and skip, saying so, where it is absent.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import REPO_ROOT, TOKENIZER_DIR, llama_tokenizer
from tests.strategies import conversations
from therapy_align.data.chat_format import (
    chat_template,
    has_generation_markers,
    is_llama2_tokenizer,
    load_tokenizer,
    render_with_template,
    show_supervised,
    token_pieces,
    tokenize_conversation,
)
from therapy_align.data.masking import IGNORE_INDEX
from therapy_align.errors import UserError

pytestmark = pytest.mark.integration

GEMMA_DIR = Path(os.environ.get("THERAPY_ALIGN_MODEL_CACHE") or REPO_ROOT / "artifacts" / "models") / "gemma-3-270m"
GEMMA_SPECIALS = {"bos_token": "<bos>", "eos_token": "<eos>"}
LLAMA_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SYSTEM = "You are a counsellor."
CONVERSATION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "I cried while baking."},
    {"role": "assistant", "content": "That sounds like a lot at once."},
    {"role": "user", "content": "Work, mostly."},
    {"role": "assistant", "content": "Work weighs on you."},
]


def gemma_available() -> bool:
    return (GEMMA_DIR / "tokenizer.json").is_file()


def needs_gemma():
    if not gemma_available():
        pytest.skip(f"the Gemma tokenizer is not prepared at {GEMMA_DIR}: run `therapy-align model prepare gemma-3-270m`")


@lru_cache(maxsize=1)
def gemma_tokenizer():
    """Loaded once per session, like the Llama-2 one (hypothesis tests take no fixtures)."""
    return load_tokenizer(str(GEMMA_DIR))


def meta_reference_text(messages, bos: str = "<s>", eos: str = "</s>") -> tuple[str, list[tuple[int, int]]]:
    """Meta's Llama-2 ``chat_completion`` layout written out by hand, and each reply's span
    ``" {reply} </s>"``: the oracle the shipped template is held to."""
    system, turns = (messages[0]["content"], messages[1:]) if messages[0]["role"] == "system" else (None, messages)
    text, spans = "", []
    for index, message in enumerate(turns):
        if message["role"] == "user":
            header = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if index == 0 and system is not None else ""
            text += f"{bos}[INST] {header}{message['content']} [/INST]"
        else:
            piece = f" {message['content']} {eos}"
            spans.append((len(text), len(text) + len(piece)))
            text += piece
    return text, spans


# ----------------------------------------------------------------------------- templates alone


def test_gemma_template_folds_the_system_prompt_into_the_first_user_turn():
    text, spans = render_with_template(CONVERSATION, chat_template("gemma3_chat.jinja"), **GEMMA_SPECIALS)
    assert text == (
        "<bos><start_of_turn>user\nYou are a counsellor.\n\nI cried while baking.<end_of_turn>\n"
        "<start_of_turn>model\nThat sounds like a lot at once.<end_of_turn>\n"
        "<start_of_turn>user\nWork, mostly.<end_of_turn>\n"
        "<start_of_turn>model\nWork weighs on you.<end_of_turn>\n"
    )
    # Supervised: each reply and its closing <end_of_turn>; not the role header, not the newline after.
    assert [text[start:end] for start, end in spans] == [
        "That sounds like a lot at once.<end_of_turn>", "Work weighs on you.<end_of_turn>"]


def test_gemma_template_without_system_prompt_and_generation_prompt():
    text, spans = render_with_template(CONVERSATION[1:2], chat_template("gemma3_chat.jinja"), **GEMMA_SPECIALS)
    assert text == "<bos><start_of_turn>user\nI cried while baking.<end_of_turn>\n"
    assert spans == []
    from transformers.utils.chat_template_utils import render_jinja_template

    prompt = render_jinja_template([CONVERSATION[:2]], chat_template=chat_template("gemma3_chat.jinja"),
                                   add_generation_prompt=True, **GEMMA_SPECIALS)[0][0]
    assert prompt.endswith("I cried while baking.<end_of_turn>\n<start_of_turn>model\n")


def test_both_templates_carry_generation_markers():
    assert has_generation_markers(chat_template("gemma3_chat.jinja"))
    assert has_generation_markers(chat_template())
    assert not has_generation_markers("{{ messages[0]['content'] }}") and not has_generation_markers(None)


@SETTINGS
@given(conversations())
def test_llama2_template_is_metas_layout(messages):
    assert render_with_template(messages, chat_template(), **LLAMA_SPECIALS) == meta_reference_text(messages)


@SETTINGS
@given(conversations())
def test_templates_render_earlier_turns_as_a_prefix(messages):
    """Chunks are assembled from exchanges rendered after earlier turns: that needs a conversation's
    first turns to render as a prefix of the whole, with the same supervised spans."""
    for name, specials in (("gemma3_chat.jinja", GEMMA_SPECIALS), ("llama2_chat.jinja", LLAMA_SPECIALS)):
        whole, whole_spans = render_with_template(messages, chat_template(name), **specials)
        head, head_spans = render_with_template(messages[:-2] or messages[:1], chat_template(name), **specials)
        assert whole.startswith(head)
        assert [span for span in whole_spans if span[1] <= len(head)] == head_spans


# ----------------------------------------------------------------------------- which tokenizer path


def test_a_tokenizer_without_chat_template_is_refused():
    from therapy_align.sentence_embedding import minilm_path

    with pytest.raises(UserError, match=r"not a usable chat tokenizer: BertTokenizer .* has no chat template"):
        load_tokenizer(str(minilm_path()))


def test_a_saved_llama_tokenizer_stays_llama2(tmp_path):
    """SFT runs save their tokenizer (tokenizer.json + a config naming LlamaTokenizer): loading it
    back gives Meta's encoding and the project template, like the bare tokenizer.model."""
    llama_tokenizer().save_pretrained(tmp_path)
    assert is_llama2_tokenizer(str(TOKENIZER_DIR)) and is_llama2_tokenizer(str(tmp_path))
    again = load_tokenizer(str(tmp_path))
    assert type(again) is type(llama_tokenizer()) and again.chat_template == chat_template()
    assert tokenize_conversation(CONVERSATION, again) == tokenize_conversation(CONVERSATION, llama_tokenizer())
    assert again.pad_token == "<unk>"


# ----------------------------------------------------------------------------- the prepared Gemma tokenizer


def test_gemma_tokenizer_keeps_its_own_ids_and_template():
    needs_gemma()
    tok = gemma_tokenizer()
    assert not is_llama2_tokenizer(str(GEMMA_DIR))
    assert type(tok).__name__ == "GemmaTokenizer" and len(tok) == 262_144
    assert tok.chat_template == (GEMMA_DIR / "chat_template.jinja").read_text()
    assert tok.pad_token == "<pad>" and tok.padding_side == "right"
    ids = tokenize_conversation(CONVERSATION, tok)["input_ids"]
    assert ids[:2] == [tok.bos_token_id, tok.convert_tokens_to_ids("<start_of_turn>")]


def test_gemma_labels_match_the_templates_assistant_mask():
    needs_gemma()
    tok = gemma_tokenizer()
    ours = tokenize_conversation(CONVERSATION, tok)
    hf = tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert hf["input_ids"] == ours["input_ids"]
    assert [int(label != IGNORE_INDEX) for label in ours["labels"]] == hf["assistant_masks"]
    end_of_turn = tok.convert_tokens_to_ids("<end_of_turn>")
    supervised = [token for token, label in zip(ours["input_ids"], ours["labels"]) if label != IGNORE_INDEX]
    assert supervised.count(end_of_turn) == 2 and supervised[-1] == end_of_turn


def test_trl_assistant_only_loss_gives_the_same_gemma_labels(tmp_path):
    needs_gemma()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from therapy_align.training.tiny_model import build_tiny_model

    tok = gemma_tokenizer()
    args = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, report_to="none", max_length=None,
                     use_cpu=True, dataset_num_proc=None)
    # Only the dataset preparation is compared: the model is never run on Gemma's ids.
    trainer = SFTTrainer(model=build_tiny_model(), args=args, processing_class=tok,
                         train_dataset=Dataset.from_list([{"messages": CONVERSATION}]))
    prepared = trainer.train_dataset[0]
    ours = tokenize_conversation(CONVERSATION, tok)
    assert prepared["input_ids"] == ours["input_ids"]
    assert prepared["labels"] == ours["labels"]


def test_data_show_pieces_give_the_gemma_text_back():
    needs_gemma()
    tok = gemma_tokenizer()
    encoded = tokenize_conversation(CONVERSATION, tok)
    text, _ = render_with_template(CONVERSATION, tok.chat_template, **tok.special_tokens_map)
    assert "".join(token_pieces(encoded["input_ids"], tok)) == text
    runs = show_supervised(encoded["input_ids"], encoded["labels"], tok)
    assert [piece for piece, supervised in runs if supervised] == [
        "That sounds like a lot at once.<end_of_turn>", "Work weighs on you.<end_of_turn>"]
