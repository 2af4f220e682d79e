"""`empeval train`: fit -> calibrate -> tune offsets -> publish.

`fit` trains with the Lightning Trainer and tests the best checkpoint, `calibrate` fits the
fits-the-post gate on training pairs, `tune_decision_offsets` chooses the IP/EX offsets on dev, and
`publish` scores the test split through the published path (`Evaluator.score`) and writes the
artifact atomically. Studies add their own test read-outs through `train(..., read_outs=...)`:
each callable receives the `TestOutputs` and returns metrics merged into metrics.json
(research/empeval/training_read_outs.py holds the read-out variants, EPITOME's per-batch read-out
and the seeker-shuffle drops; recipes/empeval_train.py passes them).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger

from therapy_align.errors import UserError
from therapy_align.lightning_stops import TrainingStops, fit_or_stop

from empeval.artifact import write_artifact_dir
from empeval.config import TrainConfig
from empeval.datamodule import EpitomeDataModule
from empeval.evaluator import GATED, EmpathyScores, Evaluator, ViewOutputs
from empeval.mechanisms import MECHANISMS
from empeval.model import EmpathyLightningModule

CHECKPOINT_SUFFIX = ".checkpoints"


class CheckpointConfigMismatch(UserError, RuntimeError):
    """Checkpoints of a run with other settings are in the way (rerun the same, or --restart)."""


def class_weights(level_counts: np.ndarray, power: float) -> list[list[float]]:
    """(1/frequency)**power per mechanism, normalised to mean 1 so the loss scale is unchanged."""
    counts = np.maximum(level_counts.astype(float), 1.0)  # a level missing from a tiny slice
    weights = (counts.sum(1, keepdims=True) / counts) ** power
    return (weights / weights.mean(1, keepdims=True)).round(6).tolist()


OFFSET_GRID = np.arange(-1.0, 3.01, 0.25)


def macro_f1(predicted, target) -> float:
    from torchmetrics.functional.classification import multiclass_f1_score

    return float(multiclass_f1_score(torch.as_tensor(predicted), torch.as_tensor(target), num_classes=3, average="macro"))


def accuracy(predicted, target) -> float:
    return float((np.asarray(predicted) == np.asarray(target)).mean()) if len(target) else 0.0


def tune_offsets(view_logits: np.ndarray, owners, labels: np.ndarray, mechanisms=GATED,
                 max_level_2: float | None = None) -> list[list[float]]:
    """Per mechanism in `mechanisms`, the offsets [0, b1, b2] added to the level logits that
    maximise dev macro-F1 of the combined (whole-reply) levels; ties go to the smallest total
    |offset|; b2 <= `max_level_2` when given. Other mechanisms keep [0, 0, 0].

    Only the gated mechanisms by default: their offsets give back to level 2 what the fit gate
    takes from real pairs that fit imperfectly. An ungated mechanism keeps the argmax of the
    class-weighted model: dev has 153 pairs (~5 of a rare level), too few to tune emotional
    reactions' offsets without losing test F1 (docs/research/evaluator-studies.md, "Decision offsets
    and the gate")."""
    from empeval.windows import combine_views

    result = []
    for m in range(len(MECHANISMS)):
        if MECHANISMS[m] not in mechanisms:
            result.append([0.0, 0.0, 0.0])
            continue
        best = (-1.0, 0.0, (0.0, 0.0))
        for b1 in OFFSET_GRID:
            for b2 in OFFSET_GRID if max_level_2 is None else OFFSET_GRID[OFFSET_GRID <= max_level_2]:
                levels, _ = combine_views(view_logits[m] + np.array([0.0, b1, b2]), owners, len(labels))
                f1 = macro_f1(levels, labels[:, m])
                key = (round(f1, 6), -(abs(b1) + abs(b2)))
                if key > best[:2]:
                    best = (*key, (float(b1), float(b2)))
        result.append([0.0, *best[2]])
    return result


def split_metrics_of(scores, labels: np.ndarray) -> dict:
    """Accuracy, macro-F1 and per-level F1 of each mechanism's levels against the labels."""
    return {
        m: {"accuracy": accuracy(scores.levels[m], labels[:, k]), "macro_f1": macro_f1(scores.levels[m], labels[:, k]),
            "f1_per_level": f1_per_level_of(scores.levels[m], labels[:, k])}
        for k, m in enumerate(MECHANISMS)
    }


def f1_per_level_of(predicted, target) -> list[float]:
    from torchmetrics.functional.classification import multiclass_f1_score

    values = multiclass_f1_score(torch.as_tensor(predicted), torch.as_tensor(target), num_classes=3, average=None)
    return [round(float(v), 4) for v in values]


def fit_gate(config: TrainConfig):
    """The artifact's gate: "cosine", True (the trained head) or False (see TrainConfig.fit_gate)."""
    if config.fit_gate == "cosine":
        return "cosine"
    return config.fit_gate == "head" and config.mismatch_fraction > 0 and config.fit_weight > 0


