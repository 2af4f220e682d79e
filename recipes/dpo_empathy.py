"""Iterated best-vs-worst DPO from the SFT model with the guarded EMP-EVAL reward (paper §6's RL follow-up).

    accelerate launch recipes/dpo_empathy.py                                   # paper: from runs/sft-annomi80, GPU 4-bit
    accelerate launch --cpu --num_processes 1 recipes/dpo_empathy.py --preset tiny   # CPU, from runs/tiny-sft-annomi80
    python recipes/dpo_empathy.py --preset small                               # Gemma 3 270M, CPU, from runs/small-sft-annomi80
    accelerate launch recipes/dpo_empathy.py --resume                          # continue a killed run (any round, any step)
    ... --dotted.key=value overrides any field (e.g. --pairs.min_margin=1.0 --dpo.beta=0.05 --rounds=2)

Each round samples replies from the current policy, scores them with the GRPO recipe's reward, keeps
the best-vs-worst pair of length-matched replies and trains DPO on the pairs (therapy_align.rl.dpo).
`--dpo.<field>` is any field of trl.DPOConfig (`max_steps` per round); the other sections are
therapy_align.rl.config.DpoRoundsConfig's. The paper runs no RL: every number below is a choice.
"""

from __future__ import annotations

from dataclasses import replace

from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.rl.config import DpoRoundsConfig, DpoTrain, recipe_main
from therapy_align.rl.dpo_rounds import PairRule, Sampling
from therapy_align.rl.judging import JudgeConfig
from rl_empathy import SMALL as GRPO_SMALL  # recipes/ is on sys.path when a recipe runs
from rl_empathy import TINY as GRPO_TINY

PAPER = DpoRoundsConfig(name="dpo-annomi80", rounds=3, dpo=DpoTrain(
    max_steps=50,  # per round
    learning_rate=5e-6,  # common for LoRA DPO
    beta=0.1,  # TRL default, named
    loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.2],  # RPO: DPO + NLL on chosen (keeps replies fluent)
    ld_alpha=None,  # TRL's length-desensitisation off: the pair rule already matches lengths
    per_device_train_batch_size=4, gradient_accumulation_steps=4,
    max_length=1024, truncation_mode="keep_end",  # prompt + reply tokens; a long prompt loses its oldest turns
    disable_dropout=True,
    optim="paged_adamw_8bit", max_grad_norm=1.0, seed=42, data_seed=42,  # as SFT
    logging_steps=1, save_strategy="steps", save_steps=25, dataloader_num_workers=0,
    gradient_checkpointing_kwargs={"use_reentrant": False},
))
# CPU, minutes: the GRPO recipe's tiny policy, prompts and reward; 2 rounds of 32 prompts x 4
# replies of <= 48 tokens, a lower margin (the tiny policy's replies differ little), a larger LR,
# 8 sampled judging inputs every 5 steps.
TINY = replace(
    PAPER, name="tiny-dpo-annomi80", preset="tiny", rounds=2,
    model=GRPO_TINY.model, prompts=GRPO_TINY.prompts, reward=GRPO_TINY.reward,
    sampling=Sampling(n_per_prompt=4, prompts_per_round=32,
                      generation=GenerationSpec(do_sample=True, top_p=0.95, max_new_tokens=48, batch_size=16)),
    pairs=PairRule(min_margin=0.3, max_length_ratio=1.5),
    dpo=PAPER.dpo.replace(max_steps=10, learning_rate=1e-3, gradient_accumulation_steps=1, max_length=384,
                          optim="adamw_torch", save_steps=5),
    judge=JudgeConfig(every_steps=5, n_inputs=8, generation=GenerationSpec(max_new_tokens=48, batch_size=8, do_sample=True)),
)
# The real small model on the CPU: the GRPO recipe's small policy (the Gemma 3 270M SFT run
# runs/small-sft-annomi80, its all-linear LoRA trained on; fp32 on the CPU), prompts and reward;
# 2 rounds of 8 prompts x 4 sampled replies of <= 48 tokens, 4 DPO steps of 2 pairs a round (prompt
# + reply fit 512 tokens: one exchange of context, seeker posts <= 120 words); the paper preset's
# margin (a real policy's replies differ enough to clear it); a LoRA LR above the paper's 5e-6 so
# that 4 steps move it, far below the tiny preset's 1e-3; greedy judging as in the GRPO small preset.
SMALL = replace(
    PAPER, name="small-dpo-annomi80", preset="small", rounds=2,
    model=GRPO_SMALL.model, prompts=GRPO_SMALL.prompts, reward=GRPO_SMALL.reward,
    sampling=Sampling(n_per_prompt=4, prompts_per_round=8,
                      generation=GenerationSpec(do_sample=True, top_p=0.95, max_new_tokens=48, batch_size=16)),
    dpo=PAPER.dpo.replace(max_steps=4, learning_rate=5e-5, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                          max_length=512, optim="adamw_torch", save_steps=2),
    judge=GRPO_SMALL.judge,
)
PRESETS = {"paper": PAPER, "small": SMALL, "tiny": TINY}
main = recipe_main(PRESETS)  # main(argv=None) -> the run directory


if __name__ == "__main__":
    main()
