"""The cell evaluator: model x system prompt x inputs x generation spec x scorers -> named columns.

Every report (Table 1, the prompt sweep, and the later RL, MITI, safety and multi-turn reports)
evaluates cells through :func:`evaluate_cells`. A cell directory holds::

    generations.jsonl        one reply per input (generated cells; resumable, fingerprinted)
    scores-<scorer>.jsonl    one line per pair and scorer (resumable, fingerprinted)
    summary.json             n, metrics = {column: value} merged from every scorer's summarise()

A *reference cell* has its replies given rather than generated (``CellSpec.pairs``: a JSONL of
``{"id", "seeker", "response"}``, e.g. human therapists' replies), so human rows go through the
very same scorers and show in the same reports. ``pairs`` may also name a registered reference
builder (:data:`REFERENCES`) that writes such a file on first use.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.evaluation.generation import GenerationSpec, InputRecord, ModelCache, read_generations, run_generation
from therapy_align.files import atomic_write_json, canonical_json
from therapy_align.scoring import Pair, Scorer, read_pairs, score_pairs

# Reference rows by name -> "module:function"; function(out_dir: Path) -> Path of a pairs JSONL
# (written once into out_dir, reused after). Stages add one line here.
REFERENCES: dict[str, str] = {
    "annomi_high": "therapy_align.evaluation.human_reference:build_annomi_high",  # human counsellors' replies
    "annomi_low": "therapy_align.evaluation.human_reference:build_annomi_low",
    "counselchat": "therapy_align.evaluation.human_reference:build_counselchat",
}


@dataclass(frozen=True, kw_only=True)
class CellSpec:
    """One row x prompt of a report. ``row`` keys the row (``base``, ``annomi80``, ``grpo``,
    ``human``...); ``model`` is a model reference (hub id, ``tiny-base``, ``runs/<name>``) for
    generated cells; ``pairs`` (a pairs JSONL or a :data:`REFERENCES` name) makes a reference cell."""

    row: str
    prompt: str = "standard"
    model: str = ""
    pairs: str = ""
    label: str = ""
    limit: int | None = None  # a reference cell scores a seeded sample of this many of its pairs

    def __post_init__(self) -> None:
        if bool(self.model) == bool(self.pairs):
            raise UserError(f"cell {self.row!r} needs exactly one of a model reference or a pairs file",
                            field="cell")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"cell {self.row!r}: limit must be at least 1, got {self.limit}", field="limit")

    @property
    def slug(self) -> str:
        return f"{self.row}__{self.prompt}" if self.prompt else self.row

    @property
    def is_reference(self) -> bool:
        return bool(self.pairs)


@dataclass
class CellResult:
    spec: CellSpec
    n: int
    metrics: dict[str, float]
    records: list[dict[str, Any]]  # {id, text, response, ...} per pair, in input order
    scores: dict[str, list[dict[str, Any]]]  # scorer name -> one dict per record
    reused: bool  # nothing was generated or scored now
    seconds: float

    def row(self) -> dict[str, Any]:
        return {"row": self.spec.row, "prompt": self.spec.prompt,
                "model_ref": self.spec.model or self.spec.pairs, "n": self.n, **self.metrics}


def sample_pairs(pairs: list[Pair], limit: int | None, seed: int = 0) -> list[Pair]:
    """A seeded sample of ``limit`` pairs in file order (all of them when there are no more): a
    random sample rather than the first N, since reference files run session by session."""
    if limit is None or len(pairs) <= limit:
        return pairs
    import numpy as np

    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=limit, replace=False))
    return [pairs[int(i)] for i in keep]


def register_reference(name: str, target: str) -> None:
    REFERENCES[name] = target


def resolve_pairs(value: str, work_dir: Path) -> Path:
    """A reference cell's pairs file: ``value`` itself, or what its registered builder writes."""
    path = Path(value)
    if path.is_file():
        return path
    if value in REFERENCES:
        module_name, _, attribute = REFERENCES[value].partition(":")
        try:
            builder = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as err:
            raise UserError(f"reference {value!r} needs {REFERENCES[value]}, which cannot be loaded ({err})",
                            field="references") from None
        return Path(builder(work_dir / "references"))
    raise UserError("neither a pairs file nor a registered reference", file=value, field="references",
                    fix="give a JSONL of {id, seeker, response}" + (f" or one of {', '.join(REFERENCES)}" if REFERENCES else ""))


