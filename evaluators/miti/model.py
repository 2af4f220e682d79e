"""The MI-behaviour head on frozen MiniLM pair features (`miti.features`) and its Lightning module:
EMP-EVAL's optimiser and schedule, torchmetrics accuracy and F1 (macro and per class)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from empeval.model import EmpathyLightningModule
from miti.labels import LABELS


def make_head(in_features: int, hidden: int, dropout: float) -> nn.Sequential:
    """LayerNorm -> Linear -> GELU -> Linear over LABELS (logits)."""
    return nn.Sequential(
        nn.LayerNorm(in_features), nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.GELU(),
        nn.Dropout(dropout), nn.Linear(hidden, len(LABELS)),
    )


def _metrics(side: str) -> MetricCollection:
    n = len(LABELS)
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes=n, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes=n, average="macro"),
            "f1": MulticlassF1Score(num_classes=n, average="none"),
        },
        prefix=f"{side}/",
    )


class BehaviourModule(L.LightningModule):
    """``model_cfg``/``train_cfg``: the ``model`` and ``train`` sections of a :class:`miti.config.TrainConfig`."""

    # EMP-EVAL's AdamW (no decay on biases and norms) + linear warm-up schedule; it reads
    # self.model and self.config.{learning_rate, weight_decay, warmup_fraction}. Its steps call
    # self.model_step(batch, "train" | "val" | "test").
    configure_optimizers = EmpathyLightningModule.configure_optimizers
    training_step = EmpathyLightningModule.training_step
    validation_step = EmpathyLightningModule.validation_step
    test_step = EmpathyLightningModule.test_step

    def __init__(self, model_cfg, train_cfg, in_features: int, class_weights: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters({"in_features": in_features, "class_weights": class_weights})
        self.config = train_cfg
        self.model = make_head(in_features, model_cfg.hidden, model_cfg.dropout)
        weights = torch.ones(len(LABELS)) if class_weights is None else torch.tensor(class_weights)
        self.register_buffer("class_weights", weights.float())
        # ("train" as a ModuleDict key would clash with nn.Module.train)
        self.metrics = nn.ModuleDict({f"{side}_split": _metrics(side) for side in ("train", "val", "test")})
        self.test_probabilities: list[torch.Tensor] = []

    def model_step(self, batch, side: str) -> torch.Tensor:
        features, labels = batch
        logits = self.model(features)
        loss = nn.functional.cross_entropy(logits, labels, weight=self.class_weights)
        self.metrics[f"{side}_split"].update(logits.detach().argmax(-1), labels)
        self.log(f"{side}/loss", loss, prog_bar=side == "train", batch_size=len(labels))
        if side == "test":
            self.test_probabilities.append(torch.softmax(logits.detach().float(), -1).cpu())
        return loss

    def _epoch_end(self, side: str) -> None:
        values = self.metrics[f"{side}_split"].compute()
        per_class = values.pop(f"{side}/f1")
        self.log_dict(values, prog_bar=side == "val")
        self.log_dict({f"{side}/f1/{label}": per_class[i] for i, label in enumerate(LABELS)})
        self.metrics[f"{side}_split"].reset()

    def on_train_epoch_end(self) -> None:
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_start(self) -> None:
        self.test_probabilities = []

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
