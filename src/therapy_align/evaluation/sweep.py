"""The system-prompt sweep (paper §4: "We tried 10 different prompts ... We picked the top one").

One *prompt run* = generate a response to each evaluation input under one system prompt, score
the responses with EMP-EVAL, log the per-1,000 sums and the final score to wandb. It is what
``recipes/prompts.py`` does for one ``--prompt=...`` (the program a ``wandb agent`` runs for
``wandb/sweep_prompts.yaml``), and what ``therapy-align sweep`` does for every prompt of that
YAML's grid locally, each run logged to wandb offline, followed by a table sorted by final score.

Layout of a sweep directory (default ``runs/sweep-<model>``)::

    <prompt>/generations.jsonl, scores.jsonl, summary.json    one prompt run (resumable, reused)
    sweep_table.md, sweep_table.csv, sweep.png                 all runs, best final score first
    wandb/                                                     offline wandb runs
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_INPUTS = "../shared/data/eval_inputs/reddit_mental_health_1000.jsonl"
WANDB_PROJECT = "therapy-align-prompts"


class SweepError(ValueError):
    """A sweep YAML the local runner cannot run, or a bad parameter in it."""


@dataclass(frozen=True)
class PromptRunConfig:
    """One run of the prompt sweep; every field is a ``--key=value`` of ``recipes/prompts.py``."""

    prompt: str | None = None  # a registered system prompt; None lists them (recipes/prompts.py)
    model: str = "base"  # paper §2.2.1: meta-llama/Llama-2-7b-chat-hf, "Pretrained"
    inputs: str = DEFAULT_INPUTS  # paper §2.2.2: 1,000 RSDD posts (here: Reddit mental-health posts)
    limit: int | None = None  # None = all 1,000 inputs, as in the paper
    batch_size: int = 8  # prompts decoded together (throughput only)
    max_new_tokens: int = 256  # the paper's example answers run to ~200 tokens and are cut off
    do_sample: bool = False  # greedy: the paper does not state decoding settings; greedy is reproducible
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    empeval: str = "artifacts/empeval"  # paper §2.2.3: EMP-EVAL trained on its own (EPITOME) data
    quick_empeval: bool = True  # no trained evaluator -> train a quick smoke one (flagged in reports)
    out: str = ""  # sweep directory; "" = runs/sweep-<model>
    wandb_mode: str = "offline"  # "online" under a wandb agent with an account
    lenient: bool = False  # skip bad input lines instead of failing
    threads: int = 0  # torch CPU threads, 0 = torch's default


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.strip("/")).strip("-") or "model"


def sweep_dir(config: PromptRunConfig) -> Path:
    return Path(config.out) if config.out else Path("runs") / f"sweep-{model_slug(config.model)}"


def generation_settings(config: PromptRunConfig):
    from therapy_align.evaluation.generation import GenerationSettings

    return GenerationSettings(
        batch_size=config.batch_size,
        max_new_tokens=config.max_new_tokens,
        do_sample=config.do_sample,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
    )


def prompt_listing():
    """A rich table of the registered prompts: name, target mechanism, description, length."""
    from rich.table import Table

    from therapy_align.data.system_prompts import PROMPT_TARGETS, SYSTEM_PROMPTS

    table = Table(title=f"{len(SYSTEM_PROMPTS)} system prompts (therapy_align.data.system_prompts)")
    for column in ("name", "targets", "what it asks", "chars"):
        table.add_column(column)
    for name, text in SYSTEM_PROMPTS.items():
        target, description = PROMPT_TARGETS.get(name, ("", ""))
        table.add_row(name, target, description, str(len(text)))
    return table


def check_prompt(name: str) -> str:
    from therapy_align.data.system_prompts import SYSTEM_PROMPTS, get_system_prompt

    try:
        return get_system_prompt(name)
    except KeyError:
        raise SweepError(f"unknown system prompt {name!r}; known: {', '.join(SYSTEM_PROMPTS)}") from None


def run_prompt(
    config: PromptRunConfig,
    *,
    model_and_tokenizer=None,
    evaluator=None,
    evaluator_choice=None,
    console=None,
    wandb_run=None,
) -> dict[str, Any]:
    """Generate + score one prompt; returns the result row and logs it to ``wandb_run`` if given."""
    from therapy_align.evaluation.empathy_scoring import ensure_evaluator, score_generations
    from therapy_align.evaluation.generation import read_inputs, run_generation

    if config.prompt is None:
        raise SweepError("no --prompt given")
    system_prompt = check_prompt(config.prompt)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    root = sweep_dir(config)
    cell_dir = root / config.prompt
    report = read_inputs(config.inputs, lenient=config.lenient, limit=config.limit)
    summary = run_generation(
        model_ref=config.model,
        prompt_name=config.prompt,
        system_prompt=system_prompt,
        inputs=report.records,
        out=cell_dir / "generations.jsonl",
        settings=generation_settings(config),
        console=console,
        model_and_tokenizer=model_and_tokenizer,
        description=f"{config.prompt}",
    )
    if evaluator_choice is None:
        evaluator_choice = ensure_evaluator(config.empeval, root / "empeval-quick", allow_quick=config.quick_empeval)
    score = score_generations(cell_dir / "generations.jsonl", evaluator_choice, evaluator=evaluator,
                              ids={r.id for r in report.records})
    row = {
        "prompt": config.prompt,
        "model": config.model,
        "n": score.n,
        "empathy": score.empathy,
        "interpretation": score.interpretation,
        "exploration": score.exploration,
        "final": score.final,
        "quick_evaluator": score.quick_evaluator,
    }
    if wandb_run is not None:
        wandb_run.log(
            {
                "final_score": score.final,
                "empathy": score.empathy,
                "interpretation": score.interpretation,
                "exploration": score.exploration,
                "n_inputs": score.n,
                "tokens_per_second": summary.tokens_per_second,
            }
        )
        wandb_run.summary["quick_evaluator"] = score.quick_evaluator
    return row


def init_wandb(config: PromptRunConfig, *, group: str | None = None):
    """A wandb run for one prompt run, files under the sweep directory; offline by default."""
    import wandb

    root = sweep_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    mode = os.environ.get("WANDB_MODE", config.wandb_mode)
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
        dir=str(root),
        mode=mode,
        group=group,
        name=f"prompt-{config.prompt}",
        job_type="prompt-sweep",
        config=dataclasses.asdict(config),
        settings=wandb.Settings(console="off", silent=True),
    )


# --------------------------------------------------------------------------------------------
# Local execution of a wandb sweep YAML
# --------------------------------------------------------------------------------------------


def load_sweep_yaml(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep config {path} does not exist")
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("parameters"), dict):
        raise SweepError(f"{path}: not a wandb sweep config (no 'parameters' mapping)")
    return spec


def expand_grid(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a grid sweep's parameters, in YAML order (``values`` and ``value``)."""
    method = spec.get("method", "grid")
    if method != "grid":
        raise SweepError(f"the local runner runs grid sweeps only (method: {method})")
    names, choices = [], []
    for name, param in spec["parameters"].items():
        if not isinstance(param, dict):
            raise SweepError(f"parameter {name!r}: expected a mapping with 'values' or 'value'")
        if "values" in param:
            values = list(param["values"])
            if not values:
                raise SweepError(f"parameter {name!r} has no values")
        elif "value" in param:
            values = [param["value"]]
        else:
            raise SweepError(f"parameter {name!r}: only 'values'/'value' can run locally (got {sorted(param)})")
        names.append(name)
        choices.append(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def config_from_params(params: dict[str, Any], base: PromptRunConfig | None = None) -> PromptRunConfig:
    """Apply ``--key=value`` pairs exactly as ``${args}`` would pass them to the recipe."""
    from therapy_align.overrides import OverrideError, apply_overrides

    argv = [f"--{key}={_arg(value)}" for key, value in params.items()]
    try:
        return apply_overrides(base or PromptRunConfig(), argv)
    except OverrideError as err:
        raise SweepError(str(err)) from None


def _arg(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_local_sweep(
    path: str | os.PathLike,
    *,
    overrides: dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    console=None,
) -> list[dict[str, Any]]:
    """Run every combination of the sweep YAML here, one offline wandb run each; print and save
    the results sorted by final score. ``overrides`` (e.g. model, limit) win over the YAML."""
    from rich.console import Console
    from rich.table import Table

    from therapy_align.evaluation.empathy_scoring import ensure_evaluator
    from therapy_align.training.models import classify_reference
    from therapy_align.evaluation.report import bar_chart, sort_by_final, to_csv, to_markdown, write_text

    console = console or Console()
    spec = load_sweep_yaml(path)
    combos = [{**params, **(overrides or {})} for params in expand_grid(spec)]
    if out is not None:
        combos = [{**params, "out": str(out)} for params in combos]
    configs = [config_from_params(params) for params in combos]
    for config in configs:  # fail on a bad prompt or model before any work
        check_prompt(config.prompt or "")
        classify_reference(config.model)
    roots = {sweep_dir(c) for c in configs}
    if len(roots) != 1:
        raise SweepError(f"a local sweep writes one directory; the grid spans {sorted(map(str, roots))}")
    (root,) = roots
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    console.print(f"[bold]prompt sweep[/] {path}: {len(configs)} runs -> {root}")

    first = configs[0]
    loaded: dict[str, Any] = {}
    if not all(_complete(config) for config in configs):  # a model that cannot load fails before training anything
        from therapy_align.training.models import load_model_for_inference

        loaded[first.model] = load_model_for_inference(first.model)
    evaluator_choice = ensure_evaluator(first.empeval, root / "empeval-quick", allow_quick=first.quick_empeval)
    if evaluator_choice.quick:
        console.print(f"[yellow]EMP-EVAL:[/] {evaluator_choice.describe()}")
    import empeval

    evaluator = empeval.load(evaluator_choice.path)
    rows = []
    group = f"sweep-{Path(path).stem}-{root.name}"
    for config in configs:
        model_and_tokenizer = loaded.get(config.model)
        if model_and_tokenizer is None and not _complete(config):
            from therapy_align.training.models import load_model_for_inference

            model_and_tokenizer = loaded[config.model] = load_model_for_inference(config.model)
        run = init_wandb(config, group=group)
        try:
            row = run_prompt(
                config,
                model_and_tokenizer=model_and_tokenizer,
                evaluator=evaluator,
                evaluator_choice=evaluator_choice,
                console=console,
                wandb_run=run,
            )
        finally:
            run.finish()
        rows.append(row)

    ranked = sort_by_final(rows)
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    columns = ["rank", "prompt", "model", "n", "empathy", "interpretation", "exploration", "final"]
    note = ""
    if evaluator_choice.quick:
        note = f"\n> EMP-EVAL: {evaluator_choice.describe()}\n"
    write_text(root / "sweep_table.md", f"# Prompt sweep ({path}), best final score first\n\n"
               + to_markdown(ranked, columns) + note)
    write_text(root / "sweep_table.csv", to_csv(ranked, columns + ["quick_evaluator"]))
    bar_chart(ranked, root / "sweep.png", title=f"Prompt sweep: {first.model}, {ranked[0]['n']} inputs",
              label_key=lambda row: row["prompt"], with_paper=False)

    table = Table(title=f"Prompt sweep on {first.model} (n={ranked[0]['n']} inputs), best final score first",
                  caption="E, I, X: sums of EMP-EVAL levels per 1,000 inputs; final = 0.2 E + 0.4 I + 0.4 X")
    short = {"rank": "#", "prompt": "prompt", "empathy": "E", "interpretation": "I", "exploration": "X", "final": "final"}
    for column in short:
        table.add_column(short[column], justify="left" if column == "prompt" else "right", no_wrap=True)
    for row in ranked:
        table.add_row(*(f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in short))
    console.print(table)
    console.print(f"saved {root / 'sweep_table.md'}, {root / 'sweep_table.csv'}, {root / 'sweep.png'}")
    return ranked


def _complete(config: PromptRunConfig) -> bool:
    """Whether this prompt run's generations are all there already (no model needed)."""
    from therapy_align.evaluation.generation import read_inputs, read_outputs, repair_tail

    path = sweep_dir(config) / (config.prompt or "") / "generations.jsonl"
    if not path.is_file():
        return False
    repair_tail(path)
    done = {str(r["id"]) for r in read_outputs(path)}
    return all(r.id in done for r in read_inputs(config.inputs, lenient=config.lenient, limit=config.limit).records)
