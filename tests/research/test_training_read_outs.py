"""The studies' read-outs reach metrics.json through `train(..., read_outs=...)`: recipes/empeval_train.py
passes them, so its artifact keeps every key it had when training computed them itself, and each
agrees with the published headline where they measure the same thing."""

from __future__ import annotations

import json

import pytest

from empeval.mechanisms import MECHANISMS
from research.empeval.training_read_outs import PUBLISHED_VARIANT
from tests.conftest import REPO_ROOT, load_recipe_module

pytestmark = pytest.mark.integration

METRICS_KEYS = ["split", "n_pairs", "partial_test_split", *MECHANISMS, "macro_f1_mean", "decision_offsets", "variants",
                "epitome_protocol", "seeker_shuffle", "seeker_shuffle_without_fit_gate", "n_mismatched_train_pairs",
                "best_epoch", "dev_macro_f1_mean", "fit_seconds", "resumed", "machine"]
VARIANTS = ["truncated_128_no_offsets", "whole_reply_no_gate_no_offsets", "whole_reply_no_offsets",
            "whole_reply_no_gate_dev_offsets", PUBLISHED_VARIANT]


def test_the_recipe_publishes_the_studies_read_outs(tmp_path):
    recipe = load_recipe_module(REPO_ROOT / "recipes" / "empeval_train.py", "empeval_recipe_read_outs")
    out = recipe.main(["--preset", "smoke", "--out", str(tmp_path / "model"), "--train.limit_batches=2",
                       "--train.batch_size=4", "--progress=false"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == METRICS_KEYS  # the keys, in the order they always had
    assert list(metrics["variants"]) == VARIANTS and list(metrics["epitome_protocol"]) == VARIANTS[1:]
    for mechanism in MECHANISMS:
        # The published variant is the headline: the same forward pass, read out the same way.
        assert metrics["variants"][PUBLISHED_VARIANT][mechanism] == metrics[mechanism]
        # EPITOME's read-out of the same test levels: one batch of 32 is the whole smoke split.
        protocol = metrics["epitome_protocol"][PUBLISHED_VARIANT][mechanism]
        assert protocol["macro_f1"] == pytest.approx(metrics[mechanism]["macro_f1"], abs=1e-6)
        assert protocol["batch_macro_f1"] == pytest.approx(protocol["macro_f1"])  # 8 test pairs: one batch
        shuffle = metrics["seeker_shuffle"][mechanism]
        assert set(shuffle) == {"real", "shuffled", "drop_percent"}


def test_a_read_out_may_not_replace_a_published_key(tmp_path):
    from empeval.config import TrainConfig
    from empeval.training import train

    def overwrite_headline(outputs):
        return {"macro_f1_mean": 1.0}

    with pytest.raises(ValueError, match="macro_f1_mean"):
        train(TrainConfig(max_epochs=1, limit_batches=1, batch_size=2), tmp_path / "model", progress=False,
              read_outs=(overwrite_headline,))
    assert not (tmp_path / "model").exists()
