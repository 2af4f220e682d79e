"""Multi-turn evaluation on held-out AnnoMI sessions: every client turn answered from the real context,
EMP-EVAL + MITI per reply, the human therapists' row beside (issue 11; the paper's §6 "future work").

    accelerate launch recipes/eval_multiturn.py                          # Table 1's models, GPU
    .venv/bin/python recipes/eval_multiturn.py --preset tiny --out runs/multiturn-tiny   # CPU, minutes
    ... --models=base=base,annomi80=runs/sft-annomi80 --simulation.enabled --simulation.n_turns=8
    ... --sessions.transcripts=my_session.txt        # your own sessions instead of AnnoMI's held-out 20%
    ... --dotted.key=value overrides any field below; a rerun resumes (generation, simulation, scores).

Report: <out>/report/table.md (one row per model + human: E, I, X, final, R:Q, %CR, open %, mean
words; pooled over replies and as the mean over sessions) and sessions.md (per session; simulated rows).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

from therapy_align.errors import exit_on_user_error
from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.data.cleaning import OPENER_POLICIES
from therapy_align.data.dataset_build import MIN_MAX_TOKENS
from therapy_align.overrides import apply_overrides, check_choice, check_range, pop_option


@dataclass(frozen=True, kw_only=True)
class Context:
    max_tokens: int = 4096  # as the training chunks (data.max_tokens, §2.2.1: Llama-2's 4096)
    system_prompt: str = "standard"  # §4: the standard Llama-2 system prompt, as in training
    opener_policy: str = "neutral_opener"  # as the data build's default

    def __post_init__(self) -> None:  # checked before anything loads (issue 14)
        check_range(self, "max_tokens", ge=MIN_MAX_TOKENS, fix="a window must hold the system prompt and a turn")
        check_choice(self, "opener_policy", OPENER_POLICIES)


@dataclass(frozen=True, kw_only=True)
class Sessions:
    data_dir: str | None = None
    seed: int = 0  # the annomi80 split's seed: its held-out 20% (22 sessions)
    limit: int | None = None  # the first N held-out sessions (None: all)
    max_turns: int | None = None  # the first N client turns of each session (None: all)
    transcripts: tuple[str, ...] = ()  # your own plain-text sessions instead of AnnoMI's

    def __post_init__(self) -> None:  # checked before anything loads (issue 14)
        check_range(self, "limit", ge=1, allow_none=True)
        check_range(self, "max_turns", ge=1, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class Simulation:
    enabled: bool = False  # not in the paper: a second model plays the client
    client_model: str = "base"  # choice: the untrained chat model, prompted with the topic and opening
    n_turns: int = 6  # therapist replies per simulated conversation
    sessions: int | None = 5  # the first N held-out sessions give topic and opening (None: all)


@dataclass(frozen=True, kw_only=True)
class EvalMultiturn:
    preset: str = "paper"
    out: str = "runs/eval-multiturn"
    models: tuple[str, ...] = ("base=base", "annomi80=runs/sft-annomi80", "full_plus=runs/sft-full_plus")  # Table 1's
    scorers: tuple[str, ...] = ("empeval", "miti")  # EMP-EVAL (§2.2.3) and the MI classifier (docs/miti.md)
    artifacts: tuple[str, ...] = ()  # scorer artifacts, name=dir (default artifacts/empeval, artifacts/miti)
    allow_quick: bool = False  # no artifact -> a quick smoke evaluator (the report says so)
    force: bool = False  # recompute stored results made from other inputs, models or settings
    generation: GenerationSpec = field(default_factory=GenerationSpec)  # greedy, 256 tokens, as Table 1
    context: Context = field(default_factory=Context)
    sessions: Sessions = field(default_factory=Sessions)
    simulation: Simulation = field(default_factory=Simulation)


PAPER = EvalMultiturn()
# CPU smoke: the random-init tiny Llama-2, 2 sessions x 4 client turns, short replies, a 512-token
# window (the tiny SFT preset's chunks), a 3-turn simulated client.
TINY = replace(PAPER, preset="tiny", out="runs/eval-multiturn-tiny", models=("tiny-base=tiny-base",),
               allow_quick=True, generation=GenerationSpec(batch_size=8, max_new_tokens=24, threads=1),
               context=replace(PAPER.context, max_tokens=512), sessions=replace(PAPER.sessions, limit=2, max_turns=4),
               simulation=Simulation(enabled=True, client_model="tiny-base", n_turns=3, sessions=1))
PRESETS = {"paper": PAPER, "tiny": TINY}


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
