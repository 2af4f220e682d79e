"""Every recipe that takes a model has a `small` preset on the real small model (Gemma 3 270M):
checked here as configs only, nothing loaded (the runs themselves: the slow test_real_model.py files)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module

GEMMA = "gemma-3-270m"
MODEL_RECIPES = ("sft_paper", "eval_paper", "rl_empathy", "dpo_empathy", "eval_multiturn")


@pytest.fixture(scope="module")
def recipes():
    return {name: load_recipe_module(REPO_ROOT / "recipes" / f"{name}.py", f"{name}_small_test") for name in MODEL_RECIPES}


def test_every_model_recipe_has_paper_small_and_tiny(recipes):
    from therapy_align.evaluation.sweep import PRESETS

    for name, recipe in recipes.items():
        assert {"paper", "small", "tiny"} <= set(recipe.PRESETS), name
    assert set(PRESETS) == {"paper", "small"}  # the prompt sweep's run config (recipes/prompts.py)


def test_rl_small_presets_continue_from_the_small_sft_run(recipes, tmp_path):
    grpo, dpo = recipes["rl_empathy"].SMALL, recipes["dpo_empathy"].SMALL
    assert grpo.preset == dpo.preset == "small" and grpo.model == dpo.model
    sft = recipes["sft_paper"]
    assert grpo.model.sft_run == f"runs/{sft.variant(sft.SMALL, 'annomi80').name}" == "runs/small-sft-annomi80"
    assert grpo.model.quantization == "none" and grpo.model.dtype == "auto" and not grpo.model.gradient_checkpointing
    assert grpo.grpo.max_completion_length == dpo.sampling.generation.max_new_tokens == grpo.reward.max_tokens == 48
    import torch

    args = grpo.trl_args(tmp_path / "grpo", reward_weights=[1.0])
    assert args.num_generations == 4 and args.max_steps == 12 and args.bf16 == torch.cuda.is_available()
    round_args = dpo.trl_args(tmp_path / "round-1", 1)
    assert round_args.run_name == "small-dpo-annomi80-round1" and round_args.max_length == 512
    assert recipes["rl_empathy"].TINY.model.dtype == "float32"  # the tiny presets are as they were


def test_missing_small_sft_run_says_how_to_make_it(recipes, tmp_path, capsys):
    with pytest.raises(SystemExit):
        recipes["rl_empathy"].main(["--preset", "small", f"--model.sft_run={tmp_path / 'none'}", f"--runs_dir={tmp_path}"])
    assert "python recipes/sft_paper.py --preset small" in capsys.readouterr().err


def test_multiturn_small_uses_gemma_on_both_sides(recipes):
    from therapy_align.evaluation.multiturn import MultiturnConfig

    small = recipes["eval_multiturn"].SMALL
    assert isinstance(small, MultiturnConfig) and dict(m.split("=", 1) for m in small.models)["base"] == GEMMA
    assert small.simulation.enabled and small.simulation.client_model == GEMMA
    assert small.context.max_tokens == 512 and small.generation.max_new_tokens == 48


def test_sweep_small_preset_sizes_the_yaml_grid():
    from therapy_align.errors import UserError
    from therapy_align.evaluation.sweep import SMALL, config_from_params, with_preset

    yaml_params = {"prompt": "new", "model": "base", "limit": 1000, "generation.max_new_tokens": 256}
    config = with_preset(config_from_params(yaml_params), "small")
    assert (config.prompt, config.model, config.limit) == ("new", GEMMA, SMALL.limit)
    assert config.generation == SMALL.generation
    assert config_from_params({"limit": 4}, config).limit == 4  # the command line still wins
    with pytest.raises(UserError):
        with_preset(config, "huge")
