"""Reproduce Table 1: {base, 80%, full} models x {standard, new} prompts, scored by EMP-EVAL.

    accelerate launch recipes/eval_paper.py                           # paper: Llama-2-7b-chat, 1,000 inputs (GPU)
    python recipes/eval_paper.py --preset small                       # CPU: Gemma 3 270M, base vs SFT, minutes
    python recipes/eval_paper.py --preset tiny --out runs/eval-tiny   # CPU: the whole chain on a random model
    ... --refs.annomi80=runs/sft-annomi80 --refs.full_plus=runs/sft-full_plus   # use trained runs
    ... --sft.train.max_steps=50 --sft.data.extra_transcripts=a.txt,b.txt      # how missing runs train
    ... --extra_models=grpo=runs/grpo --references=human=pairs.jsonl   # more rows, same scorers
    ... --scorers=empeval,judge --artifacts=judge=artifacts/judge        # more columns
    ... --dotted.key=value overrides any field (--help lists them); rerunning reuses finished cells
    (--force redoes results made from other inputs, models or settings).

Paper §2.2.2 (1,000 Reddit inputs fed to each model), §4 (three models, two system prompts, six
cells; the Llama-2 chat format), §5 + Table 1 (EMP-EVAL sums per 1,000 inputs, final score
0.2 E + 0.4 I + 0.4 X). Chain: SFT of the missing variants (the presets of recipes/sft_paper.py,
trained in this process; every process of an `accelerate launch` takes part) -> EMP-EVAL
(artifacts/empeval, or a flagged quick one) -> each cell through the cell evaluator (batched
generation, every scorer) -> runs/<eval>/report/{table.md, table.csv, table1.png, examples.md}.
The config type and the chain: therapy_align.evaluation.table1.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from sft_paper import PAPER as SFT_PAPER  # a sibling recipe: python puts recipes/ on sys.path
from sft_paper import SMALL as SFT_SMALL
from sft_paper import TINY as SFT_TINY
from sft_paper import variant
from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.generation import DEFAULT_INPUTS, GenerationSpec, ModelLoad
from therapy_align.evaluation.table1 import Table1Config, Table1Refs
from therapy_align.overrides import apply_overrides, pop_option

PAPER = Table1Config(
    out="runs/eval-paper",
    inputs=DEFAULT_INPUTS,  # §2.2.2 (RSDD stand-in)
    limit=None,  # §2.2.2: all 1,000 inputs
    models=("base", "annomi80", "full_plus"),  # §4: three models
    prompts=("standard", "new"),  # §4: two system prompts (verbatim)
    # §2.2.1 "Pretrained (as found in huggingface)"; the two trained ones are trained here, into <out>/sft/
    refs=Table1Refs(base="base"),
    # §4 training, per row; full_plus's split, so that its 2 extra sessions (your files) can be given:
    # --sft.data.extra_transcripts=a.txt,b.txt (the annomi80 row leaves them out)
    sft=variant(SFT_PAPER, "full_plus"),
    # not in the paper: rows of given replies scored alike (human counsellors)
    references=("annomi_high", "annomi_low", "counselchat"),
    generation=GenerationSpec(),  # paper silent: greedy, 256 tokens
    load=ModelLoad(dtype="bfloat16"),  # paper silent: bf16 with the LoRA merged (several times faster than 4-bit layers)
    # §2.2.3 EMP-EVAL; not in the paper: safety (harm_*, §6.1 "how bad") and the guard columns
    scorers=("empeval", "safety", "guards"),
    empeval="artifacts/empeval",  # §2.2.3: EMP-EVAL trained on its own data
)
# CPU smoke: tiny random Llama-2, a few SFT steps (the SFT tiny preset's steps and accumulation take
# far longer on 2 busy cores), 32 inputs, short answers.
TINY = replace(
    PAPER, preset="tiny", out="runs/eval-tiny", limit=32, refs=Table1Refs(base="tiny-base"),
    sft=replace(variant(SFT_TINY, "full_plus"), data=replace(SFT_TINY.data, split="full_plus", max_heldout_rows=4),
                train=SFT_TINY.train.replace(max_steps=6, gradient_accumulation_steps=1, per_device_train_batch_size=2)),
    generation=GenerationSpec(batch_size=16, max_new_tokens=48, threads=1), load=ModelLoad(),
)
# The README's main command: the real small model (Gemma 3 270M, base) against its SFT on the 80%
# split, under both paper prompts, on the CPU in minutes. Sizes are the budget's (25 minutes from a
# fresh clone, set-up and first-use training of every evaluator included): 32 inputs, 64-token
# replies, 12 SFT steps of 2 x 512 tokens, 64 pairs per human row, and EMP-EVAL's fast recipe
# (trained on first use into its own directory, so no paper run picks it up); the 200-input
# measurement with the full+2 row and the default EMP-EVAL is docs/results.md's. Beside EMP-EVAL:
# the judge (a second EMP-EVAL, never a reward), MITI and the guard and harm columns; a bootstrap
# 95% interval on every final score.
SMALL = replace(
    PAPER, preset="small", out="runs/eval-small", limit=32, models=("base", "annomi80"),
    refs=Table1Refs(base="gemma-3-270m"),
    sft=replace(variant(SFT_SMALL, "annomi80"), data=replace(SFT_SMALL.data, max_heldout_rows=8),
                train=SFT_SMALL.train.replace(max_steps=12, save_steps=4)),
    generation=GenerationSpec(batch_size=16, max_new_tokens=64), load=ModelLoad(),
    scorers=("empeval", "judge", "miti", "safety", "guards"),
    reference_limit=64, empeval="artifacts/empeval-fast", empeval_first_use="fast",
)
PRESETS = {"paper": PAPER, "small": SMALL, "tiny": TINY}


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    from rich.console import Console

    from therapy_align.evaluation.table1 import run_grid

    preset, argv = pop_option(list(sys.argv[1:] if argv is None else argv), "preset", default="paper", choices=PRESETS)
    cfg = apply_overrides(PRESETS[preset], argv)  # a bad key or value: a UserError naming it
    try:
        results = run_grid(cfg, console=Console())
    except (RuntimeError, OSError) as err:
        raise SystemExit(f"error: {err}") from None
    if results:  # the main process
        print(f"report: {cfg.out}/report/table.md ({results['total_seconds']:.0f}s)")
    return results


if __name__ == "__main__":
    main()
