"""The RL recipes' configs: the paper preset's RL choices, and overrides that fail before anything loads."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module


@pytest.fixture(scope="module")
def grpo():
    return load_recipe_module(REPO_ROOT / "recipes" / "rl_empathy.py", "rl_empathy_recipe")


@pytest.fixture(scope="module")
def dpo():
    return load_recipe_module(REPO_ROOT / "recipes" / "dpo_empathy.py", "dpo_empathy_recipe")


def test_paper_presets(grpo, dpo):
    g = grpo.PAPER
    assert g.model.sft_run == "runs/sft-annomi80" and g.model.quantization == "4bit"
    assert g.grpo.beta > 0 and g.grpo.disable_dropout and g.grpo.loss_type == "dapo"
    assert g.grpo.num_generations == 8 and g.grpo.max_completion_length == 256 and g.judge.n_inputs == 200
    assert g.reward.weights.empeval > 0 and g.reward.empeval_weights == (0.2, 0.4, 0.4)
    d = dpo.PAPER
    assert d.model == g.model and d.reward == g.reward and d.sampling.generation.max_new_tokens == 256
    assert grpo.TINY.model.sft_run == dpo.TINY.model.sft_run == "runs/tiny-sft-annomi80"
    assert grpo.TINY.model.quantization == "none"


def test_unknown_or_bad_override_fails_before_loading(grpo, dpo, capsys):
    for recipe, bad in ((grpo, "--grpo.betta=0.1"), (dpo, "--pairs.min_margin=big")):
        with pytest.raises(SystemExit) as exit_info:
            recipe.main(["--preset", "tiny", bad])
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--grpo.betta" in err and "--pairs.min_margin" in err


def test_missing_sft_run_says_how_to_make_it(grpo, tmp_path, capsys):
    with pytest.raises(SystemExit):
        grpo.main(["--preset", "tiny", f"--model.sft_run={tmp_path / 'nothing'}", f"--runs_dir={tmp_path}"])
    assert "recipes/sft_paper.py --preset tiny" in capsys.readouterr().err
    assert not (tmp_path / "tiny-grpo-annomi80").exists()
