"""Numbers at the door: NaN, infinities, negative seeds and lengths past the encoder's positions are
refused by the command before anything loads (exit 2, one line naming the field and the value),
and an artifact with non-finite weights or settings is neither published nor loaded."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from therapy_align.overrides import ConfigError, apply_overrides, check_range

runner = CliRunner()
NON_FINITE = ["inf", "-inf", "nan", "1e309"]


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- check_range and the override parser ----------------------------------------------------------


class Holder:
    def __init__(self, value):
        self.value = value


def non_finite_float(sign: int, mantissa: int) -> float:
    """The IEEE 754 double with every exponent bit set: +-inf (mantissa 0) or a NaN (any payload)."""
    return struct.unpack("<d", struct.pack("<Q", sign << 63 | 0x7FF << 52 | mantissa))[0]


every_non_finite = st.builds(non_finite_float, st.integers(0, 1), st.integers(0, 2**52 - 1))
bounds = st.fixed_dictionaries({}, optional={k: st.floats(-1e6, 1e6) for k in ("gt", "ge", "lt", "le")})


@pytest.mark.property
@given(value=every_non_finite | st.sampled_from([math.inf, -math.inf]), limits=bounds,
       allow_none=st.booleans())
def test_check_range_refuses_every_non_finite_float(value, limits, allow_none):
    with pytest.raises(ConfigError, match="finite") as err:
        check_range(Holder(value), "value", allow_none=allow_none, **limits)
    assert err.value.field == "value" and repr(value) in str(err.value)


@pytest.mark.property
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_check_range_without_bounds_accepts_every_finite_float(value):
    check_range(Holder(value), "value")


def roots():
    from empeval.config import TrainRun
    from miti.config import TrainConfig as MitiConfig
    from therapy_align.evaluation.multiturn import MultiturnConfig
    from therapy_align.evaluation.sweep import PromptRunConfig
    from therapy_align.evaluation.table1 import Table1Config
    from therapy_align.rl.config import DpoRoundsConfig, GrpoConfig
    from therapy_align.safety.cli import _TrainArgs
    from therapy_align.training.config import SftConfig

    return {"empeval": TrainRun(), "miti": MitiConfig(), "safety": _TrainArgs(), "sft": SftConfig(),
            "grpo": GrpoConfig(name="g"), "dpo": DpoRoundsConfig(name="d"), "table1": Table1Config(),
            "multiturn": MultiturnConfig(), "sweep": PromptRunConfig()}


FLOAT_KEYS = [
    ("empeval", "train.learning_rate"), ("empeval", "train.max_gated_level_2_offset"), ("miti", "train.learning_rate"),
    ("miti", "train.class_weight_power"), ("safety", "train.target_recall"), ("sft", "train.learning_rate"),
    ("sft", "lora.dropout"), ("grpo", "grpo.beta"), ("grpo", "grpo.temperature"), ("dpo", "dpo.learning_rate"),
    ("dpo", "pairs.min_margin"), ("dpo", "sampling.generation.temperature"), ("table1", "generation.top_p"),
    ("multiturn", "generation.temperature"), ("sweep", "generation.top_p"),
]


@pytest.mark.parametrize("text", NON_FINITE)
@pytest.mark.parametrize(("root", "key"), FLOAT_KEYS)
def test_every_float_override_refuses_non_finite_values(root, key, text):
    with pytest.raises(ConfigError) as err:
        apply_overrides(roots()[root], [f"--{key}={text}"])
    assert err.value.field == f"--{key}"
    assert "finite" in str(err.value) and repr(text) in str(err.value)


SEED_KEYS = [("empeval", "train.seed"), ("empeval", "train.split_seed"), ("miti", "train.seed"),
             ("miti", "data.split_seed"), ("safety", "train.seed"), ("sft", "train.seed"), ("grpo", "grpo.seed"),
             ("dpo", "dpo.data_seed"), ("multiturn", "sessions.seed"), ("table1", "generation.seed")]


@pytest.mark.parametrize(("root", "key"), SEED_KEYS)
def test_negative_seeds_are_refused(root, key):
    from therapy_align.errors import UserError

    with pytest.raises(UserError, match=r"must be >= 0( or None)?, got -1") as err:
        apply_overrides(roots()[root], [f"--{key}=-1"])
    assert err.value.field.lstrip("-").endswith(key.rpartition(".")[2])


def test_configs_built_in_code_refuse_non_finite_values_too():
    from empeval.config import TrainConfig
    from therapy_align.evaluation.generation import GenerationSpec
    from therapy_align.rl.dpo_rounds import PairRule
    from therapy_align.trainer_args import DpoArgs, GrpoArgs, TrainerArgsError
    from therapy_align.errors import UserError

    with pytest.raises(ConfigError, match="learning_rate: must be a finite number, got inf"):
        TrainConfig(learning_rate=float("inf"))
    with pytest.raises(ConfigError, match="max_gated_level_2_offset: must be a finite number, got nan"):
        TrainConfig(max_gated_level_2_offset=float("nan"))
    with pytest.raises(UserError, match="generation.temperature: must be a finite number, got nan"):
        GenerationSpec(temperature=float("nan"))  # greedy too: a later do_sample would pass it on
    with pytest.raises(ConfigError, match="min_margin"):
        PairRule(min_margin=float("nan"))
    with pytest.raises(TrainerArgsError, match="loss_weights: must be a finite number"):
        DpoArgs(loss_weights=[1.0, float("nan")])
    with pytest.raises(TrainerArgsError, match="seed: must be >= 0"):
        GrpoArgs(seed=-5)


# -- the commands ---------------------------------------------------------------------------------


def test_empeval_train_refuses_an_infinite_learning_rate_and_keeps_the_artifact(tmp_path):
    from empeval.cli import app

    out = tmp_path / "model"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}')
    for text in ("inf", "1e309"):
        result = runner.invoke(app, ["train", "--out", str(out), f"--train.learning_rate={text}", "--no-progress"])
        assert result.exit_code == 2, result.output
        assert f"--train.learning_rate: must be a finite number, got '{text}'" in one_line(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no checkpoints either
    assert (out / "metrics.json").read_text() == '{"earlier": true}'


def test_empeval_train_refuses_a_negative_seed_and_a_length_past_the_encoder(tmp_path):
    from empeval.cli import app

    out = tmp_path / "model"
    seed = runner.invoke(app, ["train", "--out", str(out), "--train.seed=-1", "--no-progress"])
    assert seed.exit_code == 2 and "--train.seed: must be >= 0, got -1" in one_line(seed.output)
    length = runner.invoke(app, ["train", "--out", str(out), "--train.max_length=5000", "--no-progress"])
    assert length.exit_code == 2, length.output
    assert "train.max_length: must be <= 512, the encoder's max_position_embeddings, got 5000" in one_line(length.output)
    assert not tmp_path.joinpath("model.checkpoints").exists() and not out.exists()


def test_miti_train_refuses_nan_and_a_length_past_the_encoder(tmp_path):
    from miti.cli import app

    out = tmp_path / "miti"
    nan = runner.invoke(app, ["train", "--out", str(out), "--no-progress", "--train.learning_rate=nan"])
    assert nan.exit_code == 2 and "--train.learning_rate: must be a finite number, got 'nan'" in one_line(nan.output)
    length = runner.invoke(app, ["train", "--out", str(out), "--no-progress", "--model.max_length=4096"])
    assert length.exit_code == 2, length.output
    assert "model.max_length: must be <= 512" in one_line(length.output) and "got 4096" in one_line(length.output)
    assert list(tmp_path.iterdir()) == []


def test_safety_train_refuses_non_finite_values(tmp_path):
    from therapy_align.safety.cli import app

    out = tmp_path / "safety"
    result = runner.invoke(app, ["train", "--out", str(out), "--train.positive_weight=inf"])
    assert result.exit_code == 2
    assert "--train.positive_weight: must be a finite number, got 'inf'" in one_line(result.output)
    assert not out.exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--temperature", "nan", "generation.temperature: must be a finite number, got nan"),
    ("--top-p", "inf", "generation.top_p: must be a finite number, got inf"),
    ("--seed", "-1", "generation.seed: must be >= 0, got -1"),
])
def test_generate_refuses_bad_sampling_numbers_before_loading(tmp_path, capsys, option, value, message):
    from therapy_align.cli import main

    out = tmp_path / "replies.jsonl"
    with pytest.raises(SystemExit) as exit:
        main(["generate", "--model", "tiny-base", "--out", str(out), "--do-sample", option, value])
    assert exit.value.code == 2
    assert message in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# -- artifacts ------------------------------------------------------------------------------------


def _poison_config(artifact, key_path, value):
    config = json.loads((artifact / "empeval_config.json").read_text())
    node = config
    for key in key_path[:-1]:
        node = node[key]
    node[key_path[-1]] = value
    (artifact / "empeval_config.json").write_text(json.dumps(config))  # Python's json writes NaN as NaN


def test_empeval_score_refuses_nan_decision_offsets(tmp_path):
    from empeval.cli import app
    from tests.fixtures.tiny_evaluator import make_tiny_evaluator

    artifact = make_tiny_evaluator(tmp_path / "evaluator")
    _poison_config(artifact, ["decision_offsets", "interpretations", 2], float("nan"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "a", "seeker": "I feel low.", "response": "Tell me more."}) + "\n")
    out = tmp_path / "scores.jsonl"
    result = runner.invoke(app, ["score", "--model", str(artifact), "--in", str(pairs), "--out", str(out),
                                 "--no-progress"])
    assert result.exit_code == 2, result.output
    text = one_line(result.output)
    assert "empeval_config.json: decision_offsets.interpretations[2]: non-finite number (NaN or inf)" in text
    assert not out.exists() and not tmp_path.joinpath("scores.jsonl.part").exists()


def test_empeval_artifact_with_nan_weights_is_refused_on_load(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from empeval.artifact import NonFiniteArtifact, file_sha256, read_artifact
    from tests.fixtures.tiny_evaluator import make_tiny_evaluator

    artifact = make_tiny_evaluator(tmp_path / "evaluator")
    weights = load_file(artifact / "empeval_model.safetensors")
    name = next(k for k in sorted(weights) if k.startswith("heads."))
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, artifact / "empeval_model.safetensors")
    _poison_config(artifact, ["weights_sha256"], file_sha256(artifact / "empeval_model.safetensors"))
    with pytest.raises(NonFiniteArtifact) as err:
        read_artifact(artifact)
    assert err.value.file == artifact / "empeval_model.safetensors" and err.value.field == name


def test_empeval_artifact_with_nan_weights_is_never_published(tmp_path):
    import torch

    from empeval.artifact import NonFiniteArtifact, write_artifact_dir
    from empeval.config import TrainConfig, default_backbone
    from empeval.model import EmpathyClassifier
    from tests.fixtures.tiny_evaluator import make_tiny_evaluator
    from transformers import AutoTokenizer, BertConfig

    out = make_tiny_evaluator(tmp_path / "evaluator")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    model = EmpathyClassifier.from_encoder_config(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1,
                                                             num_attention_heads=2, intermediate_size=16))
    with torch.no_grad():
        next(iter(model.heads.values())).weight.fill_(float("nan"))
    with pytest.raises(NonFiniteArtifact, match="non-finite weights") as err:
        write_artifact_dir(out, model=model, tokenizer=AutoTokenizer.from_pretrained(default_backbone()),
                           config=TrainConfig(max_epochs=1), class_weights=[[1.0] * 3] * 3,
                           split={"train": [], "dev": [], "test": []}, metrics={})
    assert err.value.file == out / "empeval_model.safetensors"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier artifact, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluator"]  # no temporary directory left


def test_miti_artifact_with_non_finite_head_or_settings_is_refused(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from miti.artifact import NonFiniteArtifact, read_artifact, read_settings, write_artifact
    from tests.fixtures.tiny_miti import make_tiny_miti

    artifact = make_tiny_miti(tmp_path / "miti")
    head = load_file(artifact / "miti_head.safetensors")
    name = sorted(head)[0]
    head[name] = torch.full_like(head[name], float("inf"))
    save_file(head, artifact / "miti_head.safetensors")
    with pytest.raises(NonFiniteArtifact) as err:
        read_artifact(artifact)
    assert err.value.file == artifact / "miti_head.safetensors" and err.value.field == name

    settings = json.loads((artifact / "miti_config.json").read_text())
    settings["class_weights"][3] = float("nan")
    (artifact / "miti_config.json").write_text(json.dumps(settings))
    with pytest.raises(NonFiniteArtifact) as err:
        read_settings(artifact)
    assert err.value.file == artifact / "miti_config.json" and err.value.field == "class_weights[3]"

    encoder, tiny_head, tokenizer, _ = read_artifact(make_tiny_miti(tmp_path / "clean"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "clean").iterdir()}
    with pytest.raises(NonFiniteArtifact, match="non-finite number"):
        write_artifact(tmp_path / "clean", encoder=encoder, head=tiny_head, tokenizer=tokenizer,
                       settings={**settings, "labels": None}, split={}, metrics={}, predictions=[])
    assert {p.name: p.read_bytes() for p in (tmp_path / "clean").iterdir()} == before
