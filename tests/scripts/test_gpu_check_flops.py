"""The GPU check's FLOP accounting, batch-length reading and verdicts (scripts/gpu_check.py)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO_ROOT, load_recipe_module

gpu_check = load_recipe_module(REPO_ROOT / "scripts" / "gpu_check.py", "gpu_check_under_test")


@pytest.mark.parametrize("cfg", [gpu_check.LLAMA2_7B, gpu_check.DRY.model,
                                 {**gpu_check.DRY.model, "num_key_value_heads": 2}])
def test_matmul_weights_match_the_linear_layers_of_the_real_model(cfg):
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):  # the 7B shape costs nothing on the meta device
        model = LlamaForCausalLM(LlamaConfig(**cfg))
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert gpu_check.matmul_weights(cfg) == linear


def test_lora_flops_add_over_sequences_and_grow_quadratically_with_length():
    cfg = gpu_check.LLAMA2_7B
    one, two = gpu_check.lora_flops([1000], cfg), gpu_check.lora_flops([3000], cfg)
    assert gpu_check.lora_flops([1000, 3000], cfg) == one + two
    # 4N per token plus an attention term that grows with the length: 3x the tokens cost more than 3x.
    assert two > 3 * one
    assert gpu_check.lora_flops([1], cfg) == pytest.approx(4 * gpu_check.matmul_weights(cfg), rel=1e-3)


def test_batch_lengths_from_padding_and_from_padding_free_position_ids():
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [{"input_ids": list(range(1, 6)), "labels": list(range(1, 6))},
            {"input_ids": list(range(1, 4)), "labels": list(range(1, 4))}]
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(rows)
    flat = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(rows)
    assert gpu_check.batch_lengths(dict(padded)) == [5, 3]
    assert gpu_check.batch_lengths(dict(flat)) == [5, 3]
    assert gpu_check.batch_lengths({"input_ids": torch.zeros(2, 7, dtype=torch.long)}) == [7, 7]


def _results(mode, **parts):
    return {"mode": mode, "parts": {name: {"status": "ok", **values} for name, values in parts.items()}}


def test_verdicts_pass_and_fail_on_a_gpu_run_and_are_not_judged_in_a_dry_run():
    parts = dict(qlora={"mfu": 0.36, "train_peak_gpu_reserved_gb": 11.0}, bf16_lora={"mfu": 0.2},
                 gen_4bit={"tokens_per_s": 100.0}, gen_merged={"tokens_per_s": 700.0})
    verdicts = gpu_check.judge(_results("gpu", **parts))
    assert verdicts["qlora_mfu"]["pass"] is True
    assert verdicts["qlora_mem"]["pass"] is False
    assert verdicts["bf16_mfu"]["pass"] is False
    assert verdicts["gen_ratio"] == {"target": gpu_check.TARGETS["gen_ratio"], "value": 7.0, "pass": True}
    assert all(v["pass"] is None for v in gpu_check.judge(_results("dry-run", **parts)).values())
    failed = _results("gpu", **parts)
    failed["parts"]["gen_4bit"] = {"status": "failed", "error": "x"}
    assert gpu_check.judge(failed)["gen_ratio"]["pass"] is None