def check_encoder_window(config: TrainConfig) -> None:
    """``max_length`` within the encoder's positions (``max_position_embeddings`` of its config.json),
    read before data or weights load: past them the position table is indexed out of range."""
    from transformers import AutoConfig

    try:
        window = getattr(AutoConfig.from_pretrained(config.backbone), "max_position_embeddings", None)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the encoder's config.json ({str(err).splitlines()[0][:160]})",
                        file=config.backbone, field="train.backbone") from None
    if window is not None and config.max_length > window:
        raise UserError(f"must be <= {window}, the encoder's max_position_embeddings, got {config.max_length}",
                        field="train.max_length", fix=f"give --train.max_length={window} or less")


def checkpoint_dir(out: Path) -> Path:
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


def _check_resumable(work: Path, config: TrainConfig, restart: bool) -> None:
    """Resuming under another configuration would silently mix two runs: refuse instead."""
    saved = work / "train_config.json"
    if restart and work.exists():
        shutil.rmtree(work)
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous != config.to_json():
            changed = sorted(k for k in previous.keys() | config.to_json().keys()
                             if previous.get(k) != config.to_json().get(k))
            raise CheckpointConfigMismatch(
                f"{work} holds checkpoints of a run with other settings ({', '.join(changed)}). "
                "Rerun with the same settings to resume, or pass --restart to discard them."
            )
    work.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(config.to_json(), indent=2))


@dataclass(frozen=True)
class Fitted:
    """The best checkpoint of a fit, with its data and how the fit went."""

    model: torch.nn.Module  # EmpathyClassifier, in eval mode
    data: EpitomeDataModule
    class_weights: list[list[float]]
    best_epoch: int
    dev_macro_f1_mean: float | None  # the checkpoint's (argmax, truncated): what settings should be compared by
    lightning_test: dict  # Lightning's test pass of the best checkpoint: "test/<mechanism>/<metric>" (truncated, argmax)
    fit_seconds: float
    resumed: bool  # fit_seconds then covers only the resumed part
    accelerator: str


def fit(config: TrainConfig, work: Path, *, progress: bool = True) -> Fitted:
    """Train with checkpoints in `work` (resuming from its last.ckpt), load the best one, test it."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = EpitomeDataModule(config)
    data.prepare_data()
    data.setup("fit")
    level_counts = data.train_level_counts()
    weights = class_weights(level_counts, config.class_weight_power)
    module = EmpathyLightningModule(config, weights, level_counts.tolist())

    checkpoint = ModelCheckpoint(
        dirpath=work, filename="best-{epoch}", monitor="val/macro_f1_mean", mode="max",
        save_top_k=1, save_last=True,
    )
    limit = config.limit_batches or None
    stops = TrainingStops(checkpoint_path=work / "last.ckpt")
    trainer = L.Trainer(
        max_epochs=config.max_epochs,
        accelerator="auto",
        devices=1,
        callbacks=[checkpoint, stops, *([TQDMProgressBar(refresh_rate=10)] if progress else [])],
        logger=CSVLogger(work, name="logs"),
        enable_progress_bar=progress,
        fast_dev_run=config.fast_dev_run,
        limit_train_batches=limit,
        limit_val_batches=limit,
        limit_test_batches=limit,
        log_every_n_steps=10,
        deterministic=True,
        enable_model_summary=False,
    )
    resume = "last" if (work / "last.ckpt").exists() else None
    started = time.perf_counter()
    fit_or_stop(trainer, stops, module, datamodule=data, ckpt_path=resume)
    fit_seconds = time.perf_counter() - started

    best_path = checkpoint.best_model_path
    if best_path:  # none under fast_dev_run, which skips checkpointing
        state = torch.load(best_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        best_epoch = int(state["epoch"])
    else:
        best_epoch = trainer.current_epoch
    results = trainer.test(module, datamodule=data, verbose=False)[0]
    return Fitted(model=module.model.eval(), data=data, class_weights=weights, best_epoch=best_epoch,
                  dev_macro_f1_mean=float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
                  lightning_test=results, fit_seconds=fit_seconds, resumed=resume is not None,
                  accelerator=type(trainer.accelerator).__name__)


def is_partial(config: TrainConfig) -> bool:
    """Smoke runs (a few batches) read out a few pairs of each split and calibrate on fewer."""
    return bool(config.limit_batches or config.fast_dev_run)


def split_pairs(config: TrainConfig, data: EpitomeDataModule, split: str):
    """(seekers, responses, labels (pairs, mechanisms), sp_ids) of a split (its first few pairs in
    a smoke run)."""
    rows = data.split_rows[split]
    if is_partial(config):
        rows = rows[: max(1, config.limit_batches or 1) * config.batch_size]
    frame = data.frame.iloc[rows]
    return (frame["seeker_post"].tolist(), frame["response_post"].tolist(), frame[list(MECHANISMS)].to_numpy(),
            frame["sp_id"].tolist())


def calibrate(config: TrainConfig, data: EpitomeDataModule) -> dict | None:
    """The cosine gate's calibration (`empeval.fit`) on training pairs; None for another gate."""
    if fit_gate(config) != "cosine":
        return None
    from empeval.fit import PostFit, calibrate_on_training_pairs

    return calibrate_on_training_pairs(PostFit(), data.frame, data.split_rows["train"], config.seed,
                                       n=32 if is_partial(config) else 300)


