"""recipes/empeval_train.py: EMP-EVAL training as config-as-code, its presets values of empeval's
TrainConfig; and `therapy-align empeval train`, the same run of the library's defaults."""

from __future__ import annotations

import dataclasses

import pytest

from empeval.cli import app, translate_aliases
from empeval.config import TrainConfig, TrainRun
from tests.conftest import REPO_ROOT, load_recipe_module
from therapy_align.errors import UserError
from therapy_align.overrides import apply_overrides, leaf_types

RECIPE = REPO_ROOT / "recipes" / "empeval_train.py"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module(RECIPE, "empeval_recipe_cfg")


def test_every_train_config_field_is_an_override(recipe):
    keys = leaf_types(TrainRun(train=recipe.DEFAULT))
    assert {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)} <= set(keys)
    cfg = apply_overrides(TrainRun(train=recipe.SMOKE), ["--train.seed=1", "--out=artifacts/judge",
                                                         "--train.rationale_weight=0"])
    assert (cfg.train.seed, cfg.out, cfg.train.max_epochs, cfg.train.limit_batches) == (1, "artifacts/judge", 1, 8)
    assert recipe.DEFAULT == TrainConfig()  # the default recipe is the evaluator's own defaults
    assert recipe.FAST == TrainConfig(max_epochs=1, freeze_layers=3)
    assert set(recipe.PRESETS) == {"default", "fast", "smoke"}
    with pytest.raises(UserError):
        apply_overrides(TrainRun(), ["--threads=-1"])


def test_bad_override_exits_2_with_one_line(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--preset", "fast", "--train.max_epochz=1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "did you mean --train.max_epochs" in err and "Traceback" not in err


def test_help_lists_the_keys(recipe, capsys):
    recipe.main(["--help"])
    out = capsys.readouterr().out
    assert "--train.class_weight_power" in out and "accelerate" not in out.splitlines()[0]


def test_the_command_keeps_its_short_options_and_refuses_presets():
    from typer.testing import CliRunner

    assert translate_aliases(["--seed", "1", "--limit=2", "--no-progress", "--out", "x", "--train.dropout=0.2"]) == [
        "--train.seed", "1", "--train.limit_batches=2", "--progress=false", "--out", "x", "--train.dropout=0.2"]
    refused = CliRunner().invoke(app, ["train", "--preset", "fast"])
    assert refused.exit_code == 2 and "--preset" in refused.output and "--train.freeze_layers=3" in refused.output
    assert "Traceback" not in refused.output


def test_the_command_help_lists_the_keys_without_the_recipe(capsys):
    from empeval.cli import run_train

    assert run_train(["--help"]) is None
    out = capsys.readouterr().out
    assert "--train.class_weight_power" in out and "--out" in out and "--preset" not in out.split("Keys")[1]


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
