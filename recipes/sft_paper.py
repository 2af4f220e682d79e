"""Masked-loss LoRA SFT of Llama-2-7b-chat on AnnoMI: the paper's §4 training, §2.2.1 data.

    accelerate launch recipes/sft_paper.py                                  # 80% model (annomi80), GPU
    accelerate launch recipes/sft_paper.py --variant full_plus --data.extra_transcripts=a.txt,b.txt
    accelerate launch recipes/sft_paper.py --preset tiny                    # CPU, a few minutes
    accelerate launch --config_file recipes/accelerate/fsdp_qlora.yaml recipes/sft_paper.py --resume
    accelerate launch --multi_gpu --num_processes 2 recipes/sft_paper.py --preset tiny   # 2 CPU procs, gloo
    ... --dotted.key=value overrides any field below (e.g. --lora.r=16); --resume continues
    from the newest checkpoint in runs/<name>/. The untrained base is not a run: evaluate the
    named model "base" (or "tiny-base"), see therapy_align.training.models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from therapy_align.data.dataset_build import BuildConfig
from therapy_align.errors import UserError, exit_on_user_error
from therapy_align.training.models import PAPER_BASE_MODEL, TINY_BASE_DIR, check_hub_reachable, check_quantization
from therapy_align.training.run_recipe import RunRecipe
from therapy_align.overrides import ConfigError, apply_overrides, check_range, pop_option
from therapy_align.data.transcripts import load_plain_transcript
from therapy_align.paths import check_tokenizer_ref


@dataclass(frozen=True, kw_only=True)
class Model:
    name_or_path: str = PAPER_BASE_MODEL  # §4: Llama-2 7B, "pretrained for chat abilities"
    tokenizer: str | None = None  # None: ../shared/tokenizers/llama-2 or $THERAPY_ALIGN_TOKENIZER
    quantization: Literal["4bit", "8bit", "none"] = "4bit"  # §4 "bits and bytes"; width not given: chose NF4 (QLoRA)
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"  # paper silent: chose bf16
    gradient_checkpointing: bool = True  # paper silent: memory for 4096-token chunks


@dataclass(frozen=True, kw_only=True)
class Lora:
    r: int = 8  # paper silent: 8, as the HF bnb-4bit notebook whose alpha/dropout/accumulation §4 matches
    alpha: int = 32  # §4 lora_alpha = 32
    dropout: float = 0.05  # §4 lora_dropout = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # paper silent: PEFT's default for Llama
    modules_to_save: tuple[str, ...] = ()  # paper silent: none (fully trained modules, by name suffix)

    def __post_init__(self) -> None:  # ranges checked before anything loads
        check_range(self, "r", ge=1)
        check_range(self, "alpha", gt=0)
        check_range(self, "dropout", ge=0, lt=1)
        if not self.target_modules:
            raise ConfigError("is empty", field="target_modules", fix="name at least one module (e.g. q_proj,v_proj)")


@dataclass(frozen=True, kw_only=True)
class Data(BuildConfig):  # every data-build knob (opener_policy, cleaning.*, ...) is a --data.* override
    split: Literal["annomi80", "full_plus"] = "annomi80"  # §2.2.1: 80% of good AnnoMI / 100% + 2 sessions
    system_prompt: str = "standard"  # §4: the standard Llama-2 system prompt in training
    max_tokens: int = 4096  # §2.2.1/§3: chunks fit the 4096-token context
    extra_transcripts: tuple[str, ...] = ()  # §2.2.1: the 2 extra sessions (your files; full_plus only)
    seed: int = 0  # paper silent: seeded 80/20 split
    max_train_rows: int | None = None  # not in the paper: subsample (tests, benchmarks)
    max_heldout_rows: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tokenizer is not None:  # one tokenizer for data and model
            raise ConfigError("the data is built with the model's tokenizer", field="data.tokenizer",
                              fix="set --model.tokenizer instead")


@dataclass(frozen=True, kw_only=True)
class Train:
    max_steps: int = 100  # §4 max_steps = 100
    gradient_accumulation_steps: int = 4  # §4 gradient_accumulation_steps = 4
    learning_rate: float = 2e-5  # §4 learning_rate = 2e-5
    per_device_train_batch_size: int = 1  # paper silent: 1 (notebook above); 4096-token rows
    max_length: int = 4096  # §3 context; chunks already fit, so nothing is cut
    padding_free: bool = False  # not in the paper: no padding (flattened batch); helps when batch > 1
    group_by_length: bool = False  # not in the paper: batches of similar length
    lr_scheduler_type: str = "linear"  # paper silent: HF Trainer default
    warmup_steps: int = 0  # paper silent: HF Trainer default
    optim: str = "paged_adamw_8bit"  # paper silent: the bnb-4bit notebook's optimizer
    weight_decay: float = 0.0  # paper silent: HF default
    max_grad_norm: float = 1.0  # paper silent: HF default
    seed: int = 42  # paper silent: HF default (also the data-order seed)
    logging_steps: int = 1
    save_steps: int = 25  # checkpoint cadence for --resume
    save_total_limit: int | None = None
    heldout_eval: bool = True  # held-out loss at step 0 and at the end
    wandb: bool = True

    def __post_init__(self) -> None:  # ranges checked before anything loads
        check_range(self, "max_steps", ge=1, fix="-1 (train by epochs) is not supported here: give a step count")
        for name in ("gradient_accumulation_steps", "per_device_train_batch_size", "max_length", "logging_steps",
                     "save_steps"):
            check_range(self, name, ge=1)
        check_range(self, "learning_rate", gt=0)
        for name in ("warmup_steps", "weight_decay"):
            check_range(self, name, ge=0)
        check_range(self, "max_grad_norm", gt=0)
        check_range(self, "save_total_limit", ge=1, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class Recipe(RunRecipe):  # + preset, runs_dir, wandb_project (therapy_align.training.run_recipe)
    name: str = "sft-annomi80"  # outputs in runs/<name>/
    model: Model = field(default_factory=Model)
    lora: Lora = field(default_factory=Lora)
    data: Data = field(default_factory=Data)
    train: Train = field(default_factory=Train)

    def __post_init__(self) -> None:  # ranges checked before anything loads
        check_range(self.data, "max_train_rows", ge=1, allow_none=True)
        check_range(self.data, "max_heldout_rows", ge=1, allow_none=True)
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"{self.name!r} is not a run name", field="name", fix="give a plain directory name")


PAPER = Recipe()
# CPU, minutes: random-init tiny Llama-2 (real tokenizer), 512-token chunks, a small held-out
# sample; larger LR, all-linear LoRA, and the output layer and final norm fully trained
# (modules_to_save): a random model's frozen output layer caps what LoRA alone can learn
# (held-out 10.38 -> 10.15 without, -> 5.85 with; docs/sft.md); fp32, no checkpointing,
# length-grouped padded batches of 4 (faster on CPU than padding-free 2x2: benchmarks/).
TINY = replace(
    PAPER, name="tiny-sft-annomi80", preset="tiny",
    model=replace(PAPER.model, name_or_path=TINY_BASE_DIR, quantization="none", dtype="float32", gradient_checkpointing=False),
    lora=replace(PAPER.lora, r=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                 modules_to_save=("lm_head", "norm")),
    data=replace(PAPER.data, max_tokens=512, max_heldout_rows=16),
    train=replace(PAPER.train, max_steps=30, learning_rate=1e-2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                  max_length=512, padding_free=False, group_by_length=True, optim="adamw_torch", save_steps=10, warmup_steps=2),
)
PRESETS = {"paper": PAPER, "tiny": TINY}


def variant(config: Recipe, split: str) -> Recipe:
    """The paper's two trained models; the third (untrained base) is models' named "base"."""
    prefix = "tiny-" if config.preset == "tiny" else ""
    return replace(config, name=f"{prefix}sft-{split}", data=replace(config.data, split=split))


def main(argv: list[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="paper", choices=PRESETS)
    split, argv = pop_option(argv, "variant", default="annomi80", choices=("annomi80", "full_plus"))
    resume, argv = pop_option(argv, "resume", default=False, flag=True)
    cfg = apply_overrides(variant(PRESETS[preset], split), argv)
    check_quantization(cfg.model.quantization)  # 4-bit without CUDA: fail before any heavy work
    if cfg.model.name_or_path not in ("tiny-base", TINY_BASE_DIR):  # the tiny base is made on demand
        check_hub_reachable(cfg.model.name_or_path, field="--model.name_or_path")  # a missing path, or an uncached hub id offline, fails here
    if cfg.model.tokenizer is not None:
        check_tokenizer_ref(cfg.model.tokenizer, field="--model.tokenizer")
    for path in cfg.data.extra_transcripts:  # a missing or malformed session fails here, not after the imports
        load_plain_transcript(path)
    from therapy_align.training import sft_run

    run_dir = Path(cfg.runs_dir) / cfg.name
    if not resume and sft_run.newest_checkpoint(run_dir) is not None:
        raise UserError("already has checkpoints", file=run_dir, fix="pass --resume, or pick another --name")
    sft_run.configure_wandb(run_dir, project=cfg.wandb_project, name=cfg.name)
    trainer, tokenizer = make_trainer(cfg, run_dir)
    return sft_run.train_and_save(trainer, cfg, run_dir, tokenizer, resume=resume, heldout=cfg.train.heldout_eval)


def make_trainer(cfg: Recipe, run_dir: Path):
    """``(SFTTrainer, tokenizer)`` for ``cfg``, writing ``run_dir/config.json``."""
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from therapy_align.training import sft_run
    from therapy_align.data.chat_format import load_tokenizer
    from therapy_align.training.models import load_causal_lm

    m, t = cfg.model, cfg.train
    args = SFTConfig(
        output_dir=str(run_dir), run_name=cfg.name, report_to=["wandb"] if t.wandb else [],
        max_steps=t.max_steps, gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate, per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_train_batch_size,
        lr_scheduler_type=t.lr_scheduler_type, warmup_steps=t.warmup_steps, optim=t.optim,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, seed=t.seed, data_seed=t.seed,
        bf16=m.dtype == "bfloat16", fp16=m.dtype == "float16",
        gradient_checkpointing=m.gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, eval_strategy="no",
        # The labels column already carries the §4 mask (-100 off therapist tokens): TRL uses it as is.
        assistant_only_loss=False, completion_only_loss=False, loss_type="nll", packing=False,
        padding_free=t.padding_free, pad_to_multiple_of=None, eos_token="</s>",
        # Rows are pre-truncated by sft_run.sft_dataset; TRL refuses max_length with padding_free.
        max_length=None if t.padding_free else t.max_length, truncation_mode="keep_start",
        dataset_text_field="text",  # unused: the dataset is pre-tokenized
        shuffle_dataset=False,  # the trainer's seeded sampler shuffles
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        remove_unused_columns=True, dataloader_num_workers=0, ddp_find_unused_parameters=False,
        use_cpu=m.quantization == "none" and _cpu_only(), save_only_model=False,
    )
    tokenizer = load_tokenizer(m.tokenizer)
    with args.main_process_first(desc="build SFT data"):
        data = sft_run.sft_dataset(cfg.data, tokenizer=tokenizer, max_length=t.max_length,
                                   summary_out=run_dir / sft_run.DATA_SUMMARY if args.process_index == 0 else None)
    if args.process_index == 0:
        sft_run.write_run_config(run_dir, cfg, base_model_ref=m.name_or_path, quantization=m.quantization)
    model = load_causal_lm(m.name_or_path, quantization=None if m.quantization == "none" else m.quantization, dtype=m.dtype)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), modules_to_save=list(cfg.lora.modules_to_save) or None,
                      bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=data["train"], eval_dataset=data["heldout"],
                         processing_class=tokenizer, peft_config=lora)
    return trainer, tokenizer


def _cpu_only() -> bool:  # no CUDA, or ACCELERATE_USE_CPU=true (multi-process CPU runs use gloo)
    import os

    import torch

    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")


if __name__ == "__main__":
    exit_on_user_error(main)()
