"""One shared encoder with a 3-level head per mechanism, and its Lightning training module."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from transformers import AutoModel, PretrainedConfig, get_linear_schedule_with_warmup

from empeval.config import TrainConfig
from empeval.mechanisms import LEVELS, MECHANISMS

N_LEVELS = len(LEVELS)


class OrdinalHead(nn.Module):
    """A cumulative-link (proportional-odds) head: one score f per pair and two ordered cut-points
    t0 < t1, with P(level <= k) = sigmoid(t_k - f). EPITOME's levels are ordered (none < weak <
    strong), so level 1 is the band between the cut-points instead of a class of its own that must
    outrank both neighbours: the model can only push a pair's score up or down the scale.

    Returns the three levels' log-probabilities. They serve as logits everywhere a softmax head's
    do: log_softmax leaves log-probabilities unchanged, so cross-entropy, the gate and the decision
    offsets read them as they read a softmax head's logits. log P(1) uses
    sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(b - a)), which stays finite
    however close the cut-points come."""

    def __init__(self, hidden: int):
        super().__init__()
        self.score = nn.Linear(hidden, 1, bias=False)
        self.first_cut = nn.Parameter(torch.tensor(-1.0))
        self.log_gap = nn.Parameter(torch.tensor(0.5))  # t1 - t0 = softplus(log_gap) > 0

    @torch.no_grad()
    def start_at(self, proportions) -> None:
        """Place the cut-points where a pair of score 0 gets these level proportions. At the
        encoder's learning rate (1e-4) the cut-points move by tenths over a whole run, so they
        must start where the levels are: the (class-weighted) training proportions."""
        p = torch.as_tensor(proportions, dtype=torch.float64)
        p = p / p.sum()
        first, second = torch.logit(p[0]), torch.logit(p[0] + p[1])
        self.first_cut.fill_(float(first))
        self.log_gap.fill_(float(torch.log(torch.expm1(second - first))))  # softplus inverse

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        f = self.score(pooled).squeeze(-1)
        gap = nn.functional.softplus(self.log_gap)
        below_first, above_second = self.first_cut - f, f - (self.first_cut + gap)
        log_p0 = nn.functional.logsigmoid(below_first)
        log_p2 = nn.functional.logsigmoid(above_second)
        log_p1 = (nn.functional.logsigmoid(-above_second) + nn.functional.logsigmoid(-below_first)
                  + torch.log(-torch.expm1(-gap)))
        return torch.stack([log_p0, log_p1, log_p2], dim=-1)


class EmpathyClassifier(nn.Module):
    """Cross-encodes (seeker, response) and predicts each mechanism's level from the mean-pooled
    tokens (MiniLM was trained as a mean-pooled sentence encoder, so its CLS token is weak)."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1, ordinal_mechanisms: tuple[str, ...] = ()):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict(
            {m: OrdinalHead(hidden) if m in ordinal_mechanisms else nn.Linear(hidden, N_LEVELS) for m in MECHANISMS})
        # Token-level rationale tagger, one logit per mechanism (trained when rationale_weight > 0;
        # the level heads never read it, so scoring ignores it).
        self.rationale_head = nn.Linear(hidden, len(MECHANISMS))
        # "Does this response answer this post?" logit (trained on mismatched pairs; see
        # TrainConfig.mismatch_fraction and empeval.evaluator.gate_by_fit).
        self.fit_head = nn.Linear(hidden, 1)

    @classmethod
    def from_backbone(cls, backbone: str, dropout: float = 0.1,
                      ordinal_mechanisms: tuple[str, ...] = ()) -> "EmpathyClassifier":
        return cls(AutoModel.from_pretrained(backbone), dropout, ordinal_mechanisms)

    @classmethod
    def from_encoder_config(cls, config: PretrainedConfig, dropout: float = 0.1,
                            ordinal_mechanisms: tuple[str, ...] = ()) -> "EmpathyClassifier":
        """Untrained shell for loading saved weights (no download, no pretrained weights read)."""
        return cls(AutoModel.from_config(config), dropout, ordinal_mechanisms)

    def forward(self, input_ids, attention_mask, token_type_ids=None, return_rationales: bool = False) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        out = {m: head(pooled) for m, head in self.heads.items()}
        out["fit"] = self.fit_head(pooled).squeeze(-1)
        if return_rationales:
            out["rationales"] = self.rationale_head(self.dropout(hidden))  # (batch, tokens, mechanisms)
        return out


def split_metrics(split: str) -> nn.ModuleDict:
    return nn.ModuleDict(
        {
            m: MetricCollection(
                {
                    "accuracy": MulticlassAccuracy(num_classes=N_LEVELS, average="micro", ignore_index=-100),
                    "macro_f1": MulticlassF1Score(num_classes=N_LEVELS, average="macro", ignore_index=-100),
                },
                prefix=f"{split}/{m}/",
            )
            for m in MECHANISMS
        }
    )


