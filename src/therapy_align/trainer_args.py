"""A recipe's trainer section: TRL's own config fields, by TRL's own names, passed through whole.

    train = SftArgs(max_steps=100, learning_rate=2e-5)        # any field of trl.SFTConfig
    args = train.build(output_dir=str(run_dir), run_name=name)  # -> trl.SFTConfig(**train, ...)

A stage's config holds one of these beside its own settings (LoRA, data, reward, ...), so a TRL
option the project has never heard of is set like any other (``--train.neftune_noise_alpha=5``,
typed by TRL's own annotation) and needs no code here. The project's additions to a trainer
(held-out loss, wandb on/off, judging cadence) live in the stage's own sections, never in this
mapping; the few arguments that depend on the run (``output_dir``, ``run_name``, precision from the
model's dtype) are given to :meth:`TrainerArgs.build`.

Checked at the door, before anything loads: every float is finite, the ranges a subclass declares in
``RANGES`` hold, and (at override time, or at the latest in :meth:`build`) every name is a field of
the TRL class.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import typing
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from therapy_align.errors import UserError
from therapy_align.overrides import ConfigError, check_range


class TrainerArgsError(ConfigError):
    """A trainer field TRL does not have, a non-finite number, or a value out of its range."""


@functools.cache
def _config_class(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@functools.cache
def trl_field_types(dotted: str) -> dict[str, Any]:
    """``{field: annotation}`` of a TRL config dataclass (``"trl.SFTConfig"``), init fields only."""
    cls = _config_class(dotted)
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


# Every TRL trainer seeds torch, numpy and the data order with these; a negative one fails there,
# after the model has loaded.
SEED_RANGES: dict[str, dict[str, Any]] = {"seed": {"ge": 0}, "data_seed": {"ge": 0, "allow_none": True}}


class TrainerArgs(Mapping[str, Any]):
    """An immutable ``{TRL field: value}`` mapping for the TRL config class ``TRL_CONFIG``.

    Subclasses name the class and may declare ``RANGES = {"field": {"ge": 1}, ...}`` (the bounds of
    :func:`therapy_align.overrides.check_range`) for fields a reproduction depends on.
    """

    TRL_CONFIG: ClassVar[str] = ""
    RANGES: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, **values: Any) -> None:
        self._values = dict(sorted(values.items()))
        self._check()

    # -- mapping
    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:  # cfg.train.max_steps reads like a dataclass field
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_values" or "_values" in self.__dict__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super().__setattr__(name, value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values

    def __hash__(self) -> int:
        return hash((type(self), tuple((k, repr(v)) for k, v in self._values.items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def replace(self, **changes: Any) -> TrainerArgs:
        """A copy with ``changes`` applied (``dataclasses.replace`` for this mapping)."""
        return type(self)(**{**self._values, **changes})

    # -- TRL
    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Every field ``TRL_CONFIG`` accepts, with its annotation (imports TRL)."""
        return trl_field_types(cls.TRL_CONFIG)

    @classmethod
    def check_names(cls, names: typing.Iterable[str], *, prefix: str = "") -> None:
        known = cls.field_types()
        for name in names:
            if name not in known:
                import difflib

                close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
                raise TrainerArgsError(
                    f"{cls.TRL_CONFIG} has no field {name!r}", field=f"{prefix}{name}",
                    fix=("did you mean " + " or ".join(close) + "?") if close else f"see the fields of {cls.TRL_CONFIG}")

    def build(self, **run_args: Any) -> Any:
        """``TRL_CONFIG(**self, **run_args)``; a name both here and in ``run_args`` is a bug."""
        both = set(self._values) & set(run_args)
        if both:
            raise ValueError(f"set by the run, not the recipe: {sorted(both)}")
        self.check_names(self._values)
        return _config_class(self.TRL_CONFIG)(**self._values, **run_args)

    def _check(self) -> None:
        for name, value in self._values.items():
            # a list field (loss_weights, reward_weights) reaches the loss just as a scalar does
            items = value if isinstance(value, list | tuple) else (value,)
            if any(isinstance(item, float) and not math.isfinite(item) for item in items):
                raise TrainerArgsError(f"must be a finite number, got {value!r}", field=name)
        for name, bounds in {**SEED_RANGES, **self.RANGES}.items():
            if name in self._values:
                try:
                    check_range(self, name, **bounds)
                except UserError as err:
                    raise TrainerArgsError(err.what, field=name, fix=err.fix) from None


class SftArgs(TrainerArgs):
    TRL_CONFIG = "trl.SFTConfig"
    RANGES = {"max_steps": {"ge": 1, "fix": "-1 (train by epochs) is not supported here: give a step count"},
              "gradient_accumulation_steps": {"ge": 1}, "per_device_train_batch_size": {"ge": 1},
              "logging_steps": {"ge": 1}, "save_steps": {"ge": 1}, "learning_rate": {"gt": 0},
              "warmup_steps": {"ge": 0}, "weight_decay": {"ge": 0}, "max_grad_norm": {"gt": 0},
              "save_total_limit": {"ge": 1, "allow_none": True}, "max_length": {"ge": 1, "allow_none": True}}


class GrpoArgs(TrainerArgs):
    TRL_CONFIG = "trl.GRPOConfig"
    RANGES = {"max_steps": {"ge": 1}, "learning_rate": {"gt": 0}, "beta": {"ge": 0},
              "num_generations": {"ge": 2}, "per_device_train_batch_size": {"ge": 1},
              "gradient_accumulation_steps": {"ge": 1}, "max_completion_length": {"ge": 1},
              "temperature": {"gt": 0}, "top_p": {"gt": 0, "le": 1}, "save_steps": {"ge": 1}}


class DpoArgs(TrainerArgs):
    TRL_CONFIG = "trl.DPOConfig"
    RANGES = {"max_steps": {"ge": 1}, "learning_rate": {"gt": 0}, "beta": {"gt": 0},
              "per_device_train_batch_size": {"ge": 1}, "gradient_accumulation_steps": {"ge": 1},
              "save_steps": {"ge": 1}, "max_length": {"ge": 1, "allow_none": True}}

