"""The scorer registry: every registered scorer lives in `therapy_align.evaluation.scorers`, builds under
its own name, and keeps the identity its stored scores were stamped with (a resumed cell's scores
stay accepted after the move)."""

from __future__ import annotations

import importlib

import pytest

from therapy_align.evaluation.scorers import REGISTRY, ScorerContext, make_scorers
from therapy_align.scoring import Pair, Scorer


def test_every_registered_scorer_lives_in_the_scorers_package():
    for name, target in REGISTRY.items():
        module, _, factory = target.partition(":")
        assert module.startswith("therapy_align.evaluation.scorers."), (name, target)
        assert callable(getattr(importlib.import_module(module), factory)), (name, target)


def test_guards_scorer_keeps_its_identity_and_columns(tmp_path):
    from therapy_align.evaluation.guards import GuardSettings
    from therapy_align.evaluation.scorers.guards import GuardScorer

    (default,) = make_scorers(("guards",), ScorerContext(work_dir=tmp_path))
    assert isinstance(default, Scorer) and default.name == "guards"
    assert dict(default.identity()) == {"guards_version": 1, "template_n": 4, "copy_n": 3, "repetition_n": 3,
                                        "tokenizer": None}
    scorer = GuardScorer(GuardSettings(tokenizer="words"))
    pairs = [Pair(id="0", seeker="I lost my job.", response="Losing your job sounds hard. What happened?"),
             Pair(id="1", seeker="I feel alone.", response="I feel alone. I feel alone.")]
    scores = scorer.score(pairs)
    # "I feel alone" twice: 2 of its 4 word trigrams are in the post, and one of them repeats
    assert scores[0]["question_rate"] == 0.5 and scores[1]["copy_rate"] == 0.5 and scores[1]["repetition"] > 0
    columns = scorer.summarise(pairs, scores)
    assert set(columns) == {"len_tokens", "distinct_2", "template_rate", "specificity", "copy_rate", "repetition",
                            "question_rate"}
    assert columns["len_tokens"] == (7 + 6) / 2


def test_safety_scorer_identity_is_the_detector_fingerprint(tmp_path):
    from therapy_align.safety.detector import DEFAULT_THRESHOLDS
    from therapy_align.safety.fingerprint import detector_fingerprint

    (scorer,) = make_scorers(("safety",), ScorerContext(work_dir=tmp_path))
    assert scorer.identity() == {"detector": detector_fingerprint(DEFAULT_THRESHOLDS), "semantic": True}


@pytest.mark.parametrize("name", ["empeval", "miti"])
def test_artifact_scorers_without_an_artifact_fail_in_one_line(tmp_path, name):
    from therapy_align.errors import UserError

    context = ScorerContext(work_dir=tmp_path, artifacts={name: str(tmp_path / "none")}, allow_quick=False)
    with pytest.raises(UserError) as error:
        make_scorers((name,), context)
    assert str(tmp_path / "none") in str(error.value)
