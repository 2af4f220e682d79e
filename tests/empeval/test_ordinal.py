"""TrainConfig.ordinal_mechanisms end to end: a few training steps on real EPITOME data write an
artifact that records which heads are ordinal, loads back through the artifact checks, and scores
pairs; an artifact whose recorded heads disagree with its weights is refused in one line."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from empeval.artifact import ArtifactError
from empeval.cli import app
from empeval.evaluator import load
from empeval.mechanisms import MECHANISMS
from empeval.model import OrdinalHead

pytestmark = pytest.mark.integration

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def ordinal_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("empeval-ordinal") / "model"
    result = CliRunner().invoke(app, ["train", "--out", str(out), "--limit", "2", "--max-epochs", "1",
                                      "--batch-size", "4", "--no-progress", "--train.ordinal_mechanisms=interpretations"])
    assert result.exit_code == 0, result.output
    return out


def test_an_ordinal_artifact_records_its_head_and_scores_pairs(ordinal_model):
    settings = json.loads((ordinal_model / "empeval_config.json").read_text())
    assert settings["train_config"]["ordinal_mechanisms"] == ["interpretations"]
    evaluator = load(ordinal_model)
    assert [isinstance(evaluator.model.heads[m], OrdinalHead) for m in MECHANISMS] == [False, True, False]
    scores = evaluator.score(["I lost my job and I can't tell my wife.", "I can't sleep."],
                             ["That must be so hard to carry alone. What makes it hard to tell her?", "Same."])
    for mechanism in MECHANISMS:
        probabilities = np.asarray(scores.probabilities[mechanism])
        assert np.allclose(probabilities.sum(-1), 1.0, atol=1e-5)
        assert scores.levels[mechanism] == probabilities.argmax(-1).tolist()
    metrics = json.loads((ordinal_model / "metrics.json").read_text())
    assert all(0.0 <= metrics[m]["macro_f1"] <= 1.0 for m in MECHANISMS)


def test_a_head_that_disagrees_with_the_weights_is_refused(ordinal_model, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(ordinal_model, damaged)
    config_path = damaged / "empeval_config.json"
    settings = json.loads(config_path.read_text())
    del settings["train_config"]["ordinal_mechanisms"]  # now it claims three softmax heads
    config_path.write_text(json.dumps(settings))
    with pytest.raises(ArtifactError) as refused:
        load(damaged)
    message = str(refused.value)
    assert str(damaged) in message and "\n" not in message
