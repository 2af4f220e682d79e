"""The RL stage's configs: GRPO (:class:`GrpoConfig`) and iterated best-vs-worst DPO
(:class:`DpoRoundsConfig`), and the command line both RL recipes share.

Both hold the sections of an RL run: the policy to continue from (``model``), the prompt set
(``prompts``), the reward (``reward``) and the held-out judging (``judge``), beside the trainer
section, TRL's own fields by TRL's own names (``grpo``: :class:`GrpoTrain`, ``dpo``:
:class:`DpoTrain`), passed through whole to ``trl.GRPOConfig`` / ``trl.DPOConfig`` with only the
arguments that depend on the run added (:meth:`RlConfig.run_args`). The project's own additions
(``run``: wandb on/off; DPO's ``rounds``, ``sampling`` and ``pairs``) are fields and sections of their
own. Defaults here; the presets are values of these types in ``recipes/rl_empathy.py`` and
``recipes/dpo_empathy.py``. Every range is checked when a config is made, before anything loads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from therapy_align.overrides import ConfigError, apply_overrides, check_range, pop_option
from therapy_align.rl.dpo_rounds import PairRule, Sampling
from therapy_align.rl.judging import JudgeConfig
from therapy_align.rl.policy_model import PolicyModel
from therapy_align.rl.prompts import PromptSet
from therapy_align.rl.reward import CONFIGS, RewardConfig
from therapy_align.trainer_args import DpoArgs, GrpoArgs
from therapy_align.training.run_recipe import RunRecipe

_STEPS = {"ge": 1, "fix": "-1 (train by epochs) is not supported here: give a step count"}


class GrpoTrain(GrpoArgs):
    """``trl.GRPOConfig``'s fields, with the bounds an RL run also relies on."""

    RANGES = {**GrpoArgs.RANGES, "max_steps": _STEPS, "logging_steps": {"ge": 1}, "max_grad_norm": {"gt": 0},
              "warmup_steps": {"ge": 0},
              "num_generations": {"ge": 2, "fix": "GRPO compares the replies of one prompt: at least 2"}}


class DpoTrain(DpoArgs):
    """``trl.DPOConfig``'s fields (``max_steps`` counts the steps of one round), with the bounds an RL
    run also relies on."""

    RANGES = {**DpoArgs.RANGES, "max_steps": _STEPS, "logging_steps": {"ge": 1}, "max_grad_norm": {"gt": 0}}


# Set from the run (its directory, name, the model and run sections, the reward), never in a trainer section.
RUN_SET = ("output_dir", "run_name", "report_to", "bf16", "fp16", "gradient_checkpointing", "use_cpu", "reward_weights")


@dataclass(frozen=True, kw_only=True)
class RlRunOptions:
    """What the project adds around TRL's trainer."""

    wandb: bool = True  # log to wandb (offline unless WANDB_MODE=online); false: no logging at all


