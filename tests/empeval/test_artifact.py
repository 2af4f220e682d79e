"""The published artifact's metrics.json is what its own predictions on its test split give."""

import json
from pathlib import Path

import pytest

from empeval.mechanisms import MECHANISMS

pytestmark = pytest.mark.integration

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "empeval"


@pytest.mark.slow
def test_metrics_json_matches_predictions_on_the_test_split():
    if not (ARTIFACT / "metrics.json").is_file():
        pytest.skip(f"no trained artifact at {ARTIFACT}: run `therapy-align empeval train` first")
    import torch
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

    import empeval
    from empeval.epitome_data import load_epitome

    metrics = json.loads((ARTIFACT / "metrics.json").read_text())
    split = json.loads((ARTIFACT / "split.json").read_text())
    frame = load_epitome()
    # Repeated pairs share their seeker post, so selecting by rp_id gives exactly the split's rows.
    test = frame[frame["rp_id"].isin(set(split["test"]))]
    assert len(test) == len(split["test"]) == metrics["n_pairs"]
    assert not set(split["test"]) & (set(split["train"]) | set(split["dev"]))

    scores = empeval.load(ARTIFACT).score(test["seeker_post"].tolist(), test["response_post"].tolist())
    for mechanism in MECHANISMS:
        predicted = torch.tensor(scores.levels[mechanism])
        target = torch.tensor(test[mechanism].to_numpy())
        f1 = multiclass_f1_score(predicted, target, num_classes=3, average="macro").item()
        accuracy = multiclass_accuracy(predicted, target, num_classes=3, average="micro").item()
        # Different batch composition (padding) can move a logit by ~1e-6; no prediction flips at
        # this tolerance unless a pair sits exactly on a decision boundary.
        assert f1 == pytest.approx(metrics[mechanism]["macro_f1"], abs=1e-4), mechanism
        assert accuracy == pytest.approx(metrics[mechanism]["accuracy"], abs=1e-4), mechanism
