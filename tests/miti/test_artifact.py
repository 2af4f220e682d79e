"""The trained MI classifier (artifacts/miti, trained here if missing): its reported macro-F1 is
recomputed from the saved test predictions, it beats both baselines, and its MITI scores on the
held-out high-quality transcripts are within 20% of the experts'. Slow: trains the
default recipe when no artifact exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module

pytestmark = pytest.mark.integration

ARTIFACT = REPO_ROOT / "artifacts" / "miti"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, data_dir) -> Path:
    if (ARTIFACT / "test_predictions.jsonl").is_file():
        return ARTIFACT
    recipe = load_recipe_module(REPO_ROOT / "recipes" / "miti_train.py", "miti_recipe_slow")
    return recipe.main([f"--out={tmp_path_factory.mktemp('miti') / 'artifact'}", f"--data.data_dir={data_dir}",
                        "--progress=false"])


@pytest.mark.slow
def test_reported_macro_f1_is_recomputed_from_the_predictions(artifact):
    from sklearn.metrics import f1_score

    from miti.labels import LABELS

    metrics = json.loads((artifact / "metrics.json").read_text())
    lines = [json.loads(line) for line in (artifact / "test_predictions.jsonl").read_text().splitlines()]
    assert len(lines) == metrics["n_test_turns"] and not metrics["partial_test_split"]
    truth = [line["label"] for line in lines]
    for method, key in (("classifier", "prediction"), ("majority", "majority_prediction"),
                        ("tfidf_logreg", "tfidf_logreg_prediction")):
        recomputed = 100 * f1_score(truth, [line[key] for line in lines], labels=list(LABELS), average="macro",
                                    zero_division=0)
        assert recomputed == pytest.approx(metrics["methods"][method]["macro_f1"], abs=0.01)
    f1 = {m: metrics["methods"][m]["macro_f1"] for m in metrics["methods"]}
    assert f1["classifier"] > f1["tfidf_logreg"] and f1["classifier"] > f1["majority"]


@pytest.mark.slow
def test_miti_scores_on_heldout_high_quality_within_20_percent(artifact):
    from miti.summary import summarise

    lines = [json.loads(line) for line in (artifact / "test_predictions.jsonl").read_text().splitlines()]
    high = [line for line in lines if line["quality"] == "high"]
    expert, model = summarise(l["label"] for l in high), summarise(l["prediction"] for l in high)
    for metric in ("r_q", "pct_complex_reflections"):
        assert abs(model[metric] - expert[metric]) / expert[metric] <= 0.20, (metric, model[metric], expert[metric])
    split = json.loads((artifact / "split.json").read_text())
    assert {l["transcript_id"] for l in high} <= set(split["test"])