def tune_decision_offsets(config: TrainConfig, evaluator: Evaluator, dev) -> list[list[float]]:
    """The decision offsets of the artifact: tuned on dev (`tune_offsets`) for the gated
    mechanisms when the gate is on, zero otherwise or with `tune_offsets` off."""
    if not config.tune_offsets:
        return [[0.0, 0.0, 0.0] for _ in MECHANISMS]
    seekers, responses, labels, _ = dev
    return tune_offsets(*evaluator.gated_view_logits(seekers, responses), labels,
                        mechanisms=GATED if evaluator.fit_gate else (), max_level_2=config.max_gated_level_2_offset)


@dataclass(frozen=True)
class TestOutputs:
    """What a read-out of `train(..., read_outs=...)` receives: the evaluator as published and its
    test split, scored once. `views.read_out(gate, offsets)` reads the same forward pass out with the
    gate and offsets of one's choice; `published` is `views.read_out(evaluator.fit_gate,
    evaluator.offsets)`, what `Evaluator.score` gives."""

    config: TrainConfig
    evaluator: Evaluator
    seekers: list[str]
    responses: list[str]
    labels: np.ndarray  # (pairs, mechanisms)
    sp_ids: list[str]
    views: ViewOutputs
    published: EmpathyScores
    lightning_test: dict  # Fitted.lightning_test


ReadOut = Callable[[TestOutputs], dict]


def publish(out: Path, config: TrainConfig, fitted: Fitted, evaluator: Evaluator, offsets, calibration,
            read_outs: Sequence[ReadOut] = ()) -> dict:
    """Score the test split through the published path, add the read-outs' metrics, write the
    artifact to `out` atomically; returns metrics.json's content."""
    data = fitted.data
    seekers, responses, labels, sp_ids = split_pairs(config, data, "test")
    views = evaluator.view_outputs(seekers, responses, gated=evaluator.fit_gate)
    published = views.read_out(evaluator.fit_gate, evaluator.offsets)
    headline = split_metrics_of(published, labels)
    metrics = {
        "split": "test",
        "n_pairs": None if is_partial(config) else len(data.datasets["test"]),
        "partial_test_split": is_partial(config),
        # The published scoring path (whole replies, decision offsets), i.e. exactly what
        # empeval.load(artifact).score gives on the test split.
        **headline,
        "macro_f1_mean": float(np.mean([headline[m]["macro_f1"] for m in MECHANISMS])),
        "decision_offsets": dict(zip(MECHANISMS, offsets)),
    }
    outputs = TestOutputs(config=config, evaluator=evaluator, seekers=seekers, responses=responses, labels=labels,
                          sp_ids=sp_ids, views=views, published=published, lightning_test=fitted.lightning_test)
    for read_out in read_outs:
        extra = read_out(outputs)
        clash = sorted(set(extra) & set(metrics))
        if clash:
            raise ValueError(f"read-out {getattr(read_out, '__name__', read_out)} would replace {clash}")
        metrics.update(extra)
    metrics.update({
        "n_mismatched_train_pairs": data.n_mismatched,
        "best_epoch": fitted.best_epoch,
        "dev_macro_f1_mean": fitted.dev_macro_f1_mean,
        "fit_seconds": round(fitted.fit_seconds, 1),
        "resumed": fitted.resumed,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "accelerator": fitted.accelerator,
        },
    })
    write_artifact_dir(out, model=fitted.model, decision_offsets=offsets, fit_gate=evaluator.settings["fit_gate"],
                       fit_calibration=calibration, tokenizer=data.tokenizer, config=config,
                       class_weights=fitted.class_weights, split=data.split_rp_ids(), metrics=metrics)
    return metrics


def train(config: TrainConfig, out: str | os.PathLike, *, restart: bool = False, progress: bool = True,
          read_outs: Sequence[ReadOut] = ()) -> Path:
    """Fit, calibrate, tune offsets and publish the artifact to `out` (atomically). Returns `out`.

    Checkpoints live in `<out>.checkpoints/` while training; rerunning the same command after an
    interruption resumes from its last.ckpt. They are removed once the artifact is published.
    `read_outs`: extra test read-outs merged into metrics.json (see `TestOutputs`).
    """
    out = Path(out)
    check_encoder_window(config)
    work = checkpoint_dir(out)
    _check_resumable(work, config, restart)
    fitted = fit(config, work, progress=progress)
    calibration = calibrate(config, fitted.data)
    settings = {"max_length": config.max_length, "fit_gate": fit_gate(config), "fit_calibration": calibration}
    tokenizer = fitted.data.tokenizer
    offsets = tune_decision_offsets(config, Evaluator(fitted.model, tokenizer, settings),
                                    split_pairs(config, fitted.data, "dev"))
    evaluator = Evaluator(fitted.model, tokenizer, {**settings, "decision_offsets": dict(zip(MECHANISMS, offsets))})
    publish(out, config, fitted, evaluator, offsets, calibration, read_outs)
    shutil.rmtree(work, ignore_errors=True)
    return out
