"""recipes/empeval_train.py: EMP-EVAL training as config-as-code wrapping empeval's TrainConfig whole,
and `therapy-align empeval train` as a door onto it."""

from __future__ import annotations

import dataclasses

import pytest

from empeval.cli import recipe_path, translate_aliases
from empeval.config import TrainConfig, fast_config
from tests.conftest import REPO_ROOT, load_recipe_module
from therapy_align.errors import UserError
from therapy_align.overrides import apply_overrides, leaf_types

RECIPE = REPO_ROOT / "recipes" / "empeval_train.py"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module(RECIPE, "empeval_recipe_cfg")


def test_every_train_config_field_is_an_override(recipe):
    keys = leaf_types(recipe.DEFAULT)
    assert {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)} <= set(keys)
    cfg = apply_overrides(recipe.SMOKE, ["--train.seed=1", "--out=artifacts/judge", "--train.rationale_weight=0"])
    assert (cfg.train.seed, cfg.out, cfg.train.max_epochs, cfg.train.limit_batches) == (1, "artifacts/judge", 1, 8)
    assert recipe.DEFAULT.train == TrainConfig()  # the default recipe is the evaluator's own defaults
    assert recipe.FAST.train == fast_config()
    with pytest.raises(UserError):
        apply_overrides(recipe.DEFAULT, ["--threads=-1"])


def test_bad_override_exits_2_with_one_line(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--preset", "fast", "--train.max_epochz=1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "did you mean --train.max_epochs" in err and "Traceback" not in err


def test_help_lists_the_keys(recipe, capsys):
    recipe.main(["--help"])
    out = capsys.readouterr().out
    assert "--train.class_weight_power" in out and "accelerate" not in out.splitlines()[0]


def test_the_command_is_a_door_onto_the_recipe():
    assert recipe_path() == RECIPE
    assert translate_aliases(["--seed", "1", "--limit=2", "--no-progress", "--out", "x", "--train.dropout=0.2"]) == [
        "--train.seed", "1", "--train.limit_batches=2", "--progress=false", "--out", "x", "--train.dropout=0.2"]


def test_fields_added_later_leave_older_recorded_configs_unchanged():
    """Resume and seed reuse compare recorded configs: a field at its "as before" value is left out,
    so artifacts and checkpoints written before the field existed still match."""
    recorded = TrainConfig().to_json()
    assert not {"split_seed", "single_task", "ordinal_mechanisms"} & set(recorded)
    # Recorded as JSON reads it back (a list), so a resumed run compares equal.
    assert TrainConfig(ordinal_mechanisms=("interpretations",)).to_json()["ordinal_mechanisms"] == ["interpretations"]
    cfg = apply_overrides(TrainConfig(), ["--ordinal_mechanisms=interpretations,explorations"])
    assert cfg.ordinal_mechanisms == ("interpretations", "explorations")


def test_an_unknown_ordinal_mechanism_is_refused_before_anything_loads():
    with pytest.raises(UserError) as refused:
        TrainConfig(ordinal_mechanisms=("interpretation",))
    assert "ordinal_mechanisms" in str(refused.value) and "interpretations" in str(refused.value)
