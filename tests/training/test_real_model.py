"""The real small model, Gemma 3 270M: the registry prepares and loads it (model, tokenizer, chat
template with supervised tokens), and one step of `recipes/sft_paper.py --preset small` trains it
into a run the later stages load. Slow: minutes on two cores; skipped where the model is absent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.fixtures.real_model import GEMMA, make_sft_run, require_gemma

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def gemma():
    require_gemma()


def test_registry_prepares_and_loads_model_and_tokenizer():
    import torch

    from therapy_align.data.chat_format import render_text
    from therapy_align.training.model_registry import MARKER, resolve
    from therapy_align.training.models import classify_reference, load_causal_lm, load_tokenizer_for

    path = resolve(GEMMA)  # prepares on first use
    assert classify_reference(GEMMA) == ("named", GEMMA)
    assert (Path(path) / MARKER).is_file()
    tokenizer = load_tokenizer_for(GEMMA)
    assert len(tokenizer) >= 262_000 and tokenizer.pad_token_id is not None
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel alone."},
                {"role": "assistant", "content": "That sounds hard."}]
    text, spans = render_text(messages, tokenizer)
    assert text.startswith("<bos><start_of_turn>user\nBe kind.\n\nI feel alone.<end_of_turn>")
    assert [text[a:b] for a, b in spans] == ["That sounds hard.<end_of_turn>"]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    supervised = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m]
    assert supervised and supervised[-1] == tokenizer.convert_tokens_to_ids("<end_of_turn>")
    model = load_causal_lm(GEMMA, dtype="float32").eval()
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([encoded["input_ids"]])).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in model.generation_config.eos_token_id


def test_one_sft_step_of_the_small_preset(tmp_path):
    run_dir = make_sft_run(tmp_path, "small-sft")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["base_model"] == GEMMA and config["preset"] == "small"
    assert config["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    tokenizer_config = json.loads((run_dir / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<end_of_turn>"  # what generation stops at, later
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 1 and metrics["supervised_tokens_seen"] > 0
    assert [step for step, _ in metrics["train_losses"]] == [1] and math.isfinite(metrics["train_loss_last"])


def test_a_fresh_conversion_is_a_plain_trainable_checkpoint(tmp_path, monkeypatch):
    """Converting the GGUF anew (not the cached copy) gives float32 weights without transformers'
    GGUF quantisation mark, which would make every trainer refuse the model as quantised."""
    from therapy_align.training import model_registry

    if not model_registry.package_installed(model_registry.lookup(GEMMA).source):
        pytest.skip(f"the {GEMMA} package is not installed: nothing to convert")
    monkeypatch.setenv(model_registry.CACHE_ENV, str(tmp_path / "cache"))
    path = Path(model_registry.prepare(GEMMA))
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config.get("dtype", config.get("torch_dtype")) == "float32"
    from transformers.trainer_utils import validate_quantization_for_training

    from therapy_align.training.models import load_causal_lm

    validate_quantization_for_training(load_causal_lm(str(path), dtype="float32"))  # raises for a quantised model
