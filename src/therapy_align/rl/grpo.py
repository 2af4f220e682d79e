"""GRPO from the SFT adapter with the guarded reward: TRL ``GRPOTrainer`` on the RL prompt sets
(:mod:`.prompts`), one TRL reward function per reward term with the weights as ``reward_weights``
(:mod:`.reward`), judged every K steps on held-out inputs by an independent EMP-EVAL
(:mod:`.judging` -> ``runs/<name>/judge.jsonl``). The SFT adapter is loaded trainable; TRL keeps a
frozen copy of it as the ``ref`` adapter for the KL term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from therapy_align.errors import UserError
from therapy_align.rl.config import GrpoConfig


def train(cfg: GrpoConfig, *, resume: bool = False) -> Path:
    """Train ``cfg`` into ``<runs_dir>/<name>/`` (``resume``: from its newest checkpoint); the run directory."""
    from therapy_align.rl.policy_model import finish_run
    from therapy_align.training.sft_run import configure_wandb, newest_checkpoint

    run_dir = Path(cfg.runs_dir) / cfg.name
    checkpoint = newest_checkpoint(run_dir)
    if checkpoint is not None and not resume:
        raise UserError("already has checkpoints", file=run_dir, fix="pass --resume, or pick another --name")
    configure_wandb(run_dir, project=cfg.wandb_project, name=cfg.name)
    from therapy_align.trl_stops import TrainingStops

    trainer, tokenizer, judge = make_trainer(cfg, run_dir)
    stops = TrainingStops()
    trainer.add_callback(stops)
    with stops.signals:
        trainer.train(resume_from_checkpoint=str(checkpoint) if resume and checkpoint is not None else None)
    # a diverged or interrupted run leaves its checkpoints and no adapter, so it never looks finished
    stops.raise_if_stopped(resume_from=run_dir)
    return finish_run(trainer, run_dir=run_dir, tokenizer=tokenizer, judge=judge, method="GRPO", tiny=cfg.preset == "tiny",
                      resumed_from=checkpoint.name if resume and checkpoint is not None else None,
                      small=cfg.preset == "small")


def make_trainer(cfg: GrpoConfig, run_dir: Path, *, reward_funcs: Sequence[Callable] | None = None):
    """``(GRPOTrainer, tokenizer, JudgeCallback)`` for ``cfg``; writes ``run_dir/config.json``.

    ``reward_funcs`` replaces the guarded reward and judging (weights 1.0, judge None), so that a
    step can be timed where no EMP-EVAL artifact exists (``scripts/gpu_check.py``)."""
    from trl import GRPOTrainer

    from therapy_align.rl.judging import JudgeCallback
    from therapy_align.rl.policy_model import load_policy, write_config
    from therapy_align.rl.prompts import rl_prompt_dataset
    from therapy_align.rl.reward import GuardedReward, reward_evaluator

    reward = None
    if reward_funcs is None:  # the tiny preset may train a quick (flagged) evaluator when artifacts/empeval is missing
        reward_cfg, _ = reward_evaluator(cfg.reward, allow_quick=cfg.preset == "tiny")
        cfg = replace(cfg, reward=reward_cfg)
        reward = GuardedReward(cfg.reward)
    args = cfg.trl_args(run_dir, reward_weights=reward.trl_weights() if reward is not None else [1.0] * len(reward_funcs))
    model, tokenizer, base = load_policy(cfg.model)
    with args.main_process_first(desc="build RL prompts"):
        prompts = rl_prompt_dataset(cfg.prompts, shuffle_seed=args.seed)
    if args.process_index == 0:
        write_config(run_dir, cfg, base_model=base)
    judge = None if reward is None else JudgeCallback(cfg.judge, reward=GuardedReward(cfg.reward), tokenizer=tokenizer,
                                                      out=run_dir / "judge.jsonl", allow_quick=cfg.preset == "tiny")
    trainer = GRPOTrainer(model=model, reward_funcs=reward.trl_reward_funcs() if reward is not None else list(reward_funcs),
                          args=args, train_dataset=prompts, processing_class=tokenizer, callbacks=[judge] if judge else [])
    return trainer, tokenizer, judge
