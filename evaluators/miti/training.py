"""`miti train`: fit with the Lightning Trainer (checkpoint on dev macro-F1, resumable), predict
the test split, fit the baselines on the same split, check MITI scores against the experts, and
publish the artifact. The recipe (`recipes/miti_train.py`) holds the configuration."""

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
from miti.datamodule import TurnDataModule
from miti.labels import LABELS
from miti.model import BehaviourModule
from miti.summary import METRICS, multicode_counts, summarise, summarise_counts
from therapy_align.errors import UserError
from therapy_align.files import canonical_json

FEATURE_CACHE = ".miti-features"  # beside the artifact; remove it to recompute
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "miti_train.py"

# The classifier's R:Q and %CR on the held-out high-quality transcripts must be this close
# (relative) to the experts' values on the same transcripts (issue 11).
MITI_TOLERANCE = 0.20


def _resumable(work: Path, cfg, restart: bool) -> None:
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


def check_config(cfg) -> None:
    """Values that would fail late or silently (a slice of 0 turns, a negative epoch count) fail first."""
    d, m, t = cfg.data, cfg.model, cfg.train
    for name, value, low in (("data.max_train_turns", d.max_train_turns, 1), ("data.max_eval_turns", d.max_eval_turns, 1),
                             ("model.max_length", m.max_length, 8), ("model.hidden", m.hidden, 1),
                             ("train.max_epochs", t.max_epochs, 1), ("train.batch_size", t.batch_size, 1),
                             ("train.limit_batches", t.limit_batches, 0), ("train.threads", t.threads, 0)):
        if value is not None and value < low:
            raise UserError(f"must be at least {low}, got {value}", field=name)
    if not 0 < d.dev_fraction < 1:
        raise UserError(f"must be between 0 and 1, got {d.dev_fraction}", field="data.dev_fraction")
    if not 0 <= m.dropout < 1:
        raise UserError(f"must be in [0, 1), got {m.dropout}", field="model.dropout")
    if not m.layers or any(layer < 1 for layer in m.layers):
        raise UserError(f"give encoder layers numbered from 1, got {m.layers}", field="model.layers")
    if t.learning_rate <= 0:
        raise UserError(f"must be positive, got {t.learning_rate}", field="train.learning_rate")
    from transformers import AutoConfig

    try:
        depth = AutoConfig.from_pretrained(m.backbone).num_hidden_layers
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the encoder ({str(err).splitlines()[0][:160]})", file=m.backbone,
                        field="model.backbone") from None
    if max(m.layers) > depth:
        raise UserError(f"the encoder has {depth} layers, got {m.layers}", field="model.layers")


def train(cfg, out: str | os.PathLike, *, restart: bool = False, progress: bool = True) -> Path:
    """Train, test and write the artifact to ``out`` (atomically); rerunning resumes from the last
    checkpoint in ``<out>.checkpoints/``, removed once the artifact is published."""
    check_config(cfg)
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
    trainer = L.Trainer(
        max_epochs=t.max_epochs, accelerator="auto", devices=1, deterministic=True,
        callbacks=[best, *bars], enable_progress_bar=progress, logger=CSVLogger(work, name="logs"),
        limit_train_batches=limit, limit_val_batches=limit, limit_test_batches=limit,
        log_every_n_steps=10, enable_model_summary=False,
    )
    resume = "last" if (work / "last.ckpt").exists() else None
    started = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=resume)
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




def load_recipe():
    """recipes/miti_train.py as a module (recipes are scripts; the config lives there)."""
    import importlib.util
    import sys

    if not RECIPE.is_file():
        raise UserError("recipe not found", file=RECIPE, fix="run from a source checkout (pip install -e .)")
    spec = importlib.util.spec_from_file_location("miti_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def quick_artifact(out: Path, *, progress: bool = False) -> Path:
    """The recipe's fast preset (a slice, about a minute) at ``out``, trained once and reused."""
    from miti.artifact import read_settings

    if (out / "miti_config.json").is_file():
        read_settings(out)
        return out
    return train(load_recipe().FAST, out, progress=progress)
