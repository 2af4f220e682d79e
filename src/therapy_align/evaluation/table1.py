"""The grid of paper Table 1: three models x two system prompts, and the paper's own figures.

Paper §4: "We tested 3 different models in all, 2 that were fine tuned, over 2 system prompts
each. This means we have 6 test cases". §2.2.1 names the models: pretrained Llama-2-7b-chat
("base"), trained on 80% of the good AnnoMI conversations ("annomi80"), trained on all good
AnnoMI conversations plus two public sessions ("full_plus").

:func:`run_grid` takes a :class:`Table1Config` (presets: ``recipes/eval_paper.py``) and runs the
chain: SFT of the missing variants (its nested :class:`~therapy_align.training.config.SftConfig`,
trained in this process) -> the cells through the cell evaluator
(:mod:`therapy_align.evaluation.cell`), with extra model rows (e.g. RL adapters) and reference
rows (given replies, e.g. human therapists) -> the report. Layout of an evaluation directory
``runs/<eval>/``::

    sft/<variant>/              SFT runs trained here when no run was given
    empeval-quick/              quick evaluator, only when artifacts/empeval is missing
    cells/<row>__<prompt>/      generations.jsonl, scores-<scorer>.jsonl, summary.json per cell
    report/                     table.md, table.csv, differences.csv, table1.png, examples.md, results.json

Every final score gets a bootstrap 95% interval over the inputs, and every two model rows under
one prompt (and every model across the prompts) a paired difference with its interval
(:mod:`therapy_align.evaluation.intervals`), computed from the stored per-pair scores, so a rerun
that reuses every cell rebuilds them without generating or scoring anything.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from therapy_align.evaluation.cell import CellResult, CellSpec
from therapy_align.evaluation.generation import DEFAULT_INPUTS, GenerationSpec, ModelLoad
from therapy_align.evaluation.intervals import DRAWS, SEED
from therapy_align.overrides import check_range
from therapy_align.training.config import SftConfig

MODELS: tuple[str, ...] = ("base", "annomi80", "full_plus")
PROMPTS: tuple[str, ...] = ("standard", "new")
MODEL_LABELS: dict[str, str] = {"base": "Base Model", "annomi80": "80% Model", "full_plus": "Full + 2 con",
                                "annomi_high": "Human: AnnoMI high-quality", "annomi_low": "Human: AnnoMI low-quality",
                                "counselchat": "Human: CounselChat", "grpo": "GRPO", "dpo": "DPO"}
PROMPT_LABELS: dict[str, str] = {"standard": "Standard", "new": "New", "": "(given replies)"}


@dataclass(frozen=True)
class PaperRow:
    model: str
    prompt: str
    empathy: float
    interpretation: float
    exploration: float
    final: float

    def columns(self) -> dict[str, float]:
        """The figures under the report's column names, prefixed ``paper_``."""
        return {"paper_E": self.empathy, "paper_I": self.interpretation, "paper_X": self.exploration,
                "paper_final": self.final}


# Table 1 of the paper, in its row order (sums of EMP-EVAL levels over 1,000 RSDD inputs), as
# printed. One printed final score disagrees with the paper's formula: 80% / New gives
# 0.2*1488 + 0.4*46 + 0.4*266 = 422.4, printed 421.8 (the other five agree); kept as printed.
PAPER_TABLE1: tuple[PaperRow, ...] = (
    PaperRow("base", "standard", 1090, 20, 16, 232.4),
    PaperRow("annomi80", "standard", 1350, 68, 18, 304.4),
    PaperRow("full_plus", "standard", 1415, 44, 16, 307.0),
    PaperRow("base", "new", 1164, 28, 286, 358.4),
    PaperRow("full_plus", "new", 1475, 46, 248, 412.6),
    PaperRow("annomi80", "new", 1488, 46, 266, 421.8),
)


@dataclass(frozen=True, kw_only=True)
class Table1Refs:
    """A model row's run or model; "" = train it here into ``<out>/sft/<row>`` with the ``sft`` section."""

    base: str = "base"  # a named base, a model directory or a hub id
    annomi80: str = ""
    full_plus: str = ""


