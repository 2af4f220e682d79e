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


def test_trainer_sections_pass_through_whole_with_the_run_args(grpo, dpo, tmp_path):
    """Every field of a preset's trainer section reaches TRL unchanged; only the run adds its own."""
    from therapy_align.overrides import apply_overrides

    cfg = apply_overrides(grpo.TINY, ["--grpo.neftune_noise_alpha=5", "--run.wandb=false"])
    args = cfg.trl_args(tmp_path / "run", reward_weights=[0.5, 2.0])
    for name, value in cfg.grpo.items():
        assert getattr(args, name) == value, name
    assert args.neftune_noise_alpha == 5 and args.reward_weights == [0.5, 2.0] and args.report_to == []
    assert args.output_dir == str(tmp_path / "run") and args.run_name == "tiny-grpo-annomi80" and not args.bf16
    d = dpo.TINY
    round_args = d.trl_args(tmp_path / "round-2", 2)
    assert round_args.run_name == "tiny-dpo-annomi80-round2" and round_args.max_steps == d.dpo.max_steps
    assert round_args.loss_type == ["sigmoid", "sft"] and round_args.loss_weights == [1.0, 0.2]
    assert round_args.report_to == ["wandb"]


def test_what_the_run_sets_is_refused_in_a_trainer_section(grpo, dpo):
    from therapy_align.overrides import ConfigError, apply_overrides

    for recipe, key in ((grpo, "--grpo.output_dir=elsewhere"), (dpo, "--dpo.bf16=true"), (grpo, "--grpo.reward_weights=[1]")):
        with pytest.raises(ConfigError) as err:
            apply_overrides(recipe.TINY, [key])
        assert err.value.field == key.split("=")[0]
    with pytest.raises(ConfigError, match="loss type"):
        apply_overrides(dpo.PAPER, ["--dpo.loss_type=sigmoid"])  # two weights for one loss
    with pytest.raises(ConfigError):
        apply_overrides(grpo.PAPER, ["--judge.every_steps=0"])


def test_a_named_reward_swaps_the_weights_and_keeps_the_presets_length_scale(grpo, dpo, tmp_path):
    from therapy_align.rl.config import parse_command_line
    from therapy_align.rl.reward import CONFIGS

    sft = tmp_path / "sft"  # parse_command_line checks the SFT run before anything loads
    (sft / "adapter").mkdir(parents=True)
    (sft / "adapter" / "adapter_config.json").write_text("{}")
    (sft / "config.json").write_text('{"base_model": "tiny-base"}')
    for recipe in (grpo, dpo):
        base = [f"--model.sft_run={sft}", "--preset", "tiny"]
        cfg, _ = parse_command_line(recipe.PRESETS, [*base, "--reward.config=empeval-only", "--reward.weights.length=1.5"])
        preset = recipe.TINY.reward
        assert cfg.reward.name == "empeval-only" and cfg.reward.weights.template == 0 and cfg.reward.weights.empeval == 1
        assert cfg.reward.weights.length == 1.5  # later --reward.* keys apply on top
        assert (cfg.reward.min_tokens, cfg.reward.max_tokens) == (preset.min_tokens, preset.max_tokens) != (
            CONFIGS["empeval-only"].min_tokens, CONFIGS["empeval-only"].max_tokens)
        guarded, _ = parse_command_line(recipe.PRESETS, base)
        assert guarded.reward == preset


@pytest.mark.parametrize("arg,fix", [("--reward.name=empeval-only", "--reward.config="), ("--reward.config=nope", "guarded")])
def test_a_reward_named_without_its_weights_or_unknown_fails_in_one_line(grpo, arg, fix, capsys):
    with pytest.raises(SystemExit) as exit_info:
        grpo.main(["--preset", "tiny", arg])
    assert exit_info.value.code == 2 and fix in capsys.readouterr().err
