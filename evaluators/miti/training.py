"""Training the MI-behaviour classifier: :func:`train` fits with the Lightning Trainer (checkpoint on
dev macro-F1, resumable), predicts the test split, fits the baselines on the same split, checks
MITI scores against the experts, and publishes the artifact. It takes a :class:`miti.config.TrainConfig`;
`therapy-align miti train` and `recipes/miti_train.py` (the presets) both call it."""

from __future__ import annotations

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
from transformers import AutoModel

from empeval.training import checkpoint_dir, class_weights
from miti import baselines
from miti.artifact import settings_of, write_artifact
from miti.config import ModelConfig, TrainConfig
from miti.datamodule import TurnDataModule
from miti.labels import LABELS
from miti.model import BehaviourModule
from miti.summary import METRICS, multicode_counts, summarise, summarise_counts
from therapy_align.errors import UserError
from therapy_align.files import canonical_json
from therapy_align.lightning_stops import TrainingStops, fit_or_stop

FEATURE_CACHE = ".miti-features"  # beside the artifact; remove it to recompute

# The classifier's R:Q and %CR on the held-out high-quality transcripts must be this close
# (relative) to the experts' values on the same transcripts for its MITI columns to stand in for
# expert coding in reports.
MITI_TOLERANCE = 0.20


def _resumable(work: Path, cfg: TrainConfig, restart: bool) -> None:
    """Checkpoints of a run with another config would mix two runs: refuse unless --restart, which
    discards them."""
    stamp, made_from = work / "recipe.json", canonical_json({"data": cfg.data, "model": cfg.model, "train": cfg.train})
    if restart:
        shutil.rmtree(work, ignore_errors=True)
    if stamp.exists() and stamp.read_text() != made_from:
        raise UserError("holds checkpoints of a run with another configuration", file=work,
                        fix="rerun with the same settings to resume, or pass --restart to discard them")
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(made_from)


def miti_check(test, predicted: list[str]) -> dict:
    """Expert vs classifier MITI scores on the held-out high-quality test transcripts."""
    high = (test["quality"] == "high").to_numpy()
    expert = summarise(test.loc[high, "label"])
    model = summarise([p for p, keep in zip(predicted, high) if keep])
    multicode = summarise_counts(multicode_counts(test.loc[high, "reflection_subtype"],
                                                  test.loc[high, "question_subtype"]))
    relative = {m: (None if expert[m] in (None, 0) or model[m] is None else round(abs(model[m] - expert[m]) / expert[m], 4))
                for m in METRICS}
    return {
        "transcripts": sorted(set(test.loc[high, "transcript_id"]), key=lambda v: (len(v), v)),
        "expert_main_behaviour": {m: expert[m] for m in (*METRICS, "n", "counts")},
        "expert_all_codes": {m: multicode[m] for m in METRICS},
        "classifier": {m: model[m] for m in (*METRICS, "n", "counts")},
        "relative_difference": relative,
        "tolerance": MITI_TOLERANCE,
        "within_tolerance": all(relative[m] is not None and relative[m] <= MITI_TOLERANCE
                                for m in ("r_q", "pct_complex_reflections")),
    }


def check_backbone(model: ModelConfig) -> None:
    """The encoder must exist and have the layers asked for (read from its config, so checked here,
    not with the ranges in :class:`~miti.config.ModelConfig`)."""
    from transformers import AutoConfig

    try:
        encoder = AutoConfig.from_pretrained(model.backbone)
        depth = encoder.num_hidden_layers
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the encoder ({str(err).splitlines()[0][:160]})", file=model.backbone,
                        field="model.backbone") from None
    if max(model.layers) > depth:
        raise UserError(f"the encoder has {depth} layers, got {model.layers}", field="model.layers")
    window = getattr(encoder, "max_position_embeddings", None)
    if window is not None and model.max_length > window:  # past it the position table is indexed out of range
        raise UserError(f"must be <= {window}, the encoder's max_position_embeddings, got {model.max_length}",
                        field="model.max_length", fix=f"give --model.max_length={window} or less")


