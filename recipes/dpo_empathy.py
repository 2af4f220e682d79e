"""Iterated best-vs-worst DPO from the SFT model with the guarded EMP-EVAL reward (paper §6's RL follow-up).

    accelerate launch recipes/dpo_empathy.py                                   # paper: from runs/sft-annomi80, GPU 4-bit
    accelerate launch --cpu --num_processes 1 recipes/dpo_empathy.py --preset tiny   # CPU, from runs/tiny-sft-annomi80
    accelerate launch recipes/dpo_empathy.py --resume                          # continue a killed run (any round, any step)
    ... --dotted.key=value overrides any field (e.g. --pairs.min_margin=1.0 --dpo.beta=0.05)

Each round (therapy_align.rl.dpo_rounds): sample N replies per prompt from the current policy, score
them with therapy_align.rl.reward (the GRPO recipe's reward), keep the best-vs-worst pair among
length-matched replies when the margin clears the threshold, train TRL DPOTrainer on the pairs. The
policy continues round to round; the reference is always the frozen SFT adapter (TRL's `ref`
adapter, reset to the SFT weights each round). Pairs of every round are saved with every reward term.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from therapy_align.errors import UserError, exit_on_user_error
from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.overrides import ConfigError, check_range
from therapy_align.rl.dpo_rounds import PairRule
from therapy_align.rl.judging import TINY_JUDGE
from therapy_align.rl.policy import TINY_POLICY
from therapy_align.rl.prompts import TINY_PROMPTS
from therapy_align.rl.recipe import RlRecipe, RlTrainer, parse_rl_command_line
from therapy_align.rl.reward import TINY_REWARD


@dataclass(frozen=True, kw_only=True)
class Sampling:
    n_per_prompt: int = 4  # choice: N replies per prompt
    prompts_per_round: int = 256  # choice: fresh prompts each round (rounds take disjoint slices)
    generation: GenerationSpec = field(default_factory=lambda: GenerationSpec(
        do_sample=True, temperature=1.0, top_p=0.95, max_new_tokens=256, batch_size=8))  # 256 = evaluation's budget

    def __post_init__(self) -> None:  # ranges checked before anything loads (issue 14)
        check_range(self, "n_per_prompt", ge=2, fix="a preference pair needs at least 2 replies per prompt")
        check_range(self, "prompts_per_round", ge=1)


@dataclass(frozen=True, kw_only=True)
class Dpo(RlTrainer):  # + optim, max_grad_norm, seed, logging/save steps, wandb
    rounds: int = 3  # choice: iterated DPO rounds
    steps_per_round: int = 50  # choice
    learning_rate: float = 5e-6  # choice: common for LoRA DPO
    beta: float = 0.1  # TRL default
    loss_type: tuple[str, ...] = ("sigmoid", "sft")  # RPO: DPO + NLL on chosen (keeps replies fluent)
    loss_weights: tuple[float, ...] = (1.0, 0.2)  # choice
    ld_alpha: float | None = None  # TRL's length-desensitisation; off: the pair rule already matches lengths
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_length: int = 1024  # prompt + reply tokens

    def __post_init__(self) -> None:  # ranges checked before anything loads (issue 14)
        super().__post_init__()
        for name in ("rounds", "steps_per_round", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "max_length"):
            check_range(self, name, ge=1)
        check_range(self, "learning_rate", gt=0)
        check_range(self, "beta", gt=0)
        if len(self.loss_weights) != len(self.loss_type):
            raise ConfigError(f"{len(self.loss_weights)} weight(s) for {len(self.loss_type)} loss type(s)",
                              field="loss_weights", fix="give one weight per --dpo.loss_type entry")


@dataclass(frozen=True, kw_only=True)
class Recipe(RlRecipe):  # + model, prompts, reward, judge sections (therapy_align.rl.recipe)
    name: str = "dpo-annomi80"  # outputs in runs/<name>/
    sampling: Sampling = field(default_factory=Sampling)
    pairs: PairRule = field(default_factory=PairRule)
    dpo: Dpo = field(default_factory=Dpo)


PAPER = Recipe()
# CPU, minutes: from the tiny SFT adapter, 2 rounds of 32 prompts x 4 replies of <= 48 tokens,
# a lower margin (the tiny policy's replies differ little), larger LR, 8 sampled judging inputs.
TINY = replace(
    PAPER, name="tiny-dpo-annomi80", preset="tiny",
    model=TINY_POLICY, prompts=TINY_PROMPTS, reward=TINY_REWARD,
    sampling=Sampling(n_per_prompt=4, prompts_per_round=32,
                      generation=GenerationSpec(do_sample=True, top_p=0.95, max_new_tokens=48, batch_size=16)),
    pairs=PairRule(min_margin=0.3, max_length_ratio=1.5),
    dpo=replace(PAPER.dpo, rounds=2, steps_per_round=10, learning_rate=1e-3, per_device_train_batch_size=4,
                gradient_accumulation_steps=1, max_length=384, optim="adamw_torch", save_steps=5),
    judge=replace(TINY_JUDGE, every_steps=5),
)
PRESETS = {"paper": PAPER, "tiny": TINY}


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    cfg, resume = parse_rl_command_line(PRESETS, argv)
    from therapy_align.rl.policy import finish_run
    from therapy_align.training.sft_run import configure_wandb

    run_dir = Path(cfg.runs_dir) / cfg.name
    if (run_dir / "config.json").exists() and not resume:
        raise UserError("already holds a DPO run", file=run_dir, fix="pass --resume, or pick another --name")
    configure_wandb(run_dir, project=cfg.wandb_project, name=cfg.name)
    trainer = tokenizer = judge = None
    resumed_from = None
    for k in range(1, cfg.dpo.rounds + 1):
        if (run_dir / f"round-{k}" / "adapter" / "adapter_config.json").is_file():
            resumed_from = f"round-{k}"
            continue  # finished round
        trainer, tokenizer, judge, checkpoint = run_round(cfg, run_dir, k)
        resumed_from = resumed_from or (f"round-{k}/{checkpoint.name}" if checkpoint else None)
    if trainer is None:  # every round was already done: rebuild the last one's trainer to finish the run
        trainer, tokenizer, judge, _ = run_round(cfg, run_dir, cfg.dpo.rounds, train=False)
    return finish_run(trainer, run_dir=run_dir, tokenizer=tokenizer, judge=judge, method="Iterated DPO",
                      tiny=cfg.preset == "tiny", resumed_from=resumed_from)


def run_round(cfg: Recipe, run_dir: Path, k: int, *, train: bool = True):
    """Sample, score, pair and train round ``k``; returns ``(trainer, tokenizer, judge, checkpoint)``."""
    import torch
    from trl import DPOConfig, DPOTrainer

    from datasets import Dataset

    from therapy_align.rl import dpo_rounds
    from therapy_align.rl.judging import JudgeCallback
    from therapy_align.rl.policy import load_policy, write_config
    from therapy_align.rl.prompts import rl_prompt_rows
    from therapy_align.rl.reward import GuardedReward, reward_evaluator
    from therapy_align.training.sft_run import newest_checkpoint

    m, d, s = cfg.model, cfg.dpo, cfg.sampling
    reward_cfg, _ = reward_evaluator(cfg.reward, allow_quick=cfg.preset == "tiny")  # tiny: a quick one if missing
    cfg = replace(cfg, reward=reward_cfg)
    round_dir = run_dir / f"round-{k}"
    policy, tokenizer, base = load_policy(m.sft_run, quantization=m.quantization, dtype=m.dtype,
                                          gradient_checkpointing=m.gradient_checkpointing)
    previous = run_dir / f"round-{k - 1}" / "adapter" if k > 1 else Path(m.sft_run) / "adapter"
    if k > 1:
        dpo_rounds.load_adapter_weights(policy, previous, "default")
    write_config(run_dir, cfg, base_model=base, sft_run=m.sft_run, quantization=m.quantization)
    rows = rl_prompt_rows(cfg.prompts)
    import random

    random.Random(d.seed).shuffle(rows)
    rows = rows[(k - 1) * s.prompts_per_round:k * s.prompts_per_round] or rows[:s.prompts_per_round]
    reward = GuardedReward(cfg.reward)
    pairs_path = round_dir / "pairs.jsonl"
    if train or not pairs_path.is_file():
        print(f"round {k}: sampling {s.n_per_prompt} replies x {len(rows)} prompts", file=sys.stderr)
        samples = dpo_rounds.sample_round(policy, tokenizer, rows, n=s.n_per_prompt, spec=s.generation,
                                          out=round_dir / "samples.jsonl", policy=dpo_rounds.adapter_digest(previous))
        scored = dpo_rounds.score_round(reward, samples, rows, out=round_dir / "scored.jsonl")
        pairs = dpo_rounds.build_pairs(scored, rows, cfg.pairs, out_dir=round_dir)
    else:
        from therapy_align.rl.judging import read_rows

        pairs = read_rows(pairs_path)
    if not pairs:
        raise UserError("no pair cleared the rule in this round", file=round_dir / "pairs_stats.json",
                        field="pairs", fix="lower --pairs.min_margin, raise --pairs.max_length_ratio or sample more")
    args = DPOConfig(
        output_dir=str(round_dir), run_name=f"{cfg.name}-round{k}", report_to=["wandb"] if d.wandb else [],
        max_steps=d.steps_per_round, learning_rate=d.learning_rate, beta=d.beta, loss_type=list(d.loss_type),
        loss_weights=list(d.loss_weights), ld_alpha=d.ld_alpha, per_device_train_batch_size=d.per_device_train_batch_size,
        gradient_accumulation_steps=d.gradient_accumulation_steps, max_length=d.max_length, truncation_mode="keep_end",
        optim=d.optim, max_grad_norm=d.max_grad_norm, seed=d.seed, data_seed=d.seed, logging_steps=d.logging_steps,
        save_strategy="steps", save_steps=d.save_steps, bf16=m.dtype == "bfloat16", fp16=m.dtype == "float16",
        gradient_checkpointing=m.gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
        disable_dropout=True, use_cpu=m.quantization == "none" and not torch.cuda.is_available(), dataloader_num_workers=0,
    )
    data = Dataset.from_list([{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs])
    judge = JudgeCallback(cfg.judge, reward=GuardedReward(cfg.reward), tokenizer=tokenizer, out=run_dir / "judge.jsonl",
                          step_offset=(k - 1) * d.steps_per_round, allow_quick=cfg.preset == "tiny")
    trainer = DPOTrainer(model=policy, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[judge])
    if k > 1:  # TRL copied the policy into `ref`; the reference stays the SFT model
        dpo_rounds.load_adapter_weights(trainer.model, Path(m.sft_run) / "adapter", "ref")
    checkpoint = newest_checkpoint(round_dir)
    if not train:  # the round is done: the policy is its adapter
        dpo_rounds.load_adapter_weights(trainer.model, round_dir / "adapter", "default")
    if train:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        trainer.model.save_pretrained(str(round_dir / "adapter"), selected_adapters=["default"])
    return trainer, tokenizer, judge, checkpoint


if __name__ == "__main__":
    main()