def evaluate_cell(
    spec: CellSpec,
    cell_dir: str | Path,
    *,
    inputs: Sequence[InputRecord],
    generation: GenerationSpec,
    scorers: Sequence[Scorer],
    system_prompt: str | None = None,
    models: ModelCache | None = None,
    force: bool = False,
    console=None,
) -> CellResult:
    """Generate (or read the given replies), score with every scorer, write ``summary.json``.

    Everything resumes: a finished generation file loads no model, a finished scores file runs no
    scorer. ``system_prompt`` is the text of ``spec.prompt`` (generated cells)."""
    started = time.perf_counter()
    cell_dir = Path(cell_dir)
    computed = False
    if spec.is_reference:
        pairs, _ = read_pairs(resolve_pairs(spec.pairs, cell_dir.parent.parent))
        pairs = sample_pairs(pairs, spec.limit)
        records = [{"id": p.id, "text": p.seeker, "response": p.response} for p in pairs]
    else:
        summary = run_generation(model_ref=spec.model, prompt_name=spec.prompt, system_prompt=system_prompt,
                                 inputs=inputs, out=cell_dir / "generations.jsonl", spec=generation, force=force,
                                 console=console, models=models, description=spec.slug)
        computed = summary.generated > 0
        records = read_generations(cell_dir / "generations.jsonl", inputs)
        pairs = [Pair(id=str(r["id"]), seeker=r["text"], response=r.get("response", "")) for r in records]
    metrics: dict[str, float] = {}
    scores: dict[str, list[dict[str, Any]]] = {}
    for scorer in scorers:
        scored = []
        scores[scorer.name] = score_pairs(scorer, pairs, cell_dir / f"scores-{scorer.name}.jsonl", force=force,
                                          on_progress=scored.append)
        computed = computed or bool(scored)
        columns = scorer.summarise(pairs, scores[scorer.name])
        clash = sorted(set(columns) & set(metrics))
        if clash:
            raise ValueError(f"scorer {scorer.name!r} returns columns another scorer returned: {clash}")
        metrics.update(columns)
    body = {"cell": spec.slug, "row": spec.row, "prompt": spec.prompt, "model_ref": spec.model,
            "pairs": spec.pairs, "n": len(pairs), "metrics": metrics,
            "scorers": {scorer.name: dict(scorer.identity()) for scorer in scorers},
            "generation": None if spec.is_reference else generation.identity()}
    _write_if_changed(cell_dir / "summary.json", body)
    return CellResult(spec=spec, n=len(pairs), metrics=metrics, records=records, scores=scores,
                      reused=not computed, seconds=time.perf_counter() - started)


def _write_if_changed(path: Path, body: Mapping[str, Any]) -> None:
    """Rewrite ``path`` only when its content changes (a reused cell keeps its files untouched)."""
    if path.is_file():
        try:
            if canonical_json(json.loads(path.read_text(encoding="utf-8"))) == canonical_json(body):
                return
        except ValueError:
            pass
    atomic_write_json(path, body)


def evaluate_cells(
    specs: Sequence[CellSpec],
    out_dir: str | Path,
    *,
    inputs: Sequence[InputRecord],
    generation: GenerationSpec,
    scorers: Sequence[Scorer],
    models: ModelCache | None = None,
    force: bool = False,
    console=None,
) -> list[CellResult]:
    """Every cell into ``out_dir/<slug>/``, visiting each model's cells together (each model loads
    once); results in the order of ``specs``."""
    from therapy_align.data.system_prompts import check_prompt

    slugs = [spec.slug for spec in specs]
    if len(set(slugs)) != len(slugs):
        raise UserError(f"two cells share a name in {slugs}", field="cells")
    prompts = {spec.prompt: check_prompt(spec.prompt) for spec in specs if not spec.is_reference}  # fail early
    models = models or ModelCache()
    order = sorted(range(len(specs)), key=lambda i: (specs[i].is_reference, specs[i].model, i))
    results: dict[int, CellResult] = {}
    for index in order:
        spec = specs[index]
        result = evaluate_cell(spec, Path(out_dir) / spec.slug, inputs=inputs, generation=generation,
                               scorers=scorers, system_prompt=prompts.get(spec.prompt), models=models, force=force,
                               console=console)
        results[index] = result
        if console is not None:
            shown = ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.metrics.items())
            console.print(f"{spec.slug}: {'reused' if result.reused else 'done'} (n={result.n}) {shown}",
                          highlight=False)
    models.release()
    return [results[i] for i in range(len(specs))]
