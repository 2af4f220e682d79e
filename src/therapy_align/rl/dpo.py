"""Iterated best-vs-worst DPO from the SFT adapter with the guarded reward.

Each round (:mod:`.dpo_rounds`): sample N replies per prompt from the current policy, score them
with :mod:`.reward` (GRPO's reward), keep the best-vs-worst pair among length-matched replies when
the margin clears the threshold, train TRL ``DPOTrainer`` on the pairs. The policy continues round
to round; the reference is always the frozen SFT adapter (TRL's ``ref`` adapter, reset to the SFT
weights each round). Pairs of every round are saved with every reward term; a killed run resumes at
any round and step.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

from therapy_align.errors import UserError
from therapy_align.rl.config import DpoRoundsConfig


def train(cfg: DpoRoundsConfig, *, resume: bool = False) -> Path:
    """Run every round of ``cfg`` into ``<runs_dir>/<name>/`` (``resume``: reuse finished rounds and
    continue the interrupted one); the run directory."""
    from therapy_align.rl.policy_model import finish_run
    from therapy_align.training.sft_run import configure_wandb

    run_dir = Path(cfg.runs_dir) / cfg.name
    if (run_dir / "config.json").exists() and not resume:
        raise UserError("already holds a DPO run", file=run_dir, fix="pass --resume, or pick another --name")
    configure_wandb(run_dir, project=cfg.wandb_project, name=cfg.name)
    trainer = tokenizer = judge = None
    resumed_from = None
    for k in range(1, cfg.rounds + 1):
        if (run_dir / f"round-{k}" / "adapter" / "adapter_config.json").is_file():
            resumed_from = f"round-{k}"
            continue  # finished round
        trainer, tokenizer, judge, checkpoint = run_round(cfg, run_dir, k)
        resumed_from = resumed_from or (f"round-{k}/{checkpoint.name}" if checkpoint else None)
    if trainer is None:  # every round was already done: rebuild the last one's trainer to finish the run
        trainer, tokenizer, judge, _ = run_round(cfg, run_dir, cfg.rounds, train=False)
    return finish_run(trainer, run_dir=run_dir, tokenizer=tokenizer, judge=judge, method="Iterated DPO",
                      tiny=cfg.preset == "tiny", small=cfg.preset == "small", resumed_from=resumed_from)


def run_round(cfg: DpoRoundsConfig, run_dir: Path, k: int, *, train: bool = True):
    """Sample, score, pair and train round ``k``; returns ``(trainer, tokenizer, judge, checkpoint)``."""
    from datasets import Dataset
    from trl import DPOTrainer

    from therapy_align.rl import dpo_rounds
    from therapy_align.rl.judging import JudgeCallback, read_rows
    from therapy_align.rl.policy_model import load_policy, write_config
    from therapy_align.rl.prompts import rl_prompt_rows
    from therapy_align.rl.reward import GuardedReward, reward_evaluator
    from therapy_align.training.sft_run import newest_checkpoint

    s, sft_adapter = cfg.sampling, Path(cfg.model.sft_run) / "adapter"
    reward_cfg, _ = reward_evaluator(cfg.reward, allow_quick=cfg.preset == "tiny")  # tiny: a quick one if missing
    cfg = replace(cfg, reward=reward_cfg)
    round_dir = run_dir / f"round-{k}"
    args = cfg.trl_args(round_dir, k)
    policy, tokenizer, base = load_policy(cfg.model)
    previous = run_dir / f"round-{k - 1}" / "adapter" if k > 1 else sft_adapter
    if k > 1:
        dpo_rounds.load_adapter_weights(policy, previous, "default")
    write_config(run_dir, cfg, base_model=base)
    rows = rl_prompt_rows(cfg.prompts)
    random.Random(args.seed).shuffle(rows)
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
        pairs = read_rows(pairs_path)
    if not pairs:
        raise UserError("no pair cleared the rule in this round", file=round_dir / "pairs_stats.json",
                        field="pairs", fix="lower --pairs.min_margin, raise --pairs.max_length_ratio or sample more")
    data = Dataset.from_list([{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs])
    judge = JudgeCallback(cfg.judge, reward=GuardedReward(cfg.reward), tokenizer=tokenizer, out=run_dir / "judge.jsonl",
                          step_offset=(k - 1) * args.max_steps, allow_quick=cfg.preset == "tiny")
    trainer = DPOTrainer(model=policy, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[judge])
    if k > 1:  # TRL copied the policy into `ref`; the reference stays the SFT model
        dpo_rounds.load_adapter_weights(trainer.model, sft_adapter, "ref")
    checkpoint = newest_checkpoint(round_dir)
    if not train:  # the round is done: the policy is its adapter
        dpo_rounds.load_adapter_weights(trainer.model, round_dir / "adapter", "default")
    if train:
        from therapy_align.trl_stops import TrainingStops

        stops = TrainingStops()
        trainer.add_callback(stops)
        with stops.signals:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        # the round's adapter marks it finished (train() skips such rounds on --resume): never write
        # one for a diverged or interrupted round
        stops.raise_if_stopped(resume_from=round_dir)
        trainer.model.save_pretrained(str(round_dir / "adapter"), selected_adapters=["default"])
    return trainer, tokenizer, judge, checkpoint