@dataclass(frozen=True, kw_only=True)
class Table1Config:
    """One Table-1 evaluation: outputs in ``out``; every field is a ``--dotted.key`` of ``recipes/eval_paper.py``."""

    preset: str = "paper"  # shown in the report's title
    out: str = "runs/eval-paper"
    inputs: str = DEFAULT_INPUTS
    limit: int | None = None  # the first N inputs; None: all
    lenient: bool = False  # skip bad input lines instead of failing
    force: bool = False  # recompute stored results made from other inputs, models or settings
    models: tuple[str, ...] = MODELS
    prompts: tuple[str, ...] = PROMPTS
    refs: Table1Refs = field(default_factory=Table1Refs)
    extra_models: tuple[str, ...] = ()  # more rows, name=ref (e.g. grpo=runs/grpo)
    # rows of given replies scored alike (human counsellors): a registered name or name=pairs.jsonl
    references: tuple[str, ...] = ("annomi_high", "annomi_low", "counselchat")
    reference_limit: int | None = None  # a seeded sample of N pairs per reference row; None: all of them
    # how missing runs are trained; name, runs_dir and data.split follow each row (split full_plus
    # takes --sft.data.extra_transcripts, which the annomi80 row leaves out)
    sft: SftConfig = field(default_factory=SftConfig)
    train_missing: bool = True  # False: a row without a run is an error
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    load: ModelLoad = field(default_factory=ModelLoad)
    # EMP-EVAL, the safety layer's harm columns and the guard columns that show what could fool
    # EMP-EVAL (length, specificity, template rate, copying, distinct-2); more: judge, miti
    scorers: tuple[str, ...] = ("empeval", "safety", "guards")
    empeval: str = "artifacts/empeval"
    artifacts: tuple[str, ...] = ()  # other scorers' artifacts, name=dir (e.g. judge=artifacts/judge)
    # a missing artifact is trained on first use (EMP-EVAL's and MITI's default recipes, the judge's fast
    # one on seed 1; the report's notes say which); False: an error naming the command that trains it
    quick_empeval: bool = True
    empeval_first_use: str = "default"  # the recipe a missing EMP-EVAL artifact trains: default or fast
    examples_per_cell: int = 3

    def __post_init__(self) -> None:
        from therapy_align.errors import UserError
        from therapy_align.evaluation.scorers.empeval import FIRST_USE_RECIPES

        check_range(self, "limit", ge=1, allow_none=True)
        check_range(self, "reference_limit", ge=1, allow_none=True)
        if self.empeval_first_use not in FIRST_USE_RECIPES:
            raise UserError(f"unknown recipe {self.empeval_first_use!r}", field="empeval_first_use",
                            fix=f"one of {', '.join(FIRST_USE_RECIPES)}")
        check_range(self, "examples_per_cell", ge=0)


def paper_row(model: str, prompt: str) -> PaperRow | None:
    for row in PAPER_TABLE1:
        if row.model == model and row.prompt == prompt:
            return row
    return None


def cell_label(row: str, prompt: str) -> str:
    return f"{MODEL_LABELS.get(row, row)} / {PROMPT_LABELS.get(prompt, prompt)}"


def grid(refs: dict[str, str], models: tuple[str, ...] = MODELS, prompts: tuple[str, ...] = PROMPTS) -> list[CellSpec]:
    """Every (model, prompt) cell, prompts outer as in the paper's table (standard rows first)."""
    return [CellSpec(row=model, prompt=prompt, model=refs[model], label=cell_label(model, prompt))
            for prompt in prompts for model in models]


def named_values(items: tuple[str, ...], field: str) -> dict[str, str]:
    """``("name=value", ...)`` as a dict; a bare ``name`` maps to itself."""
    from therapy_align.errors import UserError

    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name or (sep and not value) or name in out:
            raise UserError(f"bad entry {item!r}", field=field, fix="give name=value entries with distinct names")
        out[name] = value if sep else name
    return out


# --------------------------------------------------------------------------------------------
# SFT of the missing variants, in this process
# --------------------------------------------------------------------------------------------


