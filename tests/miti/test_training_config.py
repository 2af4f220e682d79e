"""MITI training's one typed config (`miti.config.TrainConfig`): ranges checked where it is built, the
recipe's presets are values of it, and the installed `therapy-align miti train` trains from it
outside the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from miti.config import DataConfig, FitConfig, ModelConfig, TrainConfig
from tests.conftest import REPO_ROOT, load_recipe_module
from therapy_align.overrides import ConfigError, OverrideError, apply_overrides

THERAPY_ALIGN = Path(sys.executable).with_name("therapy-align")


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module(REPO_ROOT / "recipes" / "miti_train.py", "miti_recipe_config")


@pytest.mark.parametrize("build, field", [
    (lambda: DataConfig(max_train_turns=0), "max_train_turns"),
    (lambda: DataConfig(max_eval_turns=0), "max_eval_turns"),
    (lambda: DataConfig(dev_fraction=1.0), "dev_fraction"),
    (lambda: ModelConfig(max_length=4), "max_length"),
    (lambda: ModelConfig(hidden=0), "hidden"),
    (lambda: ModelConfig(dropout=1.0), "dropout"),
    (lambda: ModelConfig(layers=(0, 2)), "layers"),
    (lambda: ModelConfig(layers=()), "layers"),
    (lambda: FitConfig(max_epochs=0), "max_epochs"),
    (lambda: FitConfig(batch_size=0), "batch_size"),
    (lambda: FitConfig(learning_rate=0.0), "learning_rate"),
    (lambda: FitConfig(limit_batches=-1), "limit_batches"),
    (lambda: FitConfig(threads=-1), "threads"),
])
def test_out_of_range_values_fail_where_the_config_is_built(build, field):
    with pytest.raises(ConfigError) as error:
        build()
    assert error.value.field == field


def test_overrides_name_the_dotted_key_and_refuse_unknown_ones():
    with pytest.raises(ConfigError) as error:
        apply_overrides(TrainConfig(), ["--train.max_epochs=0"])
    assert error.value.field == "--train.max_epochs"
    with pytest.raises(OverrideError, match="unknown config key --train.epochs"):
        apply_overrides(TrainConfig(), ["--train.epochs=3"])
    cfg = apply_overrides(TrainConfig(), ["--train.max_epochs=3", "--model.layers=1,2", "--data.max_train_turns=10"])
    assert (cfg.train.max_epochs, cfg.model.layers, cfg.data.max_train_turns) == (3, (1, 2), 10)


def test_recipe_presets_are_values_of_the_library_config(recipe):
    from therapy_align.evaluation.scorers.miti import quick_config

    assert recipe.DEFAULT == TrainConfig()  # the library's defaults are the shipped classifier's
    assert isinstance(recipe.FAST, TrainConfig)
    assert recipe.FAST == quick_config()  # a smoke report's stand-in classifier is the fast preset
    assert (recipe.FAST.data.max_train_turns, recipe.FAST.train.max_epochs) == (192, 5)


def test_recipe_run_options_are_not_config_keys(recipe, capsys):
    with pytest.raises(SystemExit) as stop:
        recipe.main(["--preset", "fast", "--out=/nonexistent/x", "--restart", "--progress=false", "--train.epochs=1"])
    assert stop.value.code == 2
    assert "--train.epochs" in capsys.readouterr().err  # the run options were taken out before the config keys


@pytest.mark.integration
def test_installed_command_trains_outside_the_source_tree(tmp_path, data_dir):
    """`therapy-align miti train` as installed, from a working directory with no recipes/ beside it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("THERAPY_ALIGN_DATA", None)
    argv = [str(THERAPY_ALIGN), "miti", "train", "--out", "artifact", "--no-progress", f"--data.data_dir={data_dir}",
            "--data.max_train_turns=32", "--data.max_eval_turns=16", "--model.max_length=16", "--model.layers=1,2",
            "--model.hidden=8", "--train.max_epochs=1"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    artifact = tmp_path / "artifact"
    assert f"wrote {Path('artifact')}" in done.stdout
    settings = json.loads((artifact / "miti_config.json").read_text())
    assert settings["recipe"]["train"]["max_epochs"] == 1 and settings["layers"] == [1, 2]
    assert json.loads((artifact / "metrics.json").read_text())["n_train_turns"] == 32
    assert not (tmp_path / "artifact.checkpoints").exists()
    # A bad key fails in one line, before anything trains.
    bad = subprocess.run([*argv[:4], "artifact2", "--train.max_epochs=0"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--train.max_epochs" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "artifact2").exists()


def test_the_command_points_presets_to_the_recipe(capsys):
    from therapy_align.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["miti", "train", "--preset", "fast", "--out", "/nonexistent/x"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--preset" in error[0] and "recipes/miti_train.py" in error[0]


def test_fast_preset_overrides_keep_the_slice(recipe):
    cfg = apply_overrides(recipe.FAST, ["--train.max_epochs=2"])
    assert cfg == replace(recipe.FAST, train=replace(recipe.FAST.train, max_epochs=2))
