"""The sections both RL recipes share (GRPO and iterated DPO): the policy to continue from, the
prompt set, the reward and the held-out judging. Each recipe adds its trainer's section."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from therapy_align.overrides import apply_overrides, check_range, pop_option

from therapy_align.rl.judging import JudgeConfig
from therapy_align.rl.policy import PolicyModel, check_sft_run
from therapy_align.rl.prompts import PromptSet
from therapy_align.rl.reward import RewardConfig
from therapy_align.training.models import check_quantization
from therapy_align.training.run_recipe import RunRecipe


@dataclass(frozen=True, kw_only=True)
class RlTrainer:
    """Trainer fields both RL trainer sections share (``grpo``, ``dpo``); each adds its own."""

    optim: str = "paged_adamw_8bit"  # as SFT
    max_grad_norm: float = 1.0
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 25
    wandb: bool = True

    def __post_init__(self) -> None:  # ranges checked before anything loads (issue 14)
        for name in ("logging_steps", "save_steps"):
            check_range(self, name, ge=1)
        check_range(self, "max_grad_norm", gt=0)


@dataclass(frozen=True, kw_only=True)
class RlRecipe(RunRecipe):
    model: PolicyModel = field(default_factory=PolicyModel)
    prompts: PromptSet = field(default_factory=PromptSet)
    reward: RewardConfig = field(default_factory=RewardConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)


def parse_rl_command_line(presets: Mapping[str, RlRecipe], argv: list[str] | None) -> tuple[RlRecipe, bool]:
    """``(config, resume)`` from an RL recipe's command line (``--preset``, ``--resume``, typed
    overrides), with the quantization and the SFT run to continue from checked before anything loads."""
    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="paper", choices=presets)
    resume, argv = pop_option(argv, "resume", default=False, flag=True)
    cfg = apply_overrides(presets[preset], argv)
    check_quantization(None if cfg.model.quantization == "none" else cfg.model.quantization)
    check_sft_run(cfg.model.sft_run, make=f"accelerate launch recipes/sft_paper.py{' --preset tiny' if preset == 'tiny' else ''}")
    return cfg, resume
