"""What a MITI classifier is trained from: :class:`TrainConfig`, taken by :func:`miti.training.train`.

Three sections, each a frozen dataclass whose ``__post_init__`` checks its ranges, so a bad value
(``--train.max_epochs=0``) fails before anything loads, naming its dotted key. The defaults are the
shipped classifier's (``artifacts/miti``); ``recipes/miti_train.py`` holds the presets and says why
each value was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from therapy_align.overrides import ConfigError, check_finite_numbers, check_range


def _minilm() -> str:
    from empeval.config import default_backbone

    return default_backbone()


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which AnnoMI turns, split how."""

    data_dir: str | None = None  # None: $THERAPY_ALIGN_DATA or ../shared/data
    split_seed: int = 0  # the annomi80 split's seed: its held-out 20% of high-quality transcripts is the test side
    dev_fraction: float = 0.1  # of the other transcripts, to select the checkpoint
    max_train_turns: int | None = None  # a random slice of training turns (None: all)
    max_eval_turns: int | None = None  # the first N dev/test turns (None: all)

    def __post_init__(self) -> None:
        check_finite_numbers(self)
        check_range(self, "split_seed", ge=0)
        check_range(self, "dev_fraction", gt=0, lt=1)
        check_range(self, "max_train_turns", ge=1, allow_none=True)
        check_range(self, "max_eval_turns", ge=1, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The frozen encoder's pair features and the head over them."""

    backbone: str = field(default_factory=_minilm)  # all-MiniLM-L6-v2, as EMP-EVAL; used frozen
    max_length: int = 96  # client + therapist tokens
    layers: tuple[int, ...] = (2, 4, 6)  # encoder layers (from 1) whose hidden states are mean-pooled per segment
    hidden: int = 256  # the head's hidden width
    dropout: float = 0.3

    def __post_init__(self) -> None:
        # The upper bound is the encoder's own (max_position_embeddings), checked with its config
        # before anything loads: miti.training.check_backbone.
        check_finite_numbers(self)
        check_range(self, "max_length", ge=8)
        check_range(self, "hidden", ge=1)
        check_range(self, "dropout", ge=0, lt=1)
        if not self.layers or any(layer < 1 for layer in self.layers):
            raise ConfigError(f"give encoder layers numbered from 1, got {self.layers}", field="layers")


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """How the head is trained (the ``train`` section)."""

    seed: int = 0
    max_epochs: int = 10  # the best dev epoch is kept
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    class_weight_power: float = 1.0  # class weights = (1 / frequency) ** power; 0 = unweighted
    limit_batches: int = 0  # >0: at most this many batches per split and epoch (smoke runs)
    threads: int = 1  # torch CPU threads for the head (0 = torch's default)

    def __post_init__(self) -> None:
        check_finite_numbers(self)
        check_range(self, "seed", ge=0)  # torch and numpy refuse a negative seed, deep inside the fit
        check_range(self, "max_epochs", ge=1)
        check_range(self, "batch_size", ge=1)
        check_range(self, "learning_rate", gt=0)
        check_range(self, "weight_decay", ge=0)
        check_range(self, "warmup_fraction", ge=0, lt=1)
        check_range(self, "class_weight_power", ge=0)
        check_range(self, "limit_batches", ge=0)
        check_range(self, "threads", ge=0)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything a trained classifier depends on; ``--data.*``, ``--model.*``, ``--train.*`` override it."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: FitConfig = field(default_factory=FitConfig)
