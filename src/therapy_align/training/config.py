"""The SFT stage's config: one frozen value that :func:`therapy_align.training.sft_run.train` takes.

    cfg = SftConfig(name="sft-annomi80", train=SftArgs(max_steps=100, learning_rate=2e-5, ...))
    cfg = apply_overrides(cfg, ["--lora.r=16", "--train.learning_rate=1e-4", "--run.wandb=false"])

Sections: ``model`` (what is loaded, and how), ``lora`` (the adapter), ``data`` (every data-build knob
of :class:`~therapy_align.data.dataset_build.BuildConfig` plus row limits), ``train`` (TRL's
``SFTConfig`` fields by TRL's own names, passed through whole; see :mod:`therapy_align.trainer_args`)
and ``run`` (what the project adds around the trainer). Defaults here are the library's; the
paper's settings, with their provenance, are the presets of ``recipes/sft_paper.py``. Every range
is checked when a value is made, so a bad override fails before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from therapy_align.data.dataset_build import BuildConfig
from therapy_align.overrides import ConfigError, check_finite_numbers, check_range
from therapy_align.trainer_args import SftArgs
from therapy_align.training.models import PAPER_BASE_MODEL
from therapy_align.training.run_recipe import RunRecipe


@dataclass(frozen=True, kw_only=True)
class SftModel:
    name_or_path: str = PAPER_BASE_MODEL  # a hub id, a model or run directory, or a registered name
    # None: the model's own (a registered model other than Llama-2, a directory holding one), else
    # ../shared/tokenizers/llama-2 or $THERAPY_ALIGN_TOKENIZER
    tokenizer: str | None = None
    quantization: Literal["4bit", "8bit", "none"] = "4bit"  # bitsandbytes; 4bit is NF4 (QLoRA)
    # also the trainer's mixed precision; "auto": bfloat16 where CUDA is visible, float32 on the CPU
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    gradient_checkpointing: bool = True  # memory for long chunks, paid in compute

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        import torch

        return "bfloat16" if torch.cuda.is_available() else "float32"


@dataclass(frozen=True, kw_only=True)
class SftLora:
    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # PEFT's default for Llama
    modules_to_save: tuple[str, ...] = ()  # modules trained in full, by name suffix

    def __post_init__(self) -> None:
        check_finite_numbers(self)
        check_range(self, "r", ge=1)
        check_range(self, "alpha", gt=0)
        check_range(self, "dropout", ge=0, lt=1)
        if not self.target_modules:
            raise ConfigError("is empty", field="target_modules", fix="name at least one module (e.g. q_proj,v_proj)")


@dataclass(frozen=True, kw_only=True)
class SftData(BuildConfig):
    """The data build (every :class:`BuildConfig` knob is a ``--data.*`` override) and row limits."""

    split: Literal["annomi80", "full_plus"] = "annomi80"
    max_train_rows: int | None = None  # an evenly spaced sample of the rows (tests, benchmarks)
    max_heldout_rows: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(self, "max_train_rows", ge=1, allow_none=True)
        check_range(self, "max_heldout_rows", ge=1, allow_none=True)
        if self.tokenizer is not None:  # one tokenizer for data and model
            raise ConfigError("the data is built with the model's tokenizer", field="data.tokenizer",
                              fix="set --model.tokenizer instead")


@dataclass(frozen=True, kw_only=True)
class SftRunOptions:
    """What the project adds around TRL's trainer."""

    heldout_eval: bool = True  # held-out loss at step 0 and at the end (metrics.json, model card)
    wandb: bool = True  # log to wandb (offline unless WANDB_MODE says otherwise)
    # Project the output head only at supervised (therapist) positions on every device. TRL does so
    # on CUDA only; on the CPU it projects every position and discards the unsupervised ones, which
    # with a large vocabulary (Gemma's 262k) is most of a step. Same loss, up to float rounding
    # (therapy_align.training.supervised_head; benchmarks/sft_supervised_head.py).
    supervised_logits_only: bool = False


@dataclass(frozen=True, kw_only=True)
class SftConfig(RunRecipe):
    """One SFT run: outputs in ``<runs_dir>/<name>/`` (+ ``preset``, ``wandb_project``)."""

    name: str = "sft-annomi80"
    model: SftModel = field(default_factory=SftModel)
    lora: SftLora = field(default_factory=SftLora)
    data: SftData = field(default_factory=SftData)
    train: SftArgs = field(default_factory=SftArgs)  # trl.SFTConfig fields; unset ones keep TRL's defaults
    run: SftRunOptions = field(default_factory=SftRunOptions)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"{self.name!r} is not a run name", field="name", fix="give a plain directory name")
