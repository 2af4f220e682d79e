"""summary.json follows the paper's final-score formula (Table 1)."""

import json

import pytest

from empeval.evaluator import EmpathyScores
from empeval.mechanisms import MECHANISMS, final_score, summarise_levels
from therapy_align.evaluation.scorers.empeval import EmpevalScorer, score_file

TABLE_1 = [  # (model, prompt): Empathy, Interpretation, Exploration, Final
    (1090, 20, 16, 232.4),
    (1350, 68, 18, 304.4),
    (1415, 44, 16, 307.0),
    (1164, 28, 286, 358.4),
    (1475, 46, 248, 412.6),
]
# Table 1's last row (80% model, new prompt) prints E=1488, I=46, X=266 and a final 421.8, but the
# formula gives 422.4 (421.8 would need E=1485): a typo in the paper, checked separately below.


def test_table_1_last_row_is_inconsistent_with_its_own_formula():
    assert final_score(1488, 46, 266) == pytest.approx(422.4, abs=1e-9)
    assert final_score(1485, 46, 266) == pytest.approx(421.8, abs=1e-9)


@pytest.mark.parametrize("empathy,interpretation,exploration,final", TABLE_1)
def test_final_score_reproduces_table_1(empathy, interpretation, exploration, final):
    assert final_score(empathy, interpretation, exploration) == pytest.approx(final, abs=1e-9)


class HandMadeLevels:
    """Stands in for the trained model (a dependency here): returns fixed levels per response text."""

    def __init__(self, levels_by_response: dict[str, tuple[int, int, int]]):
        self.levels_by_response = levels_by_response

    def score(self, seekers, responses, batch_size=None):
        levels = {m: [self.levels_by_response[r][k] for r in responses] for k, m in enumerate(MECHANISMS)}
        probabilities = {m: [[float(level == j) for j in range(3)] for level in levels[m]] for m in MECHANISMS}
        return EmpathyScores(levels=levels, probabilities=probabilities)


def test_summary_json_applies_the_paper_formula_to_hand_made_levels(tmp_path):
    hand_made = {"a": (2, 0, 1), "b": (1, 1, 0), "c": (0, 2, 2), "d": (2, 0, 0)}
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"id": i, "seeker": "s", "response": r}) + "\n" for i, r in enumerate(hand_made)))
    score_file(EmpevalScorer("hand-made", evaluator=HandMadeLevels(hand_made)), pairs, tmp_path / "scores.jsonl")

    summary = json.loads((tmp_path / "scores.summary.json").read_text())
    assert summary["columns"] == {"E": 1250.0, "I": 750.0, "X": 750.0, "final": pytest.approx(850.0)}
    assert summary["n"] == 4
    assert summary["sums"] == {"emotional_reactions": 5, "interpretations": 3, "explorations": 3}
    assert summary["sums_per_1000"] == {"emotional_reactions": 1250.0, "interpretations": 750.0, "explorations": 750.0}
    # 0.2 * 1250 + 0.4 * 750 + 0.4 * 750
    assert summary["final_score"] == pytest.approx(850.0)
    assert summary["final_score_raw_sums"] == pytest.approx(0.2 * 5 + 0.4 * 3 + 0.4 * 3)


def test_summary_of_1000_inputs_matches_table_1_row():
    # 1,000 inputs whose levels sum to Table 1's first row: E=1090, I=20, X=16 -> 232.4.
    levels = {
        "emotional_reactions": [2] * 545 + [0] * 455,
        "interpretations": [2] * 10 + [0] * 990,
        "explorations": [1] * 16 + [0] * 984,
    }
    summary = summarise_levels(levels)
    assert summary["sums_per_1000"] == {"emotional_reactions": 1090, "interpretations": 20, "explorations": 16}
    assert summary["final_score"] == pytest.approx(232.4, abs=1e-9)


def test_summary_refuses_mechanisms_of_different_lengths():
    with pytest.raises(ValueError, match="different numbers"):
        summarise_levels({"emotional_reactions": [1], "interpretations": [1, 2], "explorations": [0]})
