"""Reproduce Table 1: {base, 80%, full} models x {standard, new} prompts, scored by EMP-EVAL.

    accelerate launch recipes/eval_paper.py                           # paper: Llama-2-7b-chat, 1,000 inputs (GPU)
    python recipes/eval_paper.py --preset tiny --out runs/eval-tiny   # CPU: the whole chain in minutes
    ... --refs.annomi80=runs/sft-annomi80 --refs.full_plus=runs/sft-full_plus   # use trained runs
    ... --extra_models=grpo=runs/grpo --references=human=pairs.jsonl   # more rows, same scorers
    ... --scorers=empeval,judge --artifacts=judge=artifacts/judge        # more columns
    ... --dotted.key=value overrides any field below; rerunning reuses finished cells (--force redoes
    results made from other inputs, models or settings).

Paper §2.2.2 (1,000 Reddit inputs fed to each model), §4 (three models, two system prompts, six
cells; the Llama-2 chat format), §5 + Table 1 (EMP-EVAL sums per 1,000 inputs, final score
0.2 E + 0.4 I + 0.4 X). Chain: SFT of the missing variants (recipes/sft_paper.py, subprocess) ->
EMP-EVAL (artifacts/empeval, or a flagged quick one) -> each cell through the cell evaluator
(batched generation, every scorer) -> runs/<eval>/report/{table.md, table.csv, table1.png,
examples.md}. Logic: therapy_align.evaluation.table1 and .cell.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.generation import DEFAULT_INPUTS, GenerationSpec, ModelLoad
from therapy_align.overrides import apply_overrides, pop_option


@dataclass(frozen=True, kw_only=True)
class Refs:  # "" = train it here with recipes/sft_paper.py into <out>/sft/<variant>
    base: str = "base"  # §2.2.1 "Pretrained (as found in huggingface)": meta-llama/Llama-2-7b-chat-hf
    annomi80: str = ""  # §2.2.1 trained on 80% of the good AnnoMI conversations
    full_plus: str = ""  # §2.2.1 100% of good AnnoMI + 2 sessions (give them: --sft.data.extra_transcripts)


@dataclass(frozen=True, kw_only=True)
class SftTrain:  # recipes/sft_paper.py `train` fields; None = the SFT preset's value
    max_steps: int | None = None
    gradient_accumulation_steps: int | None = None
    per_device_train_batch_size: int | None = None
    learning_rate: float | None = None


@dataclass(frozen=True, kw_only=True)
class SftData:  # recipes/sft_paper.py `data` fields; None/() = the SFT preset's value
    extra_transcripts: tuple[str, ...] = ()  # §2.2.1: the 2 extra sessions of full_plus (your files)
    opener_policy: str | None = None
    max_train_rows: int | None = None
    max_heldout_rows: int | None = None


@dataclass(frozen=True, kw_only=True)
class Sft:  # typed here, turned into the SFT recipe's --train.*/--data.* overrides only at launch
    preset: str = "paper"  # recipes/sft_paper.py preset (§4 hyper-parameters)
    launch: tuple[str, ...] = ()  # () = this Python; e.g. (accelerate, launch) on GPUs
    train_missing: bool = True
    train: SftTrain = field(default_factory=SftTrain)
    data: SftData = field(default_factory=SftData)


@dataclass(frozen=True, kw_only=True)
class EvalPaper:
    preset: str = "paper"
    out: str = "runs/eval-paper"
    inputs: str = DEFAULT_INPUTS  # §2.2.2 (RSDD stand-in)
    limit: int | None = None  # §2.2.2: all 1,000 inputs
    lenient: bool = False
    force: bool = False  # recompute stored results made from other inputs, models or settings
    models: tuple[str, ...] = ("base", "annomi80", "full_plus")  # §4: three models
    prompts: tuple[str, ...] = ("standard", "new")  # §4: two system prompts (verbatim)
    refs: Refs = field(default_factory=Refs)
    extra_models: tuple[str, ...] = ()  # not in the paper: more rows, name=ref (e.g. grpo=runs/grpo)
    # not in the paper: rows of given replies scored alike (human counsellors; name or name=pairs.jsonl)
    references: tuple[str, ...] = ("annomi_high", "annomi_low", "counselchat")
    sft: Sft = field(default_factory=Sft)
    generation: GenerationSpec = field(default_factory=GenerationSpec)  # paper silent: greedy, 256 tokens
    # paper silent: bf16 with the LoRA merged (several times faster than through 4-bit layers, issue 13)
    load: ModelLoad = field(default_factory=lambda: ModelLoad(dtype="bfloat16"))
    # §2.2.3 EMP-EVAL; not in the paper: safety (harm_*, §6.1 "how bad") and the guard columns that show
    # what could fool EMP-EVAL (length, specificity, template rate, copying, distinct-2); more: judge, miti
    scorers: tuple[str, ...] = ("empeval", "safety", "guards")
    empeval: str = "artifacts/empeval"  # §2.2.3: EMP-EVAL trained on its own data
    artifacts: tuple[str, ...] = ()  # other scorers' artifacts, name=dir (e.g. judge=artifacts/judge)
    quick_empeval: bool = True  # no artifact -> train a quick smoke evaluator (the report says so)
    examples_per_cell: int = 3


PAPER = EvalPaper()
# CPU smoke: tiny random Llama-2, a few SFT steps (the SFT tiny preset's 40 steps x 4 accumulation
# take ~an hour on 2 busy cores), 32 inputs, short answers.
TINY = replace(PAPER, preset="tiny", out="runs/eval-tiny", limit=32, refs=Refs(base="tiny-base"),
               sft=Sft(preset="tiny", train=SftTrain(max_steps=6, gradient_accumulation_steps=1,
                                                     per_device_train_batch_size=2),
                       data=SftData(max_heldout_rows=4)),
               generation=GenerationSpec(batch_size=16, max_new_tokens=48, threads=1), load=ModelLoad())
PRESETS = {"paper": PAPER, "tiny": TINY}


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    from accelerate import PartialState
    from rich.console import Console

    from therapy_align.evaluation.table1 import run_grid

    preset, argv = pop_option(list(sys.argv[1:] if argv is None else argv), "preset", default="paper", choices=PRESETS)
    cfg = apply_overrides(PRESETS[preset], argv)  # a bad key or value: a UserError naming it
    if not PartialState().is_main_process:  # generation is single-process; other ranks idle
        return {}
    try:
        results = run_grid(cfg, recipe=Path(__file__).with_name("sft_paper.py"), console=Console())
    except (RuntimeError, OSError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"report: {cfg.out}/report/table.md ({results['total_seconds']:.0f}s)")
    return results


if __name__ == "__main__":
    main()
