"""Masked-loss LoRA SFT of Llama-2-7b-chat on AnnoMI: the paper's §4 training, §2.2.1 data.

    accelerate launch recipes/sft_paper.py                                  # 80% model (annomi80), GPU
    accelerate launch recipes/sft_paper.py --variant full_plus --data.extra_transcripts=a.txt,b.txt
    python recipes/sft_paper.py --preset small                              # Gemma 3 270M, CPU, minutes
    accelerate launch recipes/sft_paper.py --preset tiny                    # CPU, a few minutes
    accelerate launch --config_file recipes/accelerate/fsdp_qlora.yaml recipes/sft_paper.py --resume
    accelerate launch --multi_gpu --num_processes 2 recipes/sft_paper.py --preset tiny   # 2 CPU procs, gloo
    ... --dotted.key=value overrides any field (--lora.r=16, --train.<any trl.SFTConfig field>,
    --run.wandb=false; --help lists them); --resume continues from the newest checkpoint in
    runs/<name>/. The untrained base is not a run: evaluate the named model "base" (or "tiny-base").

The config type, the training and the run directory: therapy_align.training.config / .sft_run.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from therapy_align.errors import exit_on_user_error
from therapy_align.overrides import apply_overrides, pop_option
from therapy_align.trainer_args import SftArgs
from therapy_align.training.config import SftConfig, SftData, SftLora, SftModel
from therapy_align.training.models import PAPER_BASE_MODEL, TINY_BASE_DIR

PAPER = SftConfig(
    name="sft-annomi80",
    model=SftModel(
        name_or_path=PAPER_BASE_MODEL,  # §4: Llama-2 7B, "pretrained for chat abilities"
        quantization="4bit",  # §4 "bits and bytes"; width not given: chose NF4 (QLoRA)
        dtype="bfloat16",  # paper silent: chose bf16
        gradient_checkpointing=True,  # paper silent: memory for 4096-token chunks
    ),
    lora=SftLora(
        r=8,  # paper silent: 8, as the HF bnb-4bit notebook whose alpha/dropout/accumulation §4 matches
        alpha=32,  # §4 lora_alpha = 32
        dropout=0.05,  # §4 lora_dropout = 0.05
        target_modules=("q_proj", "v_proj"),  # paper silent: PEFT's default for Llama
        modules_to_save=(),  # paper silent: no module trained in full
    ),
    data=SftData(
        split="annomi80",  # §2.2.1: 80% of good AnnoMI (full_plus: 100% + 2 sessions, --variant)
        system_prompt="standard",  # §4: the standard Llama-2 system prompt in training
        max_tokens=4096,  # §2.2.1/§3: chunks fit the 4096-token context
        extra_transcripts=(),  # §2.2.1: the 2 extra sessions (your files; full_plus only)
        seed=0,  # paper silent: seeded 80/20 split
    ),
    train=SftArgs(  # trl.SFTConfig, by TRL's names
        max_steps=100,  # §4 max_steps = 100
        gradient_accumulation_steps=4,  # §4 gradient_accumulation_steps = 4
        learning_rate=2e-5,  # §4 learning_rate = 2e-5
        per_device_train_batch_size=1,  # paper silent: 1 (notebook above); 4096-token rows
        max_length=4096,  # §3 context; chunks already fit, so nothing is cut
        optim="paged_adamw_8bit",  # paper silent: the bnb-4bit notebook's optimizer
        # paper silent, the HF Trainer's defaults, named: the data order follows `seed` (42)
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, seed=42,
        train_sampling_strategy="random", padding_free=False,
        logging_steps=1, save_strategy="steps", save_steps=25, save_total_limit=None, eval_strategy="no",
        gradient_checkpointing_kwargs={"use_reentrant": False}, save_only_model=False,
        # the data is pre-tokenized and its labels column already carries the §4 mask (-100 off
        # therapist tokens): TRL uses it as is, adds no second mask and packs nothing
        assistant_only_loss=False, completion_only_loss=False, loss_type="nll", packing=False,
        pad_to_multiple_of=None, eos_token="</s>", truncation_mode="keep_start",
        dataset_text_field="text",  # unused: the dataset is pre-tokenized
        shuffle_dataset=False,  # the trainer's seeded sampler shuffles
        remove_unused_columns=True, dataloader_num_workers=0, ddp_find_unused_parameters=False,
    ),
)
# CPU, minutes: random-init tiny Llama-2 (real tokenizer), 512-token chunks, a small held-out
# sample; larger LR, all-linear LoRA, and the output layer and final norm trained in full
# (modules_to_save): a random model's frozen output layer caps what LoRA alone can learn
# (docs/sft.md); fp32, no checkpointing, length-grouped padded batches of 4 (faster on CPU than
# padding-free 2x2: benchmarks/).
TINY = replace(
    PAPER, name="tiny-sft-annomi80", preset="tiny",
    model=replace(PAPER.model, name_or_path=TINY_BASE_DIR, quantization="none", dtype="float32", gradient_checkpointing=False),
    lora=replace(PAPER.lora, r=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                 modules_to_save=("lm_head", "norm")),
    data=replace(PAPER.data, max_tokens=512, max_heldout_rows=16),
    train=PAPER.train.replace(max_steps=30, learning_rate=1e-2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                              max_length=512, train_sampling_strategy="group_by_length", optim="adamw_torch",
                              save_steps=10, warmup_steps=2),
)
# The real small model on the CPU: Gemma 3 270M (base; ``therapy-align model prepare gemma-3-270m``,
# Gemma Terms of Use), LoRA on every linear layer of the decoder, 512-token chunks, fp32 on the CPU
# and bf16 on a GPU. A pretrained model takes a LoRA learning rate (1e-4 .. 2e-4, not the paper's
# 2e-5 over 100 x 4 x 4096 tokens) to move in the few steps a CPU affords: 24 steps x 2 chunks is
# about 24k tokens, minutes on two cores. Chat replies end at <end_of_turn>, Gemma's end of a turn.
SMALL = replace(
    PAPER, name="small-sft-annomi80", preset="small",
    model=replace(PAPER.model, name_or_path="gemma-3-270m", quantization="none", dtype="auto", gradient_checkpointing=False),
    lora=replace(PAPER.lora, r=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
    data=replace(PAPER.data, max_tokens=512, max_heldout_rows=24),
    train=PAPER.train.replace(max_steps=24, learning_rate=2e-4, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                              max_length=512, train_sampling_strategy="group_by_length", optim="adamw_torch",
                              save_steps=8, warmup_steps=2, eos_token="<end_of_turn>"),
    run=replace(PAPER.run, supervised_logits_only=True),  # the head at therapist tokens only: faster on the CPU
)
PRESETS = {"paper": PAPER, "small": SMALL, "tiny": TINY}


def variant(config: SftConfig, split: str) -> SftConfig:
    """The paper's two trained models; the third (untrained base) is models' named "base"."""
    prefix = f"{config.preset}-" if config.preset in ("tiny", "small") else ""
    return replace(config, name=f"{prefix}sft-{split}", data=replace(config.data, split=split))


def main(argv: list[str] | None = None):
    from therapy_align.training.sft_run import train

    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="paper", choices=PRESETS)
    split, argv = pop_option(argv, "variant", default="annomi80", choices=("annomi80", "full_plus"))
    resume, argv = pop_option(argv, "resume", default=False, flag=True)
    return train(apply_overrides(variant(PRESETS[preset], split), argv), resume=resume)


if __name__ == "__main__":
    exit_on_user_error(main)()
