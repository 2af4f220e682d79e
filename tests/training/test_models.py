"""models.py: reference classification, fail-fast errors, and loading base / run directories."""

from __future__ import annotations

import json

import pytest
import torch

from therapy_align.training import models
from therapy_align.training.models import (
    ModelReferenceError,
    QuantizationUnavailableError,
    classify_reference,
    load_causal_lm,
    load_model_for_inference,
)
from therapy_align.training.tiny_model import materialize_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return materialize_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama-2")


def test_named_bases_are_classified_without_loading():
    assert classify_reference("base") == ("named", "base")
    assert models.resolve_base("base") == models.PAPER_BASE_MODEL
    assert classify_reference("tiny-base") == ("named", "tiny-base")
    assert classify_reference("meta-llama/Llama-2-7b-chat-hf") == ("hub", "meta-llama/Llama-2-7b-chat-hf")


@pytest.mark.parametrize("make", ["empty", "junk_config", "config_without_adapter"])
def test_path_that_is_neither_model_nor_run_fails_fast(tmp_path, make, monkeypatch):
    target = tmp_path / "thing"
    target.mkdir()
    if make == "junk_config":
        (target / "config.json").write_text("{not json")
    elif make == "config_without_adapter":
        (target / "config.json").write_text(json.dumps({"base_model": "tiny-base"}))
    # Loading anything heavy would go through from_pretrained: make it explode if reached.
    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", None)
    with pytest.raises(ModelReferenceError, match="neither a model"):
        load_model_for_inference(str(target))


def test_missing_local_path_fails_fast():
    with pytest.raises(ModelReferenceError, match="does not exist"):
        load_model_for_inference("runs/definitely-not-a-run")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_kbit_without_cuda_fails_before_loading(bits):
    with pytest.raises(QuantizationUnavailableError, match="CUDA"):
        load_causal_lm("/nonexistent/model", quantization=bits)


def test_load_full_model_dir(tiny_dir):
    model, tok = load_model_for_inference(str(tiny_dir))
    assert model.config.model_type == "llama" and not model.training
    assert tok.pad_token == "<unk>" and tok.chat_template


def test_load_run_dir_applies_adapter(tiny_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load_causal_lm(str(tiny_dir), dtype="float32")
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    # Non-zero B so the adapter visibly changes the output.
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    run = tmp_path / "runs" / "toy"
    peft_model.save_pretrained(run / "adapter")
    (run / "config.json").write_text(json.dumps({"schema": models.RUN_SCHEMA, "base_model": str(tiny_dir)}))
    model, tok = load_model_for_inference(str(run))
    ids = torch.tensor([[1, 518, 25580, 29962, 22172]])
    plain = load_causal_lm(str(tiny_dir), dtype="float32").eval()
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        expected = peft_model.eval()(input_ids=ids).logits
        unadapted = plain(input_ids=ids).logits
    assert torch.allclose(adapted, expected, atol=1e-5)
    assert not torch.allclose(adapted, unadapted, atol=1e-3)
    merged, _ = load_model_for_inference(str(run), merge=True)
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-4)