@dataclass(frozen=True, kw_only=True)
class RlConfig(RunRecipe):
    """What both RL stages share; each adds its trainer section."""

    model: PolicyModel = field(default_factory=PolicyModel)
    prompts: PromptSet = field(default_factory=PromptSet)
    reward: RewardConfig = field(default_factory=RewardConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    run: RlRunOptions = field(default_factory=RlRunOptions)

    def check_trainer(self, section: str) -> None:
        for name in getattr(self, section):
            if name in RUN_SET:
                raise ConfigError("is set by the run, not the recipe", field=f"{section}.{name}",
                                  fix="--name, the model section and --run.wandb set it")

    def run_args(self, output_dir: str | Path, run_name: str) -> dict[str, Any]:
        """The TRL arguments that follow from the run rather than the recipe."""
        import torch

        m = self.model
        dtype = m.resolved_dtype()
        return {"output_dir": str(output_dir), "run_name": run_name, "report_to": ["wandb"] if self.run.wandb else [],
                "bf16": dtype == "bfloat16", "fp16": dtype == "float16",
                "gradient_checkpointing": m.gradient_checkpointing,
                "use_cpu": m.quantization == "none" and not torch.cuda.is_available()}


@dataclass(frozen=True, kw_only=True)
class GrpoConfig(RlConfig):
    """GRPO from the SFT adapter with the guarded reward (``therapy_align.rl.grpo``)."""

    grpo: GrpoTrain = field(default_factory=GrpoTrain)

    def __post_init__(self) -> None:
        self.check_trainer("grpo")

    def trl_args(self, run_dir: str | Path, *, reward_weights: list[float]):
        """``trl.GRPOConfig`` for a run in ``run_dir``; one reward weight per reward function."""
        return self.grpo.build(**self.run_args(run_dir, self.name), reward_weights=reward_weights)


@dataclass(frozen=True, kw_only=True)
class DpoRoundsConfig(RlConfig):
    """Iterated best-vs-worst DPO from the SFT adapter with the guarded reward (``therapy_align.rl.dpo``)."""

    rounds: int = 3  # choice: sample, score, pair and train this many times
    sampling: Sampling = field(default_factory=Sampling)
    pairs: PairRule = field(default_factory=PairRule)
    dpo: DpoTrain = field(default_factory=DpoTrain)

    def __post_init__(self) -> None:
        check_range(self, "rounds", ge=1)
        self.check_trainer("dpo")
        loss_type, weights = self.dpo.get("loss_type"), self.dpo.get("loss_weights")
        if loss_type is not None and weights is not None and len(weights) != len(loss_type):
            raise ConfigError(f"{len(weights)} weight(s) for {len(loss_type)} loss type(s)",
                              field="dpo.loss_weights", fix="give one weight per --dpo.loss_type entry")

    def trl_args(self, round_dir: str | Path, k: int):
        """``trl.DPOConfig`` for round ``k`` in ``round_dir``."""
        return self.dpo.build(**self.run_args(round_dir, f"{self.name}-round{k}"))


def recipe_main(presets: Mapping[str, RlConfig]) -> Callable[[list[str] | None], Path]:
    """An RL recipe's ``main(argv=None)``: its command line (:func:`parse_command_line`), then the
    stage's ``train`` (GRPO or DPO, by the presets' config type); a user error ends it in one line."""
    from therapy_align.errors import exit_on_user_error

    @exit_on_user_error
    def main(argv: list[str] | None = None) -> Path:
        cfg, resume = parse_command_line(presets, argv)
        if isinstance(cfg, DpoRoundsConfig):
            from therapy_align.rl.dpo import train
        else:
            from therapy_align.rl.grpo import train
        return train(cfg, resume=resume)

    return main


def parse_command_line(presets: Mapping[str, RlConfig], argv: list[str] | None) -> tuple[RlConfig, bool]:
    """``(config, resume)`` from an RL recipe's command line (``--preset``, ``--resume``, typed
    overrides), with the quantization and the SFT run to continue from checked before anything loads."""
    from therapy_align.rl.policy_model import check_sft_run
    from therapy_align.training.models import check_quantization

    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="paper", choices=presets)
    resume, argv = pop_option(argv, "resume", default=False, flag=True)
    reward_name, argv = pop_option(argv, "reward.config", default=None)
    if reward_name is not None and reward_name not in CONFIGS:
        raise ConfigError(f"{reward_name!r} is not a named reward", field="--reward.config", fix=f"choose one of {', '.join(CONFIGS)}")
    if any(a == "--reward.name" or a.startswith("--reward.name=") for a in argv):
        raise ConfigError("names the reward but leaves its weights as they are", field="--reward.name",
                          fix=f"pick a named reward with --reward.config={{{'|'.join(CONFIGS)}}}")
    cfg = presets[preset]
    if reward_name is not None:
        # A named reward swaps the weights (and the name the run records) but keeps the preset's
        # length scale, which belongs to its completion length; later --reward.* keys still apply.
        cfg = replace(cfg, reward=replace(cfg.reward, name=reward_name, weights=CONFIGS[reward_name].weights))
    cfg = apply_overrides(cfg, argv)
    check_quantization(None if cfg.model.quantization == "none" else cfg.model.quantization)
    make = {"tiny": "accelerate launch recipes/sft_paper.py --preset tiny",
            "small": "python recipes/sft_paper.py --preset small"}.get(preset, "accelerate launch recipes/sft_paper.py")
    check_sft_run(cfg.model.sft_run, make=make)
    return cfg, resume
