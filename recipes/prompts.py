"""System-prompt sweep: list the candidate prompts, or run one of them (paper §4, §6).

    python recipes/prompts.py                                   # list the registered prompts
    python recipes/prompts.py --prompt=interpret_connect --model=tiny-base --limit=16 --generation.max_new_tokens=64
    python recipes/prompts.py --preset small --prompt=new       # Gemma 3 270M, 32 inputs, CPU minutes
    wandb sweep wandb/sweep_prompts.yaml && wandb agent <sweep-id>   # runs this file per prompt
    therapy-align sweep wandb/sweep_prompts.yaml --model tiny-base --limit 16   # whole grid, offline
    therapy-align sweep wandb/sweep_prompts.yaml --set preset=small   # whole grid on Gemma 3 270M, CPU
    ... --scorers=empeval,judge  # more columns; the run logs every column, final_score ranks

Paper §4: "We tried 10 different prompts ... We picked the top one with the highest score"; §6
asks for prompts that raise interpretation without losing exploration. The prompt texts live in
one place, ``therapy_align.data.system_prompts`` (standard and new verbatim from the paper); the run
config (``PromptRunConfig``, with provenance comments) and its presets (``paper``, ``small``) live in
``therapy_align.evaluation.sweep`` so that the local sweep command and a wandb agent run exactly the same thing. One run generates on the
inputs, scores with EMP-EVAL and logs ``final_score`` (Table 1's formula) to wandb (offline
unless WANDB_MODE/--wandb_mode say otherwise).
"""

from __future__ import annotations

import sys

from rich.console import Console

from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.sweep import PRESETS, init_wandb, prompt_listing, run_prompt
from therapy_align.overrides import apply_overrides, pop_option


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    console = Console()
    preset, argv = pop_option(list(sys.argv[1:] if argv is None else argv), "preset", default="paper", choices=PRESETS)
    config = apply_overrides(PRESETS[preset], argv)  # UserError if bad
    if config.prompt is None:
        console.print(prompt_listing())
        console.print("run one: python recipes/prompts.py --prompt=<name> [--model=... --limit=N]")
        return 0
    run = init_wandb(config)
    try:
        row = run_prompt(config, console=console, wandb_run=run)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    console.print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