def variant_config(cfg: Table1Config, key: str) -> SftConfig:
    """The SFT config that trains model row ``key`` into ``<out>/sft/<key>``: the ``sft`` section with
    the row's name, directory and split; the extra sessions and CounselChat go to ``full_plus`` only."""
    sft = cfg.sft
    only_full_plus = {} if key == "full_plus" else {"extra_transcripts": (), "include_counselchat": False}
    return dataclasses.replace(sft, name=key, runs_dir=str(Path(cfg.out) / "sft"),
                               data=dataclasses.replace(sft.data, split=key, **only_full_plus))


def to_train(cfg: Table1Config) -> list[str]:
    """The model rows with no run given and no complete run in ``<out>/sft/``: SFT trains them."""
    from therapy_align.errors import UserError
    from therapy_align.training.models import classify_reference, is_run_dir

    missing = []
    for key in cfg.models:
        if key not in MODELS:
            raise UserError(f"unknown model {key!r}", field="models", fix=f"Table 1 has {', '.join(MODELS)}")
        given = getattr(cfg.refs, key)
        if given:
            classify_reference(given)  # a bad path fails here, before anything heavy
        elif not is_run_dir(Path(cfg.out) / "sft" / key):
            if not cfg.train_missing:
                raise UserError(f"no SFT run for {key}", field=f"refs.{key}",
                                fix=f"pass --refs.{key}=runs/<name> or --train_missing=true")
            missing.append(key)
    return missing


def resolve_models(cfg: Table1Config, console) -> dict[str, str]:
    """Model key -> reference loadable by ``models.load_model_for_inference``, after training the
    missing SFT variants with :func:`therapy_align.training.sft_run.train` (a killed one resumes).
    Under ``accelerate launch`` every process takes part in the training."""
    from therapy_align.training.sft_run import check_before_loading, newest_checkpoint, train

    missing = to_train(cfg)
    for key in missing:  # every variant's settings are checked before the first one trains
        check_before_loading(variant_config(cfg, key))
    for key in missing:
        sft = variant_config(cfg, key)
        console.rule(f"SFT {key}")
        train(sft, resume=newest_checkpoint(Path(sft.runs_dir) / sft.name) is not None)
    refs = {key: getattr(cfg.refs, key) or str(Path(cfg.out) / "sft" / key) for key in cfg.models}
    for name, ref in named_values(cfg.extra_models, "extra_models").items():
        refs[name] = ref
    return refs


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------


