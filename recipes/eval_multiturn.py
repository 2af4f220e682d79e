"""Multi-turn evaluation on held-out AnnoMI sessions: every client turn answered from the real context,
EMP-EVAL + MITI per reply, the human therapists' row beside (the paper's §6 future work: "hold a full
conversation").

    accelerate launch recipes/eval_multiturn.py                          # Table 1's models, GPU
    .venv/bin/python recipes/eval_multiturn.py --preset tiny --out runs/multiturn-tiny   # CPU, minutes
    .venv/bin/python recipes/eval_multiturn.py --preset small      # Gemma 3 270M base vs its SFT run, CPU
    ... --models=base=base,annomi80=runs/sft-annomi80 --simulation.enabled --simulation.n_turns=8
    ... --sessions.transcripts=my_session.txt        # your own sessions instead of AnnoMI's held-out 20%
    ... --dotted.key=value overrides any field of MultiturnConfig (--help lists them); a rerun resumes
    (generation, simulation, scores).

Report: <out>/report/table.md (one row per model + human: E, I, X, final, R:Q, %CR, open %, mean
words; pooled over replies and as the mean over sessions) and sessions.md (per session; simulated rows).
"""

from __future__ import annotations

import sys
from dataclasses import replace

from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.evaluation.multiturn import ContextConfig, MultiturnConfig, SessionsConfig, SimulationConfig
from therapy_align.overrides import apply_overrides, pop_option

PAPER = MultiturnConfig(
    out="runs/eval-multiturn",
    models=("base=base", "annomi80=runs/sft-annomi80", "full_plus=runs/sft-full_plus"),  # Table 1's models
    scorers=("empeval", "miti"),  # EMP-EVAL (§2.2.3) and the MI classifier (docs/miti.md)
    generation=GenerationSpec(),  # greedy, 256 new tokens, as Table 1
    context=ContextConfig(
        max_tokens=4096,  # as the training chunks (§2.2.1: Llama-2's 4096)
        system_prompt="standard",  # §4: the standard Llama-2 system prompt, as in training
        opener_policy="neutral_opener",  # as the data build's default
    ),
    sessions=SessionsConfig(seed=0),  # the annomi80 split's held-out 20% (22 sessions), every client turn
    simulation=SimulationConfig(
        enabled=False,  # not in the paper: a second model plays the client
        client_model="base",  # choice: the untrained chat model, prompted with the topic and opening
        n_turns=6,
        sessions=5,
    ),
)
# CPU smoke: the random-init tiny Llama-2, 2 sessions x 4 client turns, short replies, a 512-token
# window (the tiny SFT preset's chunks), a 3-turn simulated client.
TINY = replace(PAPER, out="runs/eval-multiturn-tiny", models=("tiny-base=tiny-base",), allow_quick=True,
               generation=GenerationSpec(batch_size=8, max_new_tokens=24, threads=1),
               context=replace(PAPER.context, max_tokens=512), sessions=replace(PAPER.sessions, limit=2, max_turns=4),
               simulation=SimulationConfig(enabled=True, client_model="tiny-base", n_turns=3, sessions=1))
# The real small model on the CPU: Gemma 3 270M (base) beside its SFT run of
# `python recipes/sft_paper.py --preset small` (runs/small-sft-annomi80; train it first), 3 sessions x
# 6 client turns, 48-token replies in a 512-token window (the small SFT preset's chunks), a 3-turn
# simulated client played by the same base Gemma (one family's chat template on both sides; the
# paper preset's client is Llama-2 "base"). A missing EMP-EVAL or MITI artifact gets a quick one,
# flagged in the report, as in the tiny preset.
SMALL = replace(PAPER, out="runs/eval-multiturn-small", models=("base=gemma-3-270m", "annomi80=runs/small-sft-annomi80"),
                allow_quick=True, generation=GenerationSpec(batch_size=8, max_new_tokens=48),
                context=replace(PAPER.context, max_tokens=512), sessions=replace(PAPER.sessions, limit=3, max_turns=6),
                simulation=SimulationConfig(enabled=True, client_model="gemma-3-270m", n_turns=3, sessions=1))
PRESETS = {"paper": PAPER, "small": SMALL, "tiny": TINY}


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    """Parse the preset and overrides (bad ones fail before anything loads), run, print the report path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="paper", choices=PRESETS)
    cfg = apply_overrides(PRESETS[preset], argv)
    from rich.console import Console

    from therapy_align.evaluation.multiturn import run

    paths = run(cfg, console=Console())
    print(f"report: {paths['table_md']}")
    return paths


if __name__ == "__main__":
    main()
