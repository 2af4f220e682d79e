"""The system-prompt sweep (paper §4: "We tried 10 different prompts ... We picked the top one").

One *prompt run* = one cell of the cell evaluator (:mod:`therapy_align.evaluation.cell`): generate
a response to each evaluation input under one system prompt, score the responses with the chosen
scorers (EMP-EVAL by default), log every column and ``final_score`` to wandb. It is what
``recipes/prompts.py`` does for one ``--prompt=...`` (the program a ``wandb agent`` runs for
``wandb/sweep_prompts.yaml``), and what ``therapy-align sweep`` does for every prompt of that
YAML's grid locally, each run logged to wandb offline, followed by a table sorted by final score.

Layout of a sweep directory (default ``runs/sweep-<model>``)::

    <prompt>/generations.jsonl, scores-<scorer>.jsonl, summary.json   one prompt run (resumable)
    sweep_table.md, sweep_table.csv, sweep.png                 all runs, best final score first
    wandb/                                                     offline wandb runs
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.evaluation.generation import DEFAULT_INPUTS, GenerationSpec, ModelLoad

WANDB_PROJECT = "therapy-align-prompts"


class SweepError(UserError):
    """A sweep YAML the local runner cannot run, or a bad parameter in it."""


@dataclass(frozen=True, kw_only=True)
class PromptRunConfig:
    """One run of the prompt sweep; every field is a ``--key=value`` of ``recipes/prompts.py``."""

    prompt: str | None = None  # a registered system prompt; None lists them (recipes/prompts.py)
    model: str = "base"  # paper §2.2.1: meta-llama/Llama-2-7b-chat-hf, "Pretrained"
    inputs: str = DEFAULT_INPUTS  # paper §2.2.2: 1,000 RSDD posts (here: Reddit mental-health posts)
    limit: int | None = None  # None = all 1,000 inputs, as in the paper
    generation: GenerationSpec = field(default_factory=GenerationSpec)  # paper silent: greedy
    load: ModelLoad = field(default_factory=ModelLoad)  # how the model is loaded for generation
    scorers: tuple[str, ...] = ("empeval",)  # the first column named "final" ranks the prompts
    empeval: str = "artifacts/empeval"  # paper §2.2.3: EMP-EVAL trained on its own (EPITOME) data
    quick_empeval: bool = True  # no trained evaluator -> train a quick smoke one (flagged in reports)
    out: str = ""  # sweep directory; "" = runs/sweep-<model>
    wandb_mode: str = "offline"  # "online" under a wandb agent with an account
    lenient: bool = False  # skip bad input lines instead of failing
    force: bool = False  # recompute stored results made from other inputs, models or settings

    def __post_init__(self) -> None:  # checked before a model or an evaluator loads
        from therapy_align.overrides import check_range

        check_range(self, "limit", ge=1, allow_none=True)


# The run config's presets, here rather than in the recipe because both ways of running the sweep
# (recipes/prompts.py for one prompt, `therapy-align sweep` for the grid) take them.
PAPER = PromptRunConfig()
# The real small model on the CPU: Gemma 3 270M (base; or an SFT run, --model=runs/small-sft-annomi80),
# 32 inputs a prompt and 48-token greedy replies, so that the 12 prompts of wandb/sweep_prompts.yaml
# take minutes each rather than the paper's hours; a quick EMP-EVAL (flagged) where none is trained.
SMALL = dataclasses.replace(PAPER, model="gemma-3-270m", limit=32,
                            generation=GenerationSpec(batch_size=16, max_new_tokens=48))
PRESETS = {"paper": PAPER, "small": SMALL}


def with_preset(config: PromptRunConfig, preset: str) -> PromptRunConfig:
    """``config`` with every field that ``preset`` sets differently from the paper's (model, sizes)."""
    if preset not in PRESETS:
        raise SweepError(f"unknown preset {preset!r}", field="preset", fix=f"one of {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    changed = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(PromptRunConfig)
               if getattr(chosen, f.name) != getattr(PAPER, f.name)}
    return dataclasses.replace(config, **changed)


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.strip("/")).strip("-") or "model"


def sweep_dir(config: PromptRunConfig) -> Path:
    return Path(config.out) if config.out else Path("runs") / f"sweep-{model_slug(config.model)}"


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


def make_run_scorers(config: PromptRunConfig, console=None):
    from therapy_align.evaluation.scorers import ScorerContext, make_scorers

    context = ScorerContext(work_dir=sweep_dir(config), artifacts={"empeval": config.empeval},
                            allow_quick=config.quick_empeval, console=console)
    return make_scorers(config.scorers, context)


