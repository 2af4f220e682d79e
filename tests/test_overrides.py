"""apply_overrides: the forms, types and errors of `--dotted.key=value` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest

from therapy_align.overrides import OverrideError, apply_overrides


@dataclass(frozen=True, kw_only=True)
class Inner:
    r: int = 16
    alpha: float = 32.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    quant: Literal["4bit", "8bit", "none"] = "4bit"


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str = "run"
    seed: int = 0
    flag: bool = False
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_equals_and_space_forms_agree():
    a = apply_overrides(Outer(), ["--inner.r=8", "--name=x", "--inner.alpha=1e-1"])
    b = apply_overrides(Outer(), ["--inner.r", "8", "--name", "x", "--inner.alpha", "1e-1"])
    assert a == b == Outer(name="x", inner=Inner(r=8, alpha=0.1))


def test_original_is_untouched_and_result_frozen():
    base = Outer()
    new = apply_overrides(base, ["--seed=3"])
    assert base.seed == 0 and new.seed == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.seed = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--flag"], {"flag": True}),
        (["--flag", "--seed=2"], {"flag": True, "seed": 2}),
        (["--flag=false"], {"flag": False}),
        (["--flag", "no"], {"flag": False}),
        (["--limit=none"], {"limit": None}),
        (["--limit=5"], {"limit": 5}),
        (["--seed=1e3"], {"seed": 1000}),
    ],
)
def test_scalar_types(argv, expected):
    assert apply_overrides(Outer(limit=7), argv) == dataclasses.replace(Outer(limit=7), **expected)


@pytest.mark.parametrize("text", ["a,b", "[a, b]", "['a', 'b']", '["a","b"]', "(a, b)"])
def test_tuple_forms(text):
    assert apply_overrides(Outer(), [f"--inner.targets={text}"]).inner.targets == ("a", "b")


def test_empty_tuple_and_literal():
    cfg = apply_overrides(Outer(), ["--inner.targets=[]", "--inner.quant=none"])
    assert cfg.inner.targets == () and cfg.inner.quant == "none"


def test_wandb_sweep_agent_style():
    # wandb agents call `program --key=value` for each swept parameter.
    cfg = apply_overrides(Outer(), ["--inner.alpha=2e-05", "--inner.r=4", "--flag=True"])
    assert cfg.inner.alpha == 2e-05 and cfg.inner.r == 4 and cfg.flag is True


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--inner.rank=4"], "unknown config key --inner.rank"),
        (["--nope"], "unknown config key --nope"),
        (["--inner=4"], "unknown config key --inner"),
        (["--seed=abc"], "bad value for --seed .expects int."),
        (["--seed=2.5"], "bad value for --seed"),
        (["--flag=maybe"], "bad value for --flag"),
        (["--inner.quant=16bit"], "bad value for --inner.quant"),
        (["--limit=x"], "bad value for --limit"),
        (["--seed"], "needs a value"),
        (["seed=3"], "expected --key=value"),
    ],
)
def test_bad_overrides_fail_in_one_line_pointing_at_valid_keys(argv, match):
    with pytest.raises(OverrideError, match=match) as info:
        apply_overrides(Outer(), argv)
    message = str(info.value)
    assert "\n" not in message, "one line, not a list of every key"
    if "unknown" in match:
        assert "did you mean --" in message or "keys of" in message or "valid keys start with" in message


def test_help_lists_every_key_and_exits_0(capsys):
    with pytest.raises(SystemExit) as stop:
        apply_overrides(Outer(), ["--seed=3", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for key in ("--inner.r  (int)", "--inner.targets", "--seed", "--flag  (bool)", "--limit"):
        assert key in out
