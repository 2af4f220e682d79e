"""`therapy-align safety ...`: check messages for crisis signals, train the learned detector, measure both.

    therapy-align safety check --in messages.jsonl --out flags.jsonl   # + flags.summary.json
    therapy-align safety train [--out artifacts/safety] [--train.<field>=value ...]
    therapy-align safety eval [--tune] [--out figures.json] [--plot docs/img/safety_curve.png]

``check`` reads ``{"id", "text"}`` lines strictly (the first bad line stops it with the file, line
and field; ``--lenient`` skips and counts bad lines), writes ``{"id", "crisis", "category",
"score", "reason", "level"}`` lines through the resumable store (a killed run continues; results
made by another version of the detector are refused unless ``--force``), and prints a summary. It
uses the learned detector at ``artifacts/safety`` (or ``--detector``) when there is one, and says
so, or that it falls back to the rules alone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import typer

from therapy_align.errors import exit_on_user_error
from therapy_align.safety.config import SafetyTrainConfig

app = typer.Typer(no_args_is_help=True, help="Crisis detection on messages; the detector's figures.")


@app.command()
@exit_on_user_error
def check(
    in_path: Annotated[Path, typer.Option("--in", help='JSONL, one {"id", "text"} per line.')],
    out: Annotated[Path, typer.Option(help="JSONL of flags; <out stem>.summary.json is written beside it.")],
    lenient: Annotated[bool, typer.Option(help="Skip and count bad lines instead of stopping at the first.")] = False,
    force: Annotated[bool, typer.Option(help="Recompute results stored by another version of the detector.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Messages embedded together.")] = 128,
    semantic: Annotated[bool, typer.Option(help="Use the MiniLM layer (off: phrase patterns only).")] = True,
    detector: Annotated[Optional[Path], typer.Option(help="Learned detector (default artifacts/safety when present).")] = None,
    learned: Annotated[bool, typer.Option(help="Use the learned detector when there is one (off: rules only).")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Flag crisis messages (suicidal ideation, plans or means, self-harm, harm to others, abuse) with a risk level."""
    from therapy_align.files import (atomic_write_json, check_output_path, read_jsonl, store_side_files,
                                     summary_beside)
    from therapy_align.safety.detector import DEFAULT_THRESHOLDS, detect_crisis_batch
    from therapy_align.safety.fingerprint import detector_fingerprint
    from therapy_align.safety.learned import load_if_present
    from therapy_align.store import ResultStore

    summary_path = summary_beside(out)
    check_output_path(out, inputs=[in_path, detector], side_files=[*store_side_files(out), summary_path], force=force)
    rows, skipped = read_jsonl(in_path, fields={"id": (str, int), "text": str}, lenient=lenient)
    texts = {str(r["id"]): r["text"] for r in rows}
    model, which = (None, "crisis detection: rules only (--no-learned)")
    if learned and semantic:
        model, which = load_if_present(detector)
    elif learned:
        which = "crisis detection: rules only (--no-semantic)"
    typer.echo(which, err=True)
    store = ResultStore(out, made_from={"detector": detector_fingerprint(DEFAULT_THRESHOLDS), "semantic": semantic,
                                        "learned": model.fingerprint if model is not None else None},
                        force=force)
    todo = store.start(texts)
    with _progress(progress, len(texts), len(texts) - len(todo)) as advance:
        for start in range(0, len(todo), batch_size):
            ids = todo[start:start + batch_size]
            verdicts = detect_crisis_batch([texts[i] for i in ids], semantic=semantic, learned=model)
            store.append([{"id": i, **v.as_record()} for i, v in zip(ids, verdicts, strict=True)])
            advance(len(ids))
    store.finish()
    records = store.records()
    summary = {
        "in": str(in_path), "out": str(out), "n": len(records),
        "crisis": sum(r["crisis"] for r in records),
        "by_category": dict(Counter(r["category"] for r in records if r["crisis"])),
        "by_level": dict(Counter(r.get("level", "none") for r in records)),
        "skipped_lines": skipped, "semantic": semantic,
        "detector": str(model.path) if model is not None else "rules",
    }
    atomic_write_json(summary_path, summary)
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "skipped_lines"} | {"skipped": len(skipped)}))
    typer.echo(f"flags: {out}   summary: {summary_path}")


class _progress:
    """A rich progress bar (or nothing) that the loop advances."""

    def __init__(self, show: bool, total: int, done: int) -> None:
        self.show, self.total, self.done = show, total, done

    def __enter__(self):
        if not self.show:
            return lambda n: None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.__enter__()
        task = self._bar.add_task("safety check", total=self.total, completed=self.done)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.show:
            self._bar.__exit__(*exc)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@exit_on_user_error