def run_grid(cfg: Table1Config, *, console) -> dict:
    """The whole Table-1 chain for ``cfg``; returns results.json (``{}`` on all but the main
    process, which alone generates and scores once SFT is done).

    Finished cells are reused: complete generation files are not regenerated (no model is
    loaded) and complete scores files are not rescored.
    """
    from accelerate import PartialState

    from therapy_align.data.system_prompts import check_prompt
    from therapy_align.evaluation.cell import evaluate_cells
    from therapy_align.evaluation.generation import ModelCache, read_inputs
    from therapy_align.evaluation.scorers import ScorerContext, make_scorers
    from therapy_align.files import atomic_write_json, check_output_path

    started = time.perf_counter()
    out = check_output_path(cfg.out, kind="dir")
    for prompt in cfg.prompts:
        check_prompt(prompt)  # fail early on a typo
    references = named_values(cfg.references, "references")
    # Every named row and artifact is checked before any SFT run starts.
    from therapy_align.evaluation.cell import REFERENCES, resolve_pairs
    from therapy_align.training.models import classify_reference

    for value in references.values():
        if value not in REFERENCES:
            resolve_pairs(value, out)  # a missing pairs file is a UserError naming it
    for ref in named_values(cfg.extra_models, "extra_models").values():
        classify_reference(ref)
    named_values(cfg.artifacts, "artifacts")
    report = read_inputs(cfg.inputs, lenient=cfg.lenient, limit=cfg.limit)
    if report.skipped:
        console.print(f"[yellow]skipped {len(report.skipped)} bad input lines[/]")
    timings: dict[str, float] = {}

    stage = time.perf_counter()
    refs = resolve_models(cfg, console)
    timings["models"] = time.perf_counter() - stage
    if not PartialState().is_main_process:  # generation and scoring are single-process
        return {}

    stage = time.perf_counter()
    console.rule("scorers")
    context = ScorerContext(work_dir=out, artifacts={"empeval": cfg.empeval, **named_values(cfg.artifacts, "artifacts")},
                            allow_quick=cfg.quick_empeval, empeval_first_use=cfg.empeval_first_use, console=console)
    scorers = make_scorers(cfg.scorers, context)
    timings["scorers"] = time.perf_counter() - stage

    rows = tuple(cfg.models) + tuple(named_values(cfg.extra_models, "extra_models"))
    specs = grid(refs, rows, tuple(cfg.prompts))
    specs += [CellSpec(row=name, prompt="", pairs=value, label=MODEL_LABELS.get(name, name), limit=cfg.reference_limit)
              for name, value in references.items()]
    stage = time.perf_counter()
    console.rule(f"cells: {len(specs)} x {len(report.records)} inputs")
    cells = evaluate_cells(specs, out / "cells", inputs=report.records, generation=cfg.generation, scorers=scorers,
                           models=ModelCache(cfg.load), force=cfg.force, console=console)
    timings["cells"] = time.perf_counter() - stage

    results = {
        "rows": report_rows(cells, scorers),
        "differences": report_differences(cells, scorers),
        "intervals": {"method": "percentile bootstrap over inputs", "draws": DRAWS, "seed": SEED, "level": 0.95},
        "n_inputs": len(report.records),
        "inputs": str(cfg.inputs),
        "skipped_input_lines": len(report.skipped),
        "scorers": {scorer.name: {**scorer.identity(), **({"path": str(scorer.artifact)} if hasattr(scorer, "artifact") else {})}
                    for scorer in scorers},
        "model_refs": refs,
        "references": references,
        "generation": dataclasses.asdict(cfg.generation),
        "load": dataclasses.asdict(cfg.load),
        "notes": [note for scorer in scorers for note in getattr(scorer, "notes", ())] + _notes(cfg, [key for key in cfg.models if not getattr(cfg.refs, key)]),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_table1_report(out / "report", results, cells, scorers, examples_per_cell=cfg.examples_per_cell,
                        preset=cfg.preset, inputs=report.records)
    atomic_write_json(out / "report" / "results.json", results)
    return results


def _notes(cfg: Table1Config, trained: list[str] = ()) -> list[str]:
    notes = []
    for key in trained:  # the sizes a reader needs to weigh a row trained by this very command
        train = variant_config(cfg, key).train
        notes.append(f"{key} was trained here: {train.get('max_steps')} steps of "
                     f"{train.get('per_device_train_batch_size')} chunks of up to {cfg.sft.data.max_tokens} tokens "
                     f"(gradient accumulation {train.get('gradient_accumulation_steps')}, learning rate "
                     f"{train.get('learning_rate')}), split {key}.")
    if cfg.reference_limit is not None and cfg.references:
        notes.append(f"Reference rows: a seeded sample of at most {cfg.reference_limit} pairs each.")
    if "full_plus" in cfg.models and not cfg.refs.full_plus and not cfg.sft.data.extra_transcripts:
        notes.append("full_plus was trained here on 100% of the good AnnoMI conversations *without* the paper's "
                     "two extra sessions (pass `--sft.data.extra_transcripts=a.txt,b.txt`).")
    return notes


def report_rows(cells: list[CellResult], scorers) -> list[dict]:
    """results.json's rows: each cell's columns, the paper's figures for its cell, and the bootstrap
    interval bounds (``<column>_lo``, ``<column>_hi``) of every column with per-input values."""
    from therapy_align.evaluation.intervals import row_intervals

    rows = []
    for cell in cells:
        paper = paper_row(cell.spec.row, cell.spec.prompt)
        rows.append({**cell.row(), **(paper.columns() if paper else {}), **row_intervals(cell, scorers)})
    return rows


def report_differences(cells: list[CellResult], scorers) -> list[dict]:
    """The paired differences of final (and judge_final) between model rows under one prompt and
    between the prompts of one model, each labelled ``comparison`` (read as a - b)."""
    from therapy_align.evaluation.intervals import row_differences

    out = []
    for d in row_differences(cells, scorers):
        if d["kind"] == "model":
            label = (f"{MODEL_LABELS.get(d['a_row'], d['a_row'])} − {MODEL_LABELS.get(d['b_row'], d['b_row'])} "
                     f"({PROMPT_LABELS.get(d['a_prompt'], d['a_prompt'])})")
        else:
            label = (f"{MODEL_LABELS.get(d['a_row'], d['a_row'])}: {PROMPT_LABELS.get(d['a_prompt'], d['a_prompt'])} "
                     f"− {PROMPT_LABELS.get(d['b_prompt'], d['b_prompt'])}")
        out.append({"comparison": label, **d})
    return out


DIFFERENCE_COLUMNS = ("comparison", "kind", "a", "b", "column", "n", "diff", "lo", "hi", "significant")


def write_table1_report(report_dir, results: dict, cells: list[CellResult], scorers, *, examples_per_cell: int,
                        preset: str = "", inputs=()) -> None:
    """table.md (with the paired differences), table.csv, differences.csv, table1.png and
    examples.md for a finished grid."""
    from therapy_align.evaluation.intervals import DRAWS, SEED
    from therapy_align.evaluation.report import differences_markdown, model_notes, pick_examples, to_csv, write_report
    from therapy_align.files import atomic_write_text
    from therapy_align.scoring import describe_score

    rows = [dict(row, model=MODEL_LABELS.get(row["row"], row["row"]), prompt=PROMPT_LABELS.get(row["prompt"], row["prompt"]))
            for row in results["rows"]]
    notes = model_notes(results["model_refs"].values()) + list(results.get("notes", []))
    intervals = results.get("intervals", {"draws": DRAWS, "seed": SEED})
    notes += [
        f"E, I, X: sums of EMP-EVAL levels (0/1/2) scaled to 1,000 inputs (n = {results['n_inputs']} inputs "
        "here), final = 0.2 E + 0.4 I + 0.4 X, as in the paper's Table 1 (its figures beside, as Paper *).",
        f"[lo, hi] after a final score: its 95% interval, a percentile bootstrap over the row's inputs "
        f"({intervals['draws']:,} draws, seed {intervals['seed']}); table.csv has `<column>_lo` and `<column>_hi` "
        "for E, I, X and final (and the judge's). Paired differences: the section below and differences.csv.",
        "Paper Table 1 as printed; its 80% / New final (421.8) disagrees with its own formula "
        "(0.2*1488 + 0.4*46 + 0.4*266 = 422.4).",
        f"Inputs: {results['inputs']}. Scorers: "
        + ", ".join(f"{name} ({', '.join(f'{k}={v}' for k, v in identity.items())})"
                    for name, identity in results["scorers"].items()) + ".",
        "Models: " + ", ".join(f"{k} = `{v}`" for k, v in results["model_refs"].items()) + ".",
        "Generation: " + ", ".join(f"{k}={v}" for k, v in results["generation"].items()) + "; loading: "
        + ", ".join(f"{k}={v}" for k, v in results.get("load", {}).items()) + ".",
    ]
    if results.get("references"):
        notes.append("Reference rows (given replies, not generated; their own inputs): "
                     + ", ".join(f"{k} = `{v}`" for k, v in results["references"].items()) + ".")
    example_ids = [record.id for record in list(inputs)[:examples_per_cell]]
    sections = []
    for cell in cells:
        lines = {str(record["id"]): [describe_score(scorer, cell.scores[scorer.name][index]) for scorer in scorers]
                 for index, record in enumerate(cell.records)}
        sections.append((cell.spec.label or cell.spec.slug,
                         pick_examples(cell.records, lines, examples_per_cell, example_ids)))
    title = "# Table 1 reproduction" + (f" ({preset} preset)" if preset else "")
    differences = results.get("differences", [])
    write_report(report_dir, rows, title=title, notes=notes, sections=sections,
                 names={"chart": "table1.png"},
                 chart_title=f"Per 1,000 inputs (n={results['n_inputs']}) vs paper Table 1",
                 appendix=differences_markdown(differences, draws=intervals["draws"], seed=intervals["seed"]))
    atomic_write_text(Path(report_dir) / "differences.csv", to_csv(differences, DIFFERENCE_COLUMNS))
