"""Reproduce Table 1: {base, 80%, full} models x {standard, new} prompts, scored by EMP-EVAL.

    accelerate launch recipes/eval_paper.py                           # paper: Llama-2-7b-chat, 1,000 inputs (GPU)
    python recipes/eval_paper.py --preset tiny --out runs/eval-tiny   # CPU: the whole chain in minutes
    ... --refs.annomi80=runs/sft-annomi80 --refs.full_plus=runs/sft-full_plus   # use trained runs
    ... --dotted.key=value overrides any field below; rerunning reuses finished cells.

Paper §2.2.2 (1,000 Reddit inputs fed to each model), §4 (three models, two system prompts, six
cells; the Llama-2 chat format), §5 + Table 1 (EMP-EVAL sums per 1,000 inputs, final score
0.2 E + 0.4 I + 0.4 X). Chain: SFT of the missing variants (recipes/sft_paper.py, subprocess) ->
EMP-EVAL (artifacts/empeval, or a flagged quick one) -> batched generation -> scores ->
runs/<eval>/report/{table.md, table.csv, table1.png, examples.md}. Logic: therapy_align.evaluation.table1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from therapy_align.overrides import apply_overrides, pop_option


@dataclass(frozen=True, kw_only=True)
class Refs:  # "" = train it here with recipes/sft_paper.py into <out>/sft/<variant>
    base: str = "base"  # §2.2.1 "Pretrained (as found in huggingface)": meta-llama/Llama-2-7b-chat-hf
    annomi80: str = ""  # §2.2.1 trained on 80% of the good AnnoMI conversations
    full_plus: str = ""  # §2.2.1 100% of good AnnoMI + 2 sessions (pass --sft.args for the extra files)


@dataclass(frozen=True, kw_only=True)
class Sft:
    preset: str = "paper"  # recipes/sft_paper.py preset (§4 hyper-parameters)
    args: tuple[str, ...] = ()  # extra overrides for the SFT recipe, e.g. --data.extra_transcripts=a,b
    launch: tuple[str, ...] = ()  # () = this Python; e.g. (accelerate, launch) on GPUs
    train_missing: bool = True


@dataclass(frozen=True, kw_only=True)
class Generation:
    batch_size: int = 8  # throughput only
    max_new_tokens: int = 256  # paper silent; its example answers are ~200 tokens, cut mid-sentence
    do_sample: bool = False  # paper silent: greedy, so the table is reproducible
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    threads: int = 0  # torch CPU threads, 0 = torch's default (tiny: 1 beats 2 contending threads)


@dataclass(frozen=True, kw_only=True)
class EvalPaper:
    preset: str = "paper"
    out: str = "runs/eval-paper"
    inputs: str = "../shared/data/eval_inputs/reddit_mental_health_1000.jsonl"  # §2.2.2 (RSDD stand-in)
    limit: int | None = None  # §2.2.2: all 1,000 inputs
    lenient: bool = False
    models: tuple[str, ...] = ("base", "annomi80", "full_plus")  # §4: three models
    prompts: tuple[str, ...] = ("standard", "new")  # §4: two system prompts (verbatim)
    refs: Refs = field(default_factory=Refs)
    sft: Sft = field(default_factory=Sft)
    generation: Generation = field(default_factory=Generation)
    empeval: str = "artifacts/empeval"  # §2.2.3: EMP-EVAL trained on its own data
    quick_empeval: bool = True  # no artifact -> train a quick smoke evaluator (the report says so)
    examples_per_cell: int = 3


PAPER = EvalPaper()
# CPU smoke: tiny random Llama-2, a few SFT steps (the SFT tiny preset's 40 steps x 4 accumulation
# take ~an hour on 2 busy cores), 32 inputs, short answers.
TINY = replace(PAPER, preset="tiny", out="runs/eval-tiny", limit=32, refs=Refs(base="tiny-base"),
               sft=Sft(preset="tiny", args=("--train.max_steps=6", "--train.gradient_accumulation_steps=1",
                                            "--train.per_device_train_batch_size=2", "--data.max_heldout_rows=4")),
               generation=Generation(batch_size=16, max_new_tokens=48, threads=1))
PRESETS = {"paper": PAPER, "tiny": TINY}


def main(argv: list[str] | None = None) -> dict:
    from accelerate import PartialState
    from rich.console import Console

    from therapy_align.evaluation.table1 import run_grid

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        preset, argv = pop_option(argv, "preset", default="paper", choices=PRESETS)
        cfg = apply_overrides(PRESETS[preset], argv)
        if not PartialState().is_main_process:  # generation is single-process; other ranks idle
            return {}
        results = run_grid(cfg, recipe=Path(__file__).with_name("sft_paper.py"), console=Console())
    except (RuntimeError, ValueError, OSError, KeyError) as err:
        raise SystemExit(f"error: {err.args[0] if isinstance(err, KeyError) else err}") from None
    print(f"report: {cfg.out}/report/table.md ({results['total_seconds']:.0f}s)")
    return results


if __name__ == "__main__":
    main()
