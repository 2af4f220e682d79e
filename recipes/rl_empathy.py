"""GRPO from the SFT model with the guarded EMP-EVAL reward: the RL follow-up the paper proposes (§6).

    accelerate launch recipes/rl_empathy.py                                   # paper: from runs/sft-annomi80, GPU 4-bit
    accelerate launch --cpu --num_processes 1 recipes/rl_empathy.py --preset tiny   # CPU, from runs/tiny-sft-annomi80
    accelerate launch recipes/rl_empathy.py --resume                          # continue a killed run
    ... --dotted.key=value overrides any field (e.g. --grpo.beta=0.1 --reward.weights.template=3)

TRL GRPOTrainer on CounselChat (train split) and annomi80 client turns (therapy_align.rl.prompts),
rewarded by therapy_align.rl.reward (EMP-EVAL with the paper's weights + guards; one TRL reward
function per term, the weights as `reward_weights`), judged every K steps on held-out Reddit
inputs by an independent EMP-EVAL (therapy_align.rl.judging -> runs/<name>/judge.jsonl). The SFT
adapter is loaded trainable; TRL keeps its frozen copy as the `ref` adapter for the KL term.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from therapy_align.errors import UserError, exit_on_user_error
from therapy_align.overrides import check_range
from therapy_align.rl.judging import TINY_JUDGE
from therapy_align.rl.policy import TINY_POLICY
from therapy_align.rl.prompts import TINY_PROMPTS
from therapy_align.rl.recipe import RlRecipe, RlTrainer, parse_rl_command_line
from therapy_align.rl.reward import TINY_REWARD


@dataclass(frozen=True, kw_only=True)
class Grpo(RlTrainer):  # + optim, max_grad_norm, seed, logging/save steps, wandb
    max_steps: int = 200  # choice, paper silent (no RL was run)
    learning_rate: float = 1e-5  # choice: common for LoRA GRPO
    beta: float = 0.04  # choice: KL to the SFT model (TRL defaults to 0 = no KL); DeepSeekMath's value
    loss_type: str = "dapo"  # TRL default, named: token-level normalisation ("grpo" is length-biased)
    num_generations: int = 8  # the issue: 8 replies per prompt
    max_completion_length: int = 256  # = evaluation's 256 new tokens
    per_device_train_batch_size: int = 8  # one prompt's 8 replies per device-step
    gradient_accumulation_steps: int = 4  # choice: 4 prompts per optimizer step
    temperature: float = 1.0  # choice: TRL default
    top_p: float = 1.0
    scale_rewards: str = "group"  # TRL default
    mask_truncated_completions: bool = False  # choice: the length term punishes overlong replies instead
    disable_dropout: bool = True  # needed with beta > 0, or KL starts non-zero from dropout noise
    warmup_steps: int = 0

    def __post_init__(self) -> None:  # ranges checked before anything loads (issue 14)
        super().__post_init__()
        check_range(self, "max_steps", ge=1, fix="-1 (train by epochs) is not supported here: give a step count")
        check_range(self, "num_generations", ge=2, fix="GRPO compares the replies of one prompt: at least 2")
        for name in ("max_completion_length", "per_device_train_batch_size", "gradient_accumulation_steps"):
            check_range(self, name, ge=1)
        check_range(self, "learning_rate", gt=0)
        check_range(self, "beta", ge=0)
        check_range(self, "warmup_steps", ge=0)
        check_range(self, "temperature", gt=0)
        check_range(self, "top_p", gt=0, le=1)


@dataclass(frozen=True, kw_only=True)
class Recipe(RlRecipe):  # + model, prompts, reward, judge sections (therapy_align.rl.recipe)
    name: str = "grpo-annomi80"  # outputs in runs/<name>/
    grpo: Grpo = field(default_factory=Grpo)


PAPER = Recipe()
# CPU, minutes: from the tiny SFT adapter (the random base never ends a reply), 2 prompts x 4
# replies of <= 48 tokens per step, 16 steps, a larger LR, 8 judging inputs every 4 steps (sampled with a
# fixed seed: the tiny model's greedy reply is nearly empty).
TINY = replace(
    PAPER, name="tiny-grpo-annomi80", preset="tiny",
    model=TINY_POLICY, prompts=TINY_PROMPTS, reward=TINY_REWARD,
    grpo=replace(PAPER.grpo, max_steps=16, learning_rate=1e-3, num_generations=4, max_completion_length=48,
                 per_device_train_batch_size=8, gradient_accumulation_steps=1, optim="adamw_torch", save_steps=4),
    judge=TINY_JUDGE,
)
PRESETS = {"paper": PAPER, "tiny": TINY}


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    cfg, resume = parse_rl_command_line(PRESETS, argv)
    from therapy_align.rl.policy import finish_run
    from therapy_align.training.sft_run import configure_wandb, newest_checkpoint

    run_dir = Path(cfg.runs_dir) / cfg.name
    checkpoint = newest_checkpoint(run_dir)
    if checkpoint is not None and not resume:
        raise UserError("already has checkpoints", file=run_dir, fix="pass --resume, or pick another --name")
    configure_wandb(run_dir, project=cfg.wandb_project, name=cfg.name)
    trainer, tokenizer, judge = make_trainer(cfg, run_dir)
    trainer.train(resume_from_checkpoint=str(checkpoint) if resume and checkpoint is not None else None)
    return finish_run(trainer, run_dir=run_dir, tokenizer=tokenizer, judge=judge, method="GRPO", tiny=cfg.preset == "tiny",
                      resumed_from=checkpoint.name if resume and checkpoint is not None else None)


def make_trainer(cfg: Recipe, run_dir: Path, *, reward_funcs=None):
    """``(GRPOTrainer, tokenizer, JudgeCallback)`` for ``cfg``; writes ``run_dir/config.json``.

    ``reward_funcs`` replaces the guarded reward and judging (weights 1.0, judge None): the GPU
    check (issue 13) times a step where no EMP-EVAL artifact exists."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from therapy_align.rl.judging import JudgeCallback
    from therapy_align.rl.policy import load_policy, write_config
    from therapy_align.rl.prompts import rl_prompt_dataset
    from therapy_align.rl.reward import GuardedReward, reward_evaluator

    m, g = cfg.model, cfg.grpo
    # The tiny preset may train a quick (flagged) evaluator when artifacts/empeval is missing.
    if reward_funcs is None:
        reward_cfg, _ = reward_evaluator(cfg.reward, allow_quick=cfg.preset == "tiny")  # tiny: a quick one if missing
        cfg = replace(cfg, reward=reward_cfg)
    args = GRPOConfig(
        output_dir=str(run_dir), run_name=cfg.name, report_to=["wandb"] if g.wandb else [],
        max_steps=g.max_steps, learning_rate=g.learning_rate, beta=g.beta, loss_type=g.loss_type,
        num_generations=g.num_generations, max_completion_length=g.max_completion_length,
        per_device_train_batch_size=g.per_device_train_batch_size, gradient_accumulation_steps=g.gradient_accumulation_steps,
        temperature=g.temperature, top_p=g.top_p, scale_rewards=g.scale_rewards,
        mask_truncated_completions=g.mask_truncated_completions, disable_dropout=g.disable_dropout,
        optim=g.optim, warmup_steps=g.warmup_steps, max_grad_norm=g.max_grad_norm, seed=g.seed, data_seed=g.seed,
        bf16=m.dtype == "bfloat16", fp16=m.dtype == "float16", gradient_checkpointing=m.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False}, logging_steps=g.logging_steps,
        save_strategy="steps", save_steps=g.save_steps, reward_weights=None,  # set below, per active term
        use_cpu=m.quantization == "none" and not torch.cuda.is_available(), dataloader_num_workers=0,
    )
    reward = GuardedReward(cfg.reward) if reward_funcs is None else None
    args.reward_weights = reward.trl_weights() if reward is not None else [1.0] * len(reward_funcs)
    model, tokenizer, base = load_policy(m.sft_run, quantization=m.quantization, dtype=m.dtype,
                                         gradient_checkpointing=m.gradient_checkpointing)
    with args.main_process_first(desc="build RL prompts"):
        prompts = rl_prompt_dataset(cfg.prompts, shuffle_seed=g.seed)
    if args.process_index == 0:
        write_config(run_dir, cfg, base_model=base, sft_run=m.sft_run, quantization=m.quantization)
    judge = None if reward is None else JudgeCallback(cfg.judge, reward=GuardedReward(cfg.reward), tokenizer=tokenizer,
                                                      out=run_dir / "judge.jsonl",
                                                      allow_quick=cfg.preset == "tiny")
    trainer = GRPOTrainer(model=model, reward_funcs=reward.trl_reward_funcs() if reward is not None else list(reward_funcs),
                          args=args, train_dataset=prompts, processing_class=tokenizer, callbacks=[judge] if judge else [])
    return trainer, tokenizer, judge


if __name__ == "__main__":
    main()
