"""GRPO from the SFT model with the guarded EMP-EVAL reward: the RL follow-up the paper proposes (§6).

    accelerate launch recipes/rl_empathy.py                                   # paper: from runs/sft-annomi80, GPU 4-bit
    accelerate launch --cpu --num_processes 1 recipes/rl_empathy.py --preset tiny   # CPU, from runs/tiny-sft-annomi80
    python recipes/rl_empathy.py --preset small                               # Gemma 3 270M, CPU, from runs/small-sft-annomi80
    accelerate launch recipes/rl_empathy.py --resume                          # continue a killed run
    ... --dotted.key=value overrides any field (e.g. --grpo.beta=0.1 --reward.weights.template=3 --run.wandb=false)

`--grpo.<field>` is any field of trl.GRPOConfig; the other sections are therapy_align.rl.config.GrpoConfig's
(model, prompts, reward, judge). The paper runs no RL: every number below is a choice, marked why.
"""

from __future__ import annotations

from dataclasses import replace

from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.rl.config import GrpoConfig, GrpoTrain, recipe_main
from therapy_align.rl.judging import JudgeConfig
from therapy_align.rl.policy_model import PolicyModel
from therapy_align.rl.prompts import PromptSet

PAPER = GrpoConfig(name="grpo-annomi80", grpo=GrpoTrain(
    max_steps=200, learning_rate=1e-5,  # choices: common for LoRA GRPO
    beta=0.04,  # KL to the SFT model (TRL's default 0 has no KL at all); DeepSeekMath's value
    disable_dropout=True,  # needed with beta > 0, or KL starts non-zero from dropout noise
    loss_type="dapo", scale_rewards="group",  # TRL defaults, named: token-level normalisation ("grpo" is length-biased)
    num_generations=8,  # replies compared per prompt
    max_completion_length=256,  # = evaluation's 256 new tokens
    per_device_train_batch_size=8, gradient_accumulation_steps=4,  # one prompt's 8 replies per device-step, 4 prompts a step
    temperature=1.0, top_p=1.0,  # TRL defaults: sample from the policy as it is
    mask_truncated_completions=False,  # the reward's length term punishes overlong replies instead
    optim="paged_adamw_8bit", warmup_steps=0, max_grad_norm=1.0, seed=42, data_seed=42,  # as SFT
    logging_steps=1, save_strategy="steps", save_steps=25, dataloader_num_workers=0,
    gradient_checkpointing_kwargs={"use_reentrant": False},
))
# CPU, minutes: from the tiny SFT adapter (the random base never ends a reply), fp32; 128 prompts
# with one exchange of context and short posts; 2 prompts x 4 replies of <= 48 tokens per step (the
# reward's length term scaled to them), 16 steps, a larger LR; 8 judging inputs every 4 steps,
# sampled with a fixed seed (the tiny model's greedy reply is nearly empty).
TINY = replace(
    PAPER, name="tiny-grpo-annomi80", preset="tiny",
    model=PolicyModel(sft_run="runs/tiny-sft-annomi80", quantization="none", dtype="float32", gradient_checkpointing=False),
    prompts=PromptSet(counselchat=64, annomi=64, context_exchanges=1, max_seeker_words=120),
    reward=replace(PAPER.reward, min_tokens=8, max_tokens=48, overlong_cache=8),
    judge=JudgeConfig(every_steps=4, n_inputs=8, generation=GenerationSpec(max_new_tokens=48, batch_size=8, do_sample=True)),
    grpo=PAPER.grpo.replace(max_steps=16, learning_rate=1e-3, num_generations=4, max_completion_length=48,
                            gradient_accumulation_steps=1, optim="adamw_torch", save_steps=4),
)
# The real small model on the CPU: the policy is the Gemma 3 270M SFT run of
# `python recipes/sft_paper.py --preset small` (runs/small-sft-annomi80; §6: RL continues from the
# fine-tuned model, and the base is not instruction-tuned), whose LoRA on every linear layer is what
# GRPO trains; fp32 on the CPU, bf16 on a GPU ("auto"). Sizes are a CPU's: 64 prompts with one
# exchange of context, 2 prompts x 4 replies of <= 48 tokens a step (the reward's length term scaled
# to them), 12 steps; 8 held-out judging inputs every 4 steps, greedy as in evaluation (a pretrained
# model's greedy reply is a real reply, unlike the tiny one's). A pretrained policy takes a LoRA LR
# between the paper's 1e-5 (too little to move in 12 steps) and the tiny preset's 1e-3 (which wrecks it).
SMALL = replace(
    PAPER, name="small-grpo-annomi80", preset="small",
    model=PolicyModel(sft_run="runs/small-sft-annomi80", quantization="none", dtype="auto", gradient_checkpointing=False),
    prompts=PromptSet(counselchat=32, annomi=32, context_exchanges=1, max_seeker_words=120),
    reward=replace(PAPER.reward, min_tokens=8, max_tokens=48, overlong_cache=8),
    judge=JudgeConfig(every_steps=4, n_inputs=8, generation=GenerationSpec(max_new_tokens=48, batch_size=8)),
    grpo=PAPER.grpo.replace(max_steps=12, learning_rate=5e-5, num_generations=4, max_completion_length=48,
                            gradient_accumulation_steps=1, optim="adamw_torch", save_steps=4),
)
PRESETS = {"paper": PAPER, "small": SMALL, "tiny": TINY}
main = recipe_main(PRESETS)  # main(argv=None) -> the run directory


if __name__ == "__main__":
    main()