class EmpathyLightningModule(L.LightningModule):
    def __init__(self, config: TrainConfig, class_weights: list[list[float]] | None = None,
                 level_counts: list[list[int]] | None = None):
        """`level_counts` (mechanisms, levels) of the training split start the ordinal heads'
        cut-points at the class-weighted level proportions (OrdinalHead.start_at)."""
        super().__init__()
        self.save_hyperparameters({"config": config.to_json(), "class_weights": class_weights})
        self.config = config
        self.model = EmpathyClassifier.from_backbone(config.backbone, config.dropout, config.ordinal_mechanisms)
        # from_pretrained returns eval mode and Lightning keeps modules' modes: enable dropout.
        self.model.train()
        if config.freeze_word_embeddings:
            self.model.encoder.get_input_embeddings().weight.requires_grad_(False)
        if config.freeze_layers:
            encoder = self.model.encoder
            layers = getattr(getattr(encoder, "encoder", None), "layer", None)
            if layers is None or config.freeze_layers > len(layers):
                raise ValueError(f"freeze_layers={config.freeze_layers}: the backbone has "
                                 f"{len(layers) if layers is not None else 'no encoder.layer'} layers")
            for module in (encoder.embeddings, *layers[: config.freeze_layers]):
                module.requires_grad_(False)
        weights = torch.ones(len(MECHANISMS), N_LEVELS) if class_weights is None else torch.tensor(class_weights)
        if level_counts is not None:
            for index, mechanism in enumerate(MECHANISMS):
                if mechanism in config.ordinal_mechanisms:
                    self.model.heads[mechanism].start_at(weights[index].double() * torch.tensor(level_counts[index]))
        self.register_buffer("class_weights", weights.float())
        # One collection per split so train/val/test never share state.
        self.metrics = nn.ModuleDict({f"{s}_split": split_metrics(s) for s in ("train", "val", "test")})
        # ("train" alone would clash with nn.Module.train.)

    def model_step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        labels = batch["labels"]
        tags = batch.get("rationale_tags")
        with_rationales = tags is not None and self.config.rationale_weight > 0
        logits = self.model(
            batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), return_rationales=with_rationales
        )
        loss = torch.zeros((), device=labels.device)
        trained = self.config.trained_mechanisms
        for index, mechanism in enumerate(MECHANISMS):
            target = labels[:, index]
            if mechanism in trained and (target != -100).any():  # a batch of mismatched pairs only has no ER target
                loss = loss + nn.functional.cross_entropy(
                    logits[mechanism], target, weight=self.class_weights[index], ignore_index=-100
                )
            self.metrics[f"{split}_split"][mechanism].update(logits[mechanism].detach().argmax(-1), target)
        if self.config.mismatch_fraction > 0 and split == "train":
            fit = labels[:, len(MECHANISMS)].float()
            fit_loss = nn.functional.binary_cross_entropy_with_logits(logits["fit"], fit)
            self.log("train/fit_loss", fit_loss, batch_size=len(labels))
            loss = loss + self.config.fit_weight * fit_loss
        if with_rationales:
            supervised = tags != -100
            if len(trained) < len(MECHANISMS):  # single task: that mechanism's rationales only
                supervised[..., [m not in trained for m in MECHANISMS]] = False
            if supervised.any():
                rationale_loss = nn.functional.binary_cross_entropy_with_logits(
                    logits["rationales"][supervised], tags[supervised].float()
                )
                self.log(f"{split}/rationale_loss", rationale_loss, batch_size=len(labels))
                loss = loss + self.config.rationale_weight * rationale_loss
        self.log(f"{split}/loss", loss, prog_bar=split != "test", batch_size=len(labels))
        return loss

    def training_step(self, batch, batch_idx):
        return self.model_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self.model_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self.model_step(batch, "test")

    def _log_epoch_metrics(self, split: str) -> None:
        f1s = []
        for mechanism in MECHANISMS:
            values = self.metrics[f"{split}_split"][mechanism].compute()
            self.log_dict(values)
            if mechanism in self.config.trained_mechanisms:
                f1s.append(values[f"{split}/{mechanism}/macro_f1"])
            self.metrics[f"{split}_split"][mechanism].reset()
        # Checkpoint selection uses the mean macro-F1 of the trained mechanisms, weighted equally.
        self.log(f"{split}/macro_f1_mean", torch.stack(f1s).mean(), prog_bar=split == "val")

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            if not parameter.requires_grad:
                continue
            (no_decay if parameter.ndim < 2 else decay).append(parameter)  # no decay on biases/norms
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.config.learning_rate,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.config.warmup_fraction * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