def train(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Artifact directory (published whole, atomically).")] = Path("artifacts/safety"),
    data_dir: Annotated[Optional[Path], typer.Option(help="Directory holding crisis/ and counsel_chat/ (default: ../shared/data).")] = None,
    force: Annotated[bool, typer.Option(help="Retrain even when the artifact's fingerprint matches.")] = False,
) -> None:
    """Train the learned crisis detector (a head on frozen MiniLM embeddings; about a minute on CPU).

    Every field of SafetyTrainConfig is a --train.<field>=value override (presets: recipes/safety_train.py)."""
    from therapy_align.overrides import apply_overrides
    from therapy_align.safety.learned import train_detector

    from therapy_align.files import check_output_path

    cfg = apply_overrides(_TrainArgs(), ctx.args).train
    check_output_path(out, inputs=[data_dir], kind="dir")  # a file, a device or a read-only place: before training
    train_detector(cfg, out, data_dir=data_dir, force=force, log=typer.echo)


@dataclass(frozen=True)
class _TrainArgs:
    """The override root of `safety train`: ``--train.<field>=value``."""

    train: SafetyTrainConfig = field(default_factory=SafetyTrainConfig)


@app.command("eval")
@exit_on_user_error
def evaluate(
    data_dir: Annotated[Optional[Path], typer.Option(help="Directory holding crisis/t-sid.jsonl (default: ../shared/data).")] = None,
    tune: Annotated[bool, typer.Option(help="Also grid-search the semantic margins on T-SID dev + the own set's tune half.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Write the figures as JSON here.")] = None,
    detector: Annotated[Optional[Path], typer.Option(help="Also measure this learned detector with the rules "
                                                     "(default artifacts/safety when present).")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write the recall/FPR curve of the learned detector here (PNG).")] = None,
    loso: Annotated[Optional[Path], typer.Option(help="Also run leave-one-source-out with the default config, "
                                                 "training its detectors under this directory.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out or --plot file.")] = False,
) -> None:
    """Recall and false-positive rate on the project's sets and T-SID, rules alone and with the learned detector."""
    from therapy_align.errors import UserError
    from therapy_align.files import atomic_write_json, check_output_path, refuse_to_replace
    from therapy_align.safety.evaluate import (evaluate_detector, evaluate_own, evaluate_tsid, evaluation_sets, load_tsid,
                                               plot_curves, tune as tune_grid)
    from therapy_align.safety.learned import load_if_present

    for written in (out, plot):
        if written is not None:
            check_output_path(written, inputs=[data_dir, detector], field="--out" if written == out else "--plot")
            refuse_to_replace(written, force=force, field="--out" if written == out else "--plot")
    if out is not None and plot is not None and Path(out).resolve() == Path(plot).resolve():
        raise UserError("--out and --plot are the same file", file=out, field="--plot", fix="give each its own path")
    if loso is not None:
        check_output_path(loso, inputs=[data_dir, detector], kind="dir", field="--loso")
    figures: dict = {}
    for split in ("tune", "holdout", None):
        result = evaluate_own(split=split)
        figures[f"own_{split or 'all'}"] = result
        errors = result.pop("errors")
        typer.echo(f"own set ({split or 'all'}): recall {result['recall']:.3f} of {result['n_crisis']}, "
                   f"FPR {result['fpr']:.3f} of {result['n_other']}; misclassified: {len(errors)}")
        if split is None:
            figures["own_errors"] = errors
    rows = load_tsid(data_dir)
    for split in ("dev", "test"):
        result = evaluate_tsid([r for r in rows if r["split"] == split])
        figures[f"tsid_{split}"] = result
        typer.echo(f"T-SID {split}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items() if isinstance(v, float)))
    if tune:
        best, _ = tune_grid([r for r in rows if r["split"] == "dev"])
        figures["tuned_thresholds"] = best
        typer.echo(f"tuned: {best}")
    model, which = load_if_present(detector)
    typer.echo(which)
    sets = evaluation_sets(data_dir)
    for name, model_in_use in (("rules", None), ("combined", model)):
        if name == "combined" and model is None:
            continue
        result = evaluate_detector(model_in_use, data_dir, sets=sets)
        figures[f"sets_{name}"] = result
        for set_name in sets:
            r = result[set_name]
            typer.echo(f"{name:8s} {set_name:9s}: recall {r['recall']} {r['recall_ci']}, FPR {r['fpr']} {r['fpr_ci']}"
                       + (f", none FPR {r['none_fpr']}" if "none_fpr" in r else "")
                       + (f", levels exact {r['level_exact']}, high/imminent withheld {r['urgent_withheld']}"
                          if "level_exact" in r else ""))
        if plot is not None and name == "combined":
            plot_curves(result["curves"], plot)
            typer.echo(f"curve: {plot}")
    if loso is not None:
        from therapy_align.safety.evaluate import leave_one_source_out

        figures["leave_one_source_out"] = leave_one_source_out(SafetyTrainConfig(), loso, data_dir, log=typer.echo)
    if out is not None:
        atomic_write_json(out, figures)
