"""Property tests: any value of a field's type, written as a wandb agent or a user would write
it, parses back to itself; unknown keys are always rejected."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.overrides import OverrideError, apply_overrides, leaf_types

pytestmark = pytest.mark.property


@dataclass(frozen=True, kw_only=True)
class Lora:
    r: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj",)
    quant: Literal["4bit", "8bit", "none"] = "4bit"


@dataclass(frozen=True, kw_only=True)
class Config:
    name: str = "run"
    steps: int = 100
    lr: float = 2e-5
    bf16: bool = True
    limit: int | None = None
    lora: Lora = field(default_factory=Lora)


ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,12}", fullmatch=True)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)

configs = st.builds(
    Config,
    name=names,
    steps=st.integers(-(10**12), 10**12),
    lr=floats,
    bf16=st.booleans(),
    limit=st.none() | st.integers(0, 10**6),
    lora=st.builds(
        Lora,
        r=st.integers(1, 512),
        dropout=floats,
        targets=st.lists(ident, max_size=5).map(tuple),
        quant=st.sampled_from(["4bit", "8bit", "none"]),
    ),
)


def as_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value)  # "True"/"False", as wandb writes bools
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def flat(cfg, prefix=""):
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flat(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


@settings(max_examples=200, deadline=None)
@given(target=configs, use_space=st.booleans())
def test_every_value_round_trips(target, use_space):
    argv = []
    for key, value in flat(target).items():
        text = as_text(value)
        if use_space and not text.startswith("-"):
            argv += [f"--{key}", text]
        else:
            argv.append(f"--{key}={text}")
    assert apply_overrides(Config(), argv) == target


@settings(max_examples=200, deadline=None)
@given(key=ident, value=st.text(max_size=10))
def test_unknown_keys_are_rejected(key, value):
    if key.replace("-", "_") in leaf_types(Config()):
        return
    with pytest.raises(OverrideError, match="unknown config key"):
        apply_overrides(Config(), [f"--{key}={value}"])


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=8).filter(lambda t: t.strip().lstrip("+-").replace("_", "").isdigit() is False))
def test_non_numbers_are_rejected_for_int_fields(text):
    try:
        float(text)
        return  # numeric-looking (e.g. "1e3", "inf") is handled by the int rules
    except ValueError:
        pass
    with pytest.raises(OverrideError, match="bad value for --steps"):
        apply_overrides(Config(), [f"--steps={text}"])


@settings(max_examples=100, deadline=None)
@given(base=configs, later=st.integers(0, 1000), earlier=st.integers(0, 1000))
def test_later_overrides_win(base, later, earlier):
    assert apply_overrides(base, [f"--lora.r={earlier}", f"--lora.r={later}"]).lora.r == later
