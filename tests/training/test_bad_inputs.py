"""`recipes/sft_paper.py` refuses bad overrides and bad input in one line, before anything loads (the
harness: ``tests/fixtures/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.fixtures.bad_inputs import CPU_ONLY, SESSION, Case, assert_refused_in_one_line, case_ids, sft

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- the SFT recipe: overrides (one clean line, never 50 lines of keys) ------------------------
    Case("sft-unknown-key", sft("--train.lr=1"), ("--train.lr", "did you mean --train.learning_rate"), surface="sft"),
    Case("sft-unknown-section", sft("--optimizer.lr=1"), ("--optimizer.lr", "valid keys start with"), surface="sft"),
    Case("sft-misspelt-key", sft("--lora.rank=4"), ("--lora.rank", "--lora.r"), surface="sft"),
    Case("sft-wrong-type-int", sft("--lora.r=abc"), ("--lora.r", "int"), surface="sft"),
    Case("sft-wrong-type-float", sft("--train.learning_rate=fast"), ("--train.learning_rate", "float"), surface="sft"),
    Case("sft-wrong-type-bool", sft("--run.wandb=maybe"), ("--run.wandb", "bool"), surface="sft"),
    Case("sft-quantization-3bit", sft("--model.quantization=3bit"), ("--model.quantization", "'3bit'"), surface="sft"),
    Case("sft-dtype-unknown", sft("--model.dtype=float8"), ("--model.dtype", "float8"), surface="sft"),
    Case("sft-data-split-unknown", sft("--data.split=all"), ("--data.split", "'all'"), surface="sft"),
    Case("sft-bad-preset", ["--preset", "huge"], ("--preset", "huge"), surface="sft"),
    Case("sft-bad-variant", sft("--variant=annomi70"), ("--variant", "annomi70"), surface="sft"),
    Case("sft-bare-key", sft("train.max_steps=2"), ("train.max_steps=2", "did you mean --train.max_steps=2"), surface="sft"),
    Case("sft-dangling-key", sft("--lora.r"), ("--lora.r", "needs a value"), surface="sft"),
    Case("sft-dangling-preset", ["--preset"], ("--preset", "needs a value"), surface="sft"),
    Case("sft-bad-resume-flag", sft("--resume=maybe"), ("--resume",), surface="sft"),
    Case("sft-paper-preset-on-cpu", ["--runs_dir", "{tmp}/runs"], ("CUDA", "--preset tiny"), surface="sft",
         skip=CPU_ONLY),
    # --- the SFT recipe: ranges, checked in __post_init__ before anything loads ------------------
    Case("sft-max-steps-minus-1", sft("--train.max_steps=-1"), ("--train.max_steps", ">= 1", "-1"), surface="sft"),
    Case("sft-max-steps-0", sft("--train.max_steps=0"), ("--train.max_steps",), surface="sft"),
    Case("sft-learning-rate-negative", sft("--train.learning_rate=-1"), ("--train.learning_rate", "> 0"), surface="sft"),
    Case("sft-learning-rate-0", sft("--train.learning_rate=0"), ("--train.learning_rate",), surface="sft"),
    Case("sft-batch-size-0", sft("--train.per_device_train_batch_size=0"), ("--train.per_device_train_batch_size",), surface="sft"),
    Case("sft-accumulation-0", sft("--train.gradient_accumulation_steps=0"), ("--train.gradient_accumulation_steps",),
         surface="sft"),
    Case("sft-max-length-0", sft("--train.max_length=0"), ("--train.max_length",), surface="sft"),
    Case("sft-warmup-negative", sft("--train.warmup_steps=-3"), ("--train.warmup_steps",), surface="sft"),
    Case("sft-grad-norm-0", sft("--train.max_grad_norm=0"), ("--train.max_grad_norm",), surface="sft"),
    Case("sft-save-steps-0", sft("--train.save_steps=0"), ("--train.save_steps",), surface="sft"),
    Case("sft-save-total-limit-0", sft("--train.save_total_limit=0"), ("--train.save_total_limit",), surface="sft"),
    Case("sft-max-train-rows-0", sft("--data.max_train_rows=0"), ("--data.max_train_rows",), surface="sft"),
    Case("sft-max-heldout-rows-negative", sft("--data.max_heldout_rows=-2"), ("--data.max_heldout_rows",), surface="sft"),
    Case("sft-max-tokens-50", sft("--data.max_tokens=50"), ("max_tokens", "50"), surface="sft"),
    Case("sft-lora-r-0", sft("--lora.r=0"), ("--lora.r", ">= 1"), surface="sft"),
    Case("sft-lora-alpha-0", sft("--lora.alpha=0"), ("--lora.alpha",), surface="sft"),
    Case("sft-lora-dropout-1.5", sft("--lora.dropout=1.5"), ("--lora.dropout", "< 1"), surface="sft"),
    Case("sft-lora-dropout-negative", sft("--lora.dropout=-0.1"), ("--lora.dropout",), surface="sft"),
    Case("sft-lora-no-targets", sft("--lora.target_modules=[]"), ("--lora.target_modules", "empty"), surface="sft"),
    Case("sft-bad-run-name", sft("--name=../elsewhere"), ("--name",), surface="sft"),
    Case("sft-model-path-missing", sft("--model.name_or_path=/nope/model"), ("/nope/model", "does not exist"), surface="sft"),
    Case("sft-model-path-not-a-model", sft("--model.name_or_path={tmp}/m"), ("neither a model",), surface="sft",
         files={"m/notes.txt": "x"}),
    Case("sft-paper-model-offline-not-cached", ["--runs_dir", "{tmp}/runs", "--model.quantization=none"],
         ("--model.name_or_path", "meta-llama/Llama-2-7b-chat-hf", "HF_HUB_OFFLINE"), surface="sft"),
    Case("sft-tokenizer-missing", sft("--model.tokenizer=/nope/tok"), ("/nope/tok", "--model.tokenizer"), surface="sft"),
    Case("sft-extra-missing", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/nope.txt"), ("nope.txt", "no such"),
         surface="sft"),
    Case("sft-extra-mistyped-label", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/s.txt"),
         ("s.txt:2", "speaker", "Clinet:"), surface="sft", files={"s.txt": "T: Hello there.\nClinet: I am sad.\n"}),
    Case("sft-extra-twice", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/s.txt,{tmp}/s.txt"),
         ("s.txt", "twice"), surface="sft", files={"s.txt": SESSION}),
    Case("sft-extra-on-annomi80", sft("--data.extra_transcripts={tmp}/s.txt"), ("full_plus",), surface="sft",
         files={"s.txt": SESSION}),
    Case("sft-existing-checkpoints", sft("--name=r1"), ("runs/r1", "--resume"), surface="sft",
         previous={"runs/r1/checkpoint-2/trainer_state.json": "{}"}),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