def train(cfg: TrainConfig, out: str | os.PathLike, *, restart: bool = False, progress: bool = True) -> Path:
    """Train, test and write the artifact to ``out`` (atomically); rerunning resumes from the last
    checkpoint in ``<out>.checkpoints/`` (``restart`` discards them), removed once the artifact is published."""
    check_backbone(cfg.model)
    out, t = Path(out), cfg.train
    work = checkpoint_dir(out)
    _resumable(work, cfg, restart)
    L.seed_everything(t.seed, workers=True, verbose=False)
    data = TurnDataModule(cfg, out.parent / FEATURE_CACHE, progress=progress)
    data.prepare_data()
    data.setup("fit")
    if t.threads:  # after the features, which use every core
        torch.set_num_threads(t.threads)
    weights = class_weights(data.train_label_counts(), t.class_weight_power)[0]
    module = BehaviourModule(cfg.model, t, data.n_features, weights)
    best = ModelCheckpoint(dirpath=work, filename="best-{epoch}", monitor="val/macro_f1", mode="max",
                           save_top_k=1, save_last=True)
    bars = [TQDMProgressBar(refresh_rate=10)] if progress else []
    limit = t.limit_batches or None
    stops = TrainingStops(checkpoint_path=work / "last.ckpt")
    trainer = L.Trainer(
        max_epochs=t.max_epochs, accelerator="auto", devices=1, deterministic=True,
        callbacks=[best, stops, *bars], enable_progress_bar=progress, logger=CSVLogger(work, name="logs"),
        limit_train_batches=limit, limit_val_batches=limit, limit_test_batches=limit,
        log_every_n_steps=10, enable_model_summary=False,
    )
    resume = "last" if (work / "last.ckpt").exists() else None
    started = time.perf_counter()
    fit_or_stop(trainer, stops, module, datamodule=data, ckpt_path=resume)
    fit_seconds = time.perf_counter() - started
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    trainer.test(module, datamodule=data, verbose=False)

    probabilities = torch.cat(module.test_probabilities).numpy()
    test = data.frames["test"].iloc[: len(probabilities)]
    train_frame = data.frames["train"]
    predicted = [LABELS[i] for i in probabilities.argmax(-1)]
    predictions = {
        "classifier": predicted,
        "majority": baselines.majority(train_frame, test),
        "tfidf_logreg": baselines.tfidf_logreg(train_frame, test, seed=t.seed),
    }
    truth = list(test["label"])
    metrics = {
        "split": "test",
        "n_test_turns": len(test),
        "partial_test_split": bool(limit or cfg.data.max_eval_turns),
        "n_train_turns": len(train_frame),
        "methods": {name: baselines.classification_metrics(truth, p) for name, p in predictions.items()},
        "miti_heldout_high": {name: miti_check(test, p) for name, p in predictions.items()},
        "best_epoch": int(state["epoch"]),
        "fit_seconds": round(fit_seconds, 1),
        "resumed": resume is not None,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_avg_1min": round(os.getloadavg()[0], 2)},
    }
    lines = [
        {"id": row.id, "transcript_id": row.transcript_id, "quality": row.quality, "label": row.label,
         "prediction": predicted[i], "probabilities": np.round(probabilities[i], 6).tolist(),
         **{f"{name}_prediction": p[i] for name, p in predictions.items() if name != "classifier"}}
        for i, row in enumerate(test.itertuples(index=False))
    ]
    encoder = data.encoder or AutoModel.from_pretrained(cfg.model.backbone)
    write_artifact(out, encoder=encoder, head=module.model, tokenizer=data.tokenizer,
                   settings=settings_of(cfg, weights, data.n_features),
                   split=data.split, metrics=metrics, predictions=lines)
    shutil.rmtree(work, ignore_errors=True)
    return out
