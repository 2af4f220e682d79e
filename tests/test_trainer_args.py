"""A recipe's TRL trainer section: TRL's own names passed through, typed overrides, checks at the door."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.overrides import ConfigError, OverrideError, apply_overrides, describe_keys
from therapy_align.trainer_args import DpoArgs, GrpoArgs, SftArgs, TrainerArgsError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stage:
    name: str = "run"
    train: SftArgs = dataclasses.field(default_factory=lambda: SftArgs(max_steps=100, learning_rate=2e-5))


def test_a_field_the_project_never_named_is_set_and_typed_by_trl():
    cfg = apply_overrides(Stage(), ["--train.neftune_noise_alpha=5", "--train.lr_scheduler_type=cosine",
                                    "--train.gradient_checkpointing_kwargs={\"use_reentrant\": false}"])
    assert cfg.train.neftune_noise_alpha == 5.0 and isinstance(cfg.train.neftune_noise_alpha, float)
    assert cfg.train.lr_scheduler_type == "cosine"
    assert cfg.train.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert cfg.train.max_steps == 100  # untouched fields stay
    args = cfg.train.build(output_dir="out", report_to=[], use_cpu=True)
    assert args.neftune_noise_alpha == 5.0 and args.max_steps == 100 and args.learning_rate == 2e-5


def test_a_name_trl_does_not_have_is_refused_with_a_suggestion():
    with pytest.raises(OverrideError, match=r"--train.learnig_rate.*learning_rate"):
        apply_overrides(Stage(), ["--train.learnig_rate=1e-4"])
    with pytest.raises(TrainerArgsError, match="no field 'max_stepz'"):
        SftArgs(max_stepz=3).build(output_dir="out")


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e309"])
def test_non_finite_numbers_are_refused_at_the_door(text):
    with pytest.raises(ConfigError, match="finite") as err:
        apply_overrides(Stage(), [f"--train.learning_rate={text}"])
    assert err.value.field == "--train.learning_rate"


def test_declared_ranges_hold_for_every_trainer_type():
    with pytest.raises(ConfigError, match="max_steps"):
        SftArgs(max_steps=0)
    with pytest.raises(ConfigError, match="num_generations"):
        GrpoArgs(num_generations=1)
    with pytest.raises(ConfigError, match="beta"):
        DpoArgs(beta=0.0)


def test_the_section_is_immutable_and_replace_copies():
    a = SftArgs(max_steps=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.max_steps = 4
    b = a.replace(max_steps=4)
    assert (a.max_steps, b.max_steps) == (3, 4) and a != b and a == SftArgs(max_steps=3)
    assert hash(a) == hash(SftArgs(max_steps=3))


def test_a_run_argument_may_not_shadow_the_recipe():
    with pytest.raises(ValueError, match="max_steps"):
        SftArgs(max_steps=3).build(output_dir="out", max_steps=4)


def test_help_lists_what_the_recipe_sets_and_points_at_the_rest():
    text = describe_keys(Stage())
    assert "--train.max_steps" in text and "--train.learning_rate" in text
    assert "--train.neftune_noise_alpha" not in text and "any other field of trl.SFTConfig" in text


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 10**6), lr=st.floats(1e-8, 1.0, allow_nan=False), warmup=st.integers(0, 1000))
def test_overrides_round_trip_through_text(steps, lr, warmup):
    cfg = apply_overrides(Stage(), [f"--train.max_steps={steps}", f"--train.learning_rate={lr!r}",
                                    f"--train.warmup_steps={warmup}"])
    assert (cfg.train.max_steps, cfg.train.warmup_steps) == (steps, warmup)
    assert cfg.train.learning_rate == lr  # repr() round-trips a float exactly
    assert dict(cfg.train) == {**dict(Stage().train), "max_steps": steps, "learning_rate": lr, "warmup_steps": warmup}
