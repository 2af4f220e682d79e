"""`empeval train`: fit with the Lightning Trainer, test the best checkpoint, publish the artifact."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger

from empeval.artifact import write_artifact_dir
from empeval.config import TrainConfig
from empeval.datamodule import EpitomeDataModule
from empeval.mechanisms import MECHANISMS
from empeval.model import EmpathyLightningModule

CHECKPOINT_SUFFIX = ".checkpoints"


class CheckpointConfigMismatch(RuntimeError):
    pass


def class_weights(level_counts: np.ndarray, power: float) -> list[list[float]]:
    """(1/frequency)**power per mechanism, normalised to mean 1 so the loss scale is unchanged."""
    counts = np.maximum(level_counts.astype(float), 1.0)  # a level missing from a tiny slice
    weights = (counts.sum(1, keepdims=True) / counts) ** power
    return (weights / weights.mean(1, keepdims=True)).round(6).tolist()


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


def train(config: TrainConfig, out: str | os.PathLike, *, restart: bool = False, progress: bool = True) -> Path:
    """Train, test and write the artifact to `out` (atomically). Returns `out`.

    Checkpoints live in `<out>.checkpoints/` while training; rerunning the same command after an
    interruption resumes from its last.ckpt. They are removed once the artifact is published.
    """
    out = Path(out)
    work = checkpoint_dir(out)
    _check_resumable(work, config, restart)
    L.seed_everything(config.seed, workers=True, verbose=False)

    data = EpitomeDataModule(config)
    data.prepare_data()
    data.setup("fit")
    weights = class_weights(data.train_level_counts(), config.class_weight_power)
    module = EmpathyLightningModule(config, weights)

    checkpoint = ModelCheckpoint(
        dirpath=work, filename="best-{epoch}", monitor="val/macro_f1_mean", mode="max",
        save_top_k=1, save_last=True,
    )
    limit = config.limit_batches or None
    trainer = L.Trainer(
        max_epochs=config.max_epochs,
        accelerator="auto",
        devices=1,
        callbacks=[checkpoint, *([TQDMProgressBar(refresh_rate=10)] if progress else [])],
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
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    fit_seconds = time.perf_counter() - started

    best_path = checkpoint.best_model_path
    if best_path:  # none under fast_dev_run, which skips checkpointing
        state = torch.load(best_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        best_epoch = int(state["epoch"])
    else:
        best_epoch = trainer.current_epoch
    results = trainer.test(module, datamodule=data, verbose=False)[0]

    metrics = {
        "split": "test",
        "n_pairs": len(data.datasets["test"]) if not (config.fast_dev_run or limit) else None,
        "partial_test_split": bool(config.fast_dev_run or limit),
        **{
            m: {
                "accuracy": float(results[f"test/{m}/accuracy"]),
                "macro_f1": float(results[f"test/{m}/macro_f1"]),
            }
            for m in MECHANISMS
        },
        "macro_f1_mean": float(results["test/macro_f1_mean"]),
        "best_epoch": best_epoch,
        "fit_seconds": round(fit_seconds, 1),
        "resumed": resume is not None,  # fit_seconds then covers only the resumed part
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "accelerator": type(trainer.accelerator).__name__,
        },
    }
    write_artifact_dir(
        out,
        model=module.model,
        tokenizer=data.tokenizer,
        config=config,
        class_weights=weights,
        split=data.split_rp_ids(),
        metrics=metrics,
    )
    shutil.rmtree(work, ignore_errors=True)
    return out
