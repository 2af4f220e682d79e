"""The recipe's config: paper numbers, presets, variants, overrides, cheap import."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_recipe_module
from therapy_align.training.models import PAPER_BASE_MODEL, is_run_dir, read_run_config, run_base_model
from therapy_align.overrides import OverrideError, apply_overrides
from therapy_align.training.sft_run import configure_wandb, newest_checkpoint, write_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "sft_paper.py"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe_module(RECIPE, "sft_paper_recipe_cfg")


def test_paper_numbers(recipe):
    paper = recipe.PAPER
    assert (paper.train.max_steps, paper.train.gradient_accumulation_steps, paper.train.learning_rate) == (100, 4, 2e-5)
    assert (paper.lora.alpha, paper.lora.dropout) == (32, 0.05)
    assert paper.model.name_or_path == PAPER_BASE_MODEL == "meta-llama/Llama-2-7b-chat-hf"
    assert paper.model.quantization == "4bit" and paper.model.dtype == "bfloat16"
    assert paper.train.max_steps == recipe.variant(paper, "full_plus").train.max_steps == 100


def test_every_paper_number_has_a_provenance_comment():
    text = RECIPE.read_text()
    for line in ("max_steps=100,", "gradient_accumulation_steps=4,", "learning_rate=2e-5,",
                 "alpha=32,", "dropout=0.05,"):
        matching = [row for row in text.splitlines() if line in row]
        assert matching and "§4" in matching[0], line


def test_presets_are_values_of_the_library_config(recipe):
    from therapy_align.trainer_args import SftArgs
    from therapy_align.training.config import SftConfig

    assert isinstance(recipe.PAPER, SftConfig) and isinstance(recipe.TINY, SftConfig)
    assert isinstance(recipe.PAPER.train, SftArgs)
    # what TRL would otherwise choose differently is set in the preset, by TRL's own names
    for name in ("optim", "logging_steps", "save_steps", "per_device_train_batch_size", "max_length", "eos_token",
                 "assistant_only_loss", "completion_only_loss", "pad_to_multiple_of", "ddp_find_unused_parameters"):
        assert name in recipe.PAPER.train, name
    assert recipe.PAPER.train.optim == "paged_adamw_8bit" and recipe.TINY.train.optim == "adamw_torch"
    assert recipe.TINY.train.train_sampling_strategy == "group_by_length"


def test_trainer_args_pass_the_section_through(recipe, tmp_path):
    """trl.SFTConfig is the ``train`` section whole, plus what follows from the run and the model."""
    from therapy_align.training.sft_run import trainer_args

    cfg = apply_overrides(recipe.TINY, ["--train.neftune_noise_alpha=5", "--run.wandb=false",
                                        "--train.per_device_train_batch_size=2", "--train.seed=7"])
    args = trainer_args(cfg, tmp_path / cfg.name)
    assert args.neftune_noise_alpha == 5.0 and args.max_steps == cfg.train.max_steps and args.report_to == []
    assert args.output_dir == str(tmp_path / cfg.name) and args.run_name == cfg.name and not args.bf16
    # unless set apart, held-out batches follow training batches and the data order follows the seed
    assert (args.per_device_eval_batch_size, args.data_seed) == (2, 7)
    args = trainer_args(apply_overrides(cfg, ["--train.per_device_eval_batch_size=8", "--train.data_seed=3"]), tmp_path)
    assert (args.per_device_eval_batch_size, args.data_seed) == (8, 3)
    # TRL refuses max_length with padding_free; the data is cut to it instead
    args = trainer_args(apply_overrides(cfg, ["--train.padding_free=true"]), tmp_path)
    assert args.padding_free and args.max_length is None


def test_variants_and_presets(recipe):
    assert recipe.variant(recipe.PAPER, "annomi80").name == "sft-annomi80"
    full = recipe.variant(recipe.PAPER, "full_plus")
    assert full.name == "sft-full_plus" and full.data.split == "full_plus"
    tiny = recipe.variant(recipe.TINY, "full_plus")
    assert tiny.name == "tiny-sft-full_plus" and tiny.model.quantization == "none"
    assert tiny.train.max_length <= 1024 and tiny.train.max_steps <= 50
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.PAPER.train.max_steps = 5  # type: ignore[misc]


def test_overrides_on_the_recipe_config(recipe):
    cfg = apply_overrides(recipe.PAPER, ["--lora.r=16", "--lora.target_modules=q_proj,k_proj", "--model.quantization", "8bit"])
    assert cfg.lora.r == 16 and cfg.lora.target_modules == ("q_proj", "k_proj") and cfg.model.quantization == "8bit"
    with pytest.raises(OverrideError, match="--train.learning_rate"):
        apply_overrides(recipe.PAPER, ["--train.lr=1"])
    with pytest.raises(OverrideError, match="--run.wandb"):  # the project's additions are not TRL's
        apply_overrides(recipe.PAPER, ["--train.wandb=false"])
    with pytest.raises(OverrideError, match="bad value for --model.quantization"):
        apply_overrides(recipe.PAPER, ["--model.quantization=2bit"])


def test_import_builds_nothing_heavy():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('r', {str(RECIPE)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['r'] = m; spec.loader.exec_module(m)\n"
        "print(sorted(k for k in ('trl', 'peft', 'transformers', 'torch') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_config_is_what_models_reads(recipe, tmp_path):
    run = tmp_path / "runs" / "x"
    body = write_run_config(run, recipe.TINY, base_model_ref="artifacts/tiny-llama-2", quantization="none")
    assert body["quantization"] is None and body["train"]["max_steps"] == recipe.TINY.train.max_steps
    config = read_run_config(run)
    assert run_base_model(config).endswith("tiny-llama-2") and config["schema"] == "therapy_align.training.sft_run/1"
    assert json.loads((run / "config.json").read_text())["lora"]["target_modules"] == list(recipe.TINY.lora.target_modules)
    assert not is_run_dir(run)  # no adapter yet
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    assert is_run_dir(run)


def test_newest_checkpoint_skips_partial(tmp_path):
    assert newest_checkpoint(tmp_path / "missing") is None
    for step, complete in ((2, True), (4, True), (6, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert newest_checkpoint(tmp_path).name == "checkpoint-4"


def test_wandb_defaults_offline_under_the_run(tmp_path, monkeypatch):
    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_NAME", "WANDB_SILENT"):
        monkeypatch.setenv(var, "x")  # records the original state, restored after the test
        monkeypatch.delenv(var)
    configure_wandb(tmp_path / "runs" / "r", project="p", name="r")
    import os

    assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_DIR"] == str((tmp_path / "runs" / "r").resolve())
    monkeypatch.setenv("WANDB_MODE", "online")
    configure_wandb(tmp_path / "runs" / "r", project="p", name="r")
    assert os.environ["WANDB_MODE"] == "online"  # the user's choice wins


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    configs = {p.stem: load_config_from_file(str(p)) for p in (REPO_ROOT / "recipes" / "accelerate").glob("*.yaml")}
    assert set(configs) >= {"single_gpu", "ddp", "ddp_cpu", "fsdp_qlora", "deepspeed_zero3"}
    fsdp = configs["fsdp_qlora"].fsdp_config
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fsdp["fsdp_cpu_ram_efficient_loading"] is True and "fsdp_use_orig_params" in fsdp
    assert configs["deepspeed_zero3"].deepspeed_config["zero_stage"] == 3


def test_every_data_build_knob_is_a_data_override(recipe):
    import dataclasses as dc

    from therapy_align.data.dataset_build import BuildConfig
    from therapy_align.overrides import leaf_types

    keys = leaf_types(recipe.PAPER)
    build_keys = {f"data.{key}" for key in leaf_types(BuildConfig())}
    assert build_keys <= set(keys)  # a new BuildConfig field appears here by itself
    cfg = apply_overrides(recipe.PAPER, ["--data.opener_policy=context", "--data.seed=3"])
    assert (cfg.data.opener_policy, cfg.data.seed) == ("context", 3)
    cleaning = dc.fields(BuildConfig().cleaning)[0].name
    assert f"data.cleaning.{cleaning}" in keys
    from therapy_align.errors import UserError

    with pytest.raises(UserError, match="data.opener_policy"):
        apply_overrides(recipe.PAPER, ["--data.opener_policy=sometimes"])
    with pytest.raises(UserError, match="model.tokenizer"):
        apply_overrides(recipe.PAPER, ["--data.tokenizer=/x"])


def test_small_preset_trains_the_real_model_with_its_own_tokenizer_and_turn_end(recipe, tmp_path):
    """The small preset names the registered Gemma model: its own tokenizer (not the shared Llama-2
    one), replies that end at Gemma's <end_of_turn>, fp32 without CUDA, and a run name of its own."""
    from therapy_align.training.models import classify_reference, default_tokenizer, stored_base

    small = recipe.SMALL
    assert small.model.name_or_path == "gemma-3-270m" and classify_reference("gemma-3-270m") == ("named", "gemma-3-270m")
    assert small.model.quantization == "none" and small.model.dtype == "auto"
    assert small.model.resolved_dtype() in ("float32", "bfloat16")
    assert small.train.eos_token == "<end_of_turn>"
    assert recipe.variant(small, "full_plus").name == "small-sft-full_plus"
    # a prepared registry name is stored by name (its cache differs between machines), a hub id resolved
    assert stored_base("gemma-3-270m") == "gemma-3-270m" and stored_base("base") == PAPER_BASE_MODEL
    assert default_tokenizer("base") is None and default_tokenizer("tiny-base") is None
    assert default_tokenizer("google/gemma-3-270m") == "google/gemma-3-270m"
    assert default_tokenizer(str(tmp_path)) is None  # a directory without tokenizer files


def test_small_table1_preset_is_base_against_sft_with_every_column():
    table = load_recipe_module(REPO_ROOT / "recipes" / "eval_paper.py", "eval_paper_recipe_small")
    small = table.SMALL
    assert small.refs.base == "gemma-3-270m" and small.models == ("base", "annomi80")
    assert small.prompts == ("standard", "new")
    assert set(small.scorers) >= {"empeval", "judge", "miti", "safety", "guards"}
    assert small.sft.model.name_or_path == "gemma-3-270m" and small.sft.data.split == "annomi80"