def run_prompt(config: PromptRunConfig, *, models=None, scorers=None, console=None, wandb_run=None) -> dict[str, Any]:
    """Generate + score one prompt (one cell, ``<sweep dir>/<prompt>/``); returns the result row
    and logs its columns (and ``final_score``) to ``wandb_run`` if given."""
    from therapy_align.data.system_prompts import check_prompt
    from therapy_align.evaluation.cell import CellSpec, evaluate_cell
    from therapy_align.evaluation.generation import read_inputs
    from therapy_align.evaluation.generation import reply_models

    if config.prompt is None:
        raise SweepError("no prompt given", field="prompt", fix="pass --prompt=<name>")
    system_prompt = check_prompt(config.prompt)
    scorers = scorers if scorers is not None else make_run_scorers(config, console)
    report = read_inputs(config.inputs, lenient=config.lenient, limit=config.limit)
    spec = CellSpec(row=model_slug(config.model), prompt=config.prompt, model=config.model, label=config.prompt)
    cell = evaluate_cell(spec, sweep_dir(config) / config.prompt, inputs=report.records, generation=config.generation,
                         scorers=scorers, system_prompt=system_prompt, models=models or reply_models(config.load),
                         force=config.force,
                         console=console)
    row = {"prompt": config.prompt, "model": config.model, "n": cell.n, **cell.metrics}
    if wandb_run is not None:
        wandb_run.log({"final_score": cell.metrics.get("final"), "n_inputs": cell.n, **cell.metrics})
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
        raise SweepError("no such sweep config", file=path, fix="give a wandb sweep YAML, e.g. wandb/sweep_prompts.yaml")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SweepError(f"not readable YAML ({str(err).splitlines()[0]})", file=path) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("parameters"), dict):
        raise SweepError("not a wandb sweep config (no 'parameters' mapping)", file=path)
    return spec


def expand_grid(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a grid sweep's parameters, in YAML order (``values`` and ``value``)."""
    method = spec.get("method", "grid")
    if method != "grid":
        raise SweepError(f"the local runner runs grid sweeps only (method: {method})", field="method")
    names, choices = [], []
    for name, param in spec["parameters"].items():
        if not isinstance(param, dict):
            raise SweepError("expected a mapping with 'values' or 'value'", field=f"parameters.{name}")
        if "values" in param:
            values = list(param["values"])
            if not values:
                raise SweepError("has no values", field=f"parameters.{name}")
        elif "value" in param:
            values = [param["value"]]
        else:
            raise SweepError(f"only 'values'/'value' can run locally (got {sorted(param)})", field=f"parameters.{name}")
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


def run_local_sweep(path: str | os.PathLike, *, overrides: dict[str, Any] | None = None,
                    out: str | os.PathLike | None = None, console=None) -> list[dict[str, Any]]:
    """Run every combination of the sweep YAML here, one offline wandb run each; print and save
    the results sorted by final score. ``overrides`` (dotted keys, e.g. ``model``, ``limit``,
    ``generation.max_new_tokens``) win over the YAML. ``overrides["preset"]`` (``--set preset=small``)
    sizes every run as that preset does: its model, limit and generation replace the YAML's (which
    are the paper's), and the other overrides still win over it."""
    from rich.console import Console
    from rich.table import Table

    from therapy_align.data.system_prompts import check_prompt
    from therapy_align.evaluation.generation import reply_models
    from therapy_align.evaluation.report import TINY_NOTE, is_tiny_reference, metric_columns, sort_by_final, write_report
    from therapy_align.training.models import classify_reference

    console = console or Console()
    spec = load_sweep_yaml(path)
    overrides = dict(overrides or {})
    preset = str(overrides.pop("preset", "paper"))
    if out is not None:
        overrides["out"] = str(out)
    configs = [config_from_params(overrides, with_preset(config_from_params(params), preset))
               for params in expand_grid(spec)]
    for config in configs:  # fail on a bad prompt or model before any work
        check_prompt(config.prompt or "")
        classify_reference(config.model)
    roots = {sweep_dir(c) for c in configs}
    if len(roots) != 1:
        raise SweepError(f"a local sweep writes one directory; the grid spans {sorted(map(str, roots))}", field="out")
    (root,) = roots
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    console.print(f"[bold]prompt sweep[/] {path}: {len(configs)} runs -> {root}")

    first = configs[0]
    scorers = make_run_scorers(first, console)
    models = reply_models(first.load)
    rows = []
    group = f"sweep-{Path(path).stem}-{root.name}"
    for config in configs:
        run = init_wandb(config, group=group)
        try:
            rows.append(run_prompt(config, models=models, scorers=scorers, console=console, wandb_run=run))
        finally:
            run.finish()
    models.release()

    ranked = sort_by_final(rows)
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    notes = [note for scorer in scorers for note in getattr(scorer, "notes", ())]
    if any(is_tiny_reference(c.model) for c in configs):
        notes.insert(0, TINY_NOTE)
    notes.append("E, I, X: sums of EMP-EVAL levels per 1,000 inputs; final = 0.2 E + 0.4 I + 0.4 X (Table 1).")
    paths = write_report(root, ranked, title=f"# Prompt sweep ({path}), best final score first", notes=notes,
                         names={"table_md": "sweep_table.md", "table_csv": "sweep_table.csv", "chart": "sweep.png"},
                         chart_title=f"Prompt sweep: {first.model}, {ranked[0]['n']} inputs",
                         label_key=lambda row: row["prompt"], csv_extra=())

    table = Table(title=f"Prompt sweep on {first.model} (n={ranked[0]['n']} inputs), best final score first",
                  caption="E, I, X: sums of EMP-EVAL levels per 1,000 inputs; final = 0.2 E + 0.4 I + 0.4 X")
    shown = ["rank", "prompt", *metric_columns(ranked)]
    for column in shown:
        table.add_column("#" if column == "rank" else column, justify="left" if column == "prompt" else "right",
                         no_wrap=True)
    for row in ranked:
        table.add_row(*(f"{row[c]:.1f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in shown))
    console.print(table)
    console.print("saved " + ", ".join(str(p) for p in paths.values()))
    return ranked
