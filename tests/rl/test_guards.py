"""Guard measures, reward shaping and the DPO pair rule: pure functions, no data, no models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.evaluation import guards
from therapy_align.rl.dpo_rounds import PairRule, select_pair
from therapy_align.rl.judging import divergence
from therapy_align.rl.reward import RewardConfig, excess_penalty, guard_terms, length_term

text = st.lists(st.sampled_from("i feel you sad why how work sleep alone talk friend mother".split()), min_size=0, max_size=40).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(text, text)
def test_measures_stay_in_range(seeker, reply):
    assert 0.0 <= guards.copy_rate(seeker, reply) <= 1.0
    assert 0.0 <= guards.repetition(reply) < 1.0
    assert 0.0 <= guards.question_rate(reply) <= 1.0
    assert guards.copy_rate(reply, reply) == (1.0 if len(guards.words(reply)) >= 3 else 0.0)


def test_repetition_copy_questions_on_known_texts():
    reply = "It sounds like work has been exhausting and you feel unseen there."
    assert guards.repetition(reply) == 0.0
    assert guards.repetition(" ".join([reply] * 3)) == pytest.approx(2 / 3, abs=0.05)
    assert guards.question_rate("How are you? Why now? What helps?") == 1.0
    assert guards.question_rate("That is hard. What helps?") == 0.5
    assert guards.distinct_n(["a b c", "a b c"]) == 0.5


def test_template_rate_counts_only_other_seekers():
    template = "I am so sorry you are going through this right now"
    rates = guards.template_rates(["post one", "post two", "post one"], [template, template, "a unique reply to the first post"])
    assert rates[:2] == [1.0, 1.0] and rates[2] == 0.0
    # the same reply twice to ONE seeker is not a template
    assert guards.template_rates(["p", "p"], [template, template]) == [0.0, 0.0]


def test_specificity_prefers_the_own_post():
    vocab = ["my", "dog", "died", "exams", "stress", "me", "sorry", "your"]

    def embed(texts):  # bag-of-words unit vectors: a stand-in encoder
        import torch

        rows = torch.tensor([[float(w in guards.words(t)) for w in vocab] for t in texts]) + 1e-6
        return torch.nn.functional.normalize(rows, dim=-1)

    out = guards.specificity(["my dog died", "exams stress me"], ["sorry your dog died", "sorry your dog died"], embed=embed)
    assert out[0] > 0 > out[1]


def test_penalties_and_length_shape():
    assert excess_penalty(0.1, 0.2, 0.6) == 0.0 and excess_penalty(1.0, 0.2, 0.6) == -1.0
    assert excess_penalty(0.5, 0.2, 0.6) == pytest.approx(-0.5)
    kw = dict(min_tokens=16, max_tokens=256, overlong_cache=32)
    assert length_term(0, **kw) == -1.0 and length_term(8, **kw) == -0.5 and length_term(100, **kw) == 0.0
    assert length_term(240, **kw) == pytest.approx(-0.5) and length_term(300, **kw) == -1.0
    terms = guard_terms({"specificity": 0.6, "copy_rate": 0.0, "template_rate": 1.0, "repetition": 0.0,
                         "question_rate": 1.0, "len_tokens": 50}, RewardConfig())
    assert terms == {"specificity": 1.0, "copy": 0.0, "template": -1.0, "repetition": 0.0, "questions": -1.0, "length": 0.0}


def test_pair_rule_matches_lengths_and_needs_a_margin():
    rule = PairRule(min_margin=0.5, max_length_ratio=1.5)
    long_best = {"total": 2.0, "new_tokens": 100}
    mid = {"total": 1.0, "new_tokens": 40}
    low = {"total": 0.2, "new_tokens": 35}
    pair, why = select_pair([long_best, mid, low], rule)
    assert why == "kept" and pair == (mid, low)  # the longest reply has no length-matched partner
    assert select_pair([mid, {"total": 0.9, "new_tokens": 40}], rule) == (None, "margin")
    assert select_pair([long_best, low], rule) == (None, "length_ratio")
    assert select_pair([mid], rule) == (None, "too_few")


def test_divergence_flags_reward_up_judge_down():
    rows = [{"step": 0, "reward_total": 0.1, "judge_final": 0.8}, {"step": 10, "reward_total": 0.9, "judge_final": 0.5}]
    assert divergence(rows)["flagged"] is True
    rows[1]["judge_final"] = 0.9
    assert divergence(rows)["flagged"] is False
    assert divergence(rows[:1]) is None


def test_model_card_flags_reward_up_judge_down(tmp_path):
    from therapy_align.rl.policy_model import write_model_card

    rows = [{"step": 0, "reward_total": 0.1, "judge_final": 0.8}, {"step": 10, "reward_total": 0.9, "judge_final": 0.5}]
    config = {"name": "grpo-x", "base_model": "b", "sft_run": "runs/sft", "reward": {"weights": {"empeval": 0.5}}}
    write_model_card(tmp_path, method="GRPO", config=config, metrics={}, judge_rows=rows, divergence=divergence(rows),
                     judge_note=None, tiny=False)
    card = (tmp_path / "README.md").read_text()
    assert "**FLAG: the held-out reward rose (+0.8000) while the independent judge fell (-0.3000)" in card
    rows[1]["judge_final"] = 0.9
    write_model_card(tmp_path, method="GRPO", config=config, metrics={}, judge_rows=rows, divergence=divergence(rows),
                     judge_note=None, tiny=True)
    card = (tmp_path / "README.md").read_text()
    assert "FLAG" not in card and "not flagged" in card and "not that the model became more empathetic" in card
