"""The renderer, the Jinja template and TRL 1.16's assistant_only_loss agree token for token."""

from __future__ import annotations

import pytest

from therapy_align.data.chat_format import tokenize_conversation
from therapy_align.data.masking import IGNORE_INDEX, token_mask_from_char_spans
from therapy_align.data.system_prompts import NEW, STANDARD, get_system_prompt

pytestmark = pytest.mark.integration

CONVERSATION = [
    {"role": "system", "content": STANDARD},
    {"role": "user", "content": "I don't know why I just cried. I was making cookies and felt overwhelmed."},
    {"role": "assistant", "content": "That sounds like a lot landed on you at once. What was on your mind?"},
    {"role": "user", "content": "Work, mostly. And my mum."},
    {"role": "assistant", "content": "Work and your mum. Which of the two weighs more right now?"},
]


def test_meta_reference_token_stream(tokenizer):
    """Meta's chat_completion encodes f"{B_INST} {prompt} {E_INST} {answer} " with bos/eos, which
    puts SentencePiece's dummy prefix after <s>: 1, 518 ("▁["), 25580 ("INST"), 29962 ("]")."""
    ids = tokenize_conversation(CONVERSATION[:3], tokenizer)["input_ids"]
    assert ids[:4] == [1, 518, 25580, 29962]
    assert ids[-1] == tokenizer.eos_token_id


def test_template_matches_renderer_and_assistant_mask(tokenizer):
    ours = tokenize_conversation(CONVERSATION, tokenizer)
    hf = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert hf["input_ids"] == ours["input_ids"]
    assert [int(label != IGNORE_INDEX) for label in ours["labels"]] == hf["assistant_masks"]


def test_trl_assistant_only_loss_gives_the_same_labels(tokenizer, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from therapy_align.training.tiny_model import build_tiny_model

    args = SFTConfig(
        output_dir=str(tmp_path), assistant_only_loss=True, report_to="none", max_length=None,
        use_cpu=True, dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=build_tiny_model(), args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list([{"messages": CONVERSATION}]),
    )
    prepared = trainer.train_dataset[0]
    ours = tokenize_conversation(CONVERSATION, tokenizer)
    assert prepared["input_ids"] == ours["input_ids"]
    assert prepared["labels"] == ours["labels"]


def test_mask_from_char_spans_edges():
    offsets = [(0, 3), (3, 4), (4, 8), (8, 8), (8, 12)]
    assert token_mask_from_char_spans(offsets, [(4, 12)]) == [0, 0, 1, 1, 1]
    assert token_mask_from_char_spans(offsets, [(2, 4)]) == [1, 1, 0, 0, 0]
    assert token_mask_from_char_spans(offsets, []) == [0] * 5


def test_named_prompts_are_the_papers():
    assert get_system_prompt("standard").startswith("You are a helpful, respectful and honest assistant.")
    assert NEW.startswith(STANDARD) and NEW.endswith("without truncation.")
    with pytest.raises(KeyError, match=r"unknown system prompt .nope.*new.*standard"):
        get_system_prompt("nope")
