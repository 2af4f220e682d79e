"""Whole replies (windows over the response, best window per mechanism), the fits-the-post gate
and the mismatched training pairs: the pieces that make EMP-EVAL read the whole reply and the post."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from empeval.config import default_backbone
from empeval.datamodule import IGNORE, encode_pairs, mismatch_labels, mismatched_rows
from empeval.evaluator import gate_by_fit
from empeval.windows import combine_views, encode_views

MAX = 64


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_backbone())


def test_a_pair_that_fits_is_read_as_in_training(tokenizer):
    seekers, responses = ["I feel alone.", "Long post. " * 80], ["That sounds hard.", "I hear you."]
    views, owners = encode_views(tokenizer, seekers, responses, MAX)
    assert owners == [0, 1]  # a long post with a short reply: one view, the post truncated
    assert views == encode_pairs(tokenizer, seekers, responses, MAX)


def test_long_reply_windows_cover_every_response_token_with_the_seeker_kept(tokenizer):
    seeker = "I lost my job and I can't tell my family. " * 6  # longer than half the window
    response = " ".join(f"word{i}" for i in range(300))
    views, owners = encode_views(tokenizer, [seeker], [response], MAX)
    assert len(views) > 3 and set(owners) == {0}
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    seen = set()
    first_seeker = None
    for view in views:
        assert len(view["input_ids"]) <= MAX
        types = view["token_type_ids"]
        seeker_part = [t for t, k in zip(view["input_ids"], types) if k == 0]
        first_seeker = first_seeker or seeker_part
        assert seeker_part == first_seeker  # the same seeker prefix in every window
        seen.update(t for t, k in zip(view["input_ids"], types) if k == 1)
    assert set(response_ids) <= seen


def test_a_late_sentence_lies_whole_inside_one_window(tokenizer):
    sentence = "I am so sorry you feel this alone right now."
    response = "The library opens at nine and closes at six. " * 20 + sentence
    views, _ = encode_views(tokenizer, ["I feel alone."], [response], MAX)
    target = tokenizer(sentence, add_special_tokens=False)["input_ids"]
    def contains(ids):
        return any(ids[i : i + len(target)] == target for i in range(len(ids) - len(target) + 1))
    assert any(contains(view["input_ids"]) for view in views)


def test_view_spans_are_the_text_each_view_reads_and_the_late_sentence_has_its_own(tokenizer):
    sentence = "I am so sorry you feel this alone right now."
    long_reply = "The library opens at nine and closes at six. " * 20 + sentence
    short_reply = "That sounds hard."
    views, owners, spans = encode_views(tokenizer, ["I feel alone.", "I feel alone."], [long_reply, short_reply],
                                        MAX, spans=True)
    assert len(spans) == len(views) == len(owners)
    assert spans[-1] == (0, len(short_reply))  # a pair read whole is gated on its whole reply
    windows = [long_reply[a:b] for (a, b), owner in zip(spans, owners) if owner == 0]
    assert len(windows) > 1 and all(len(text) < len(long_reply) for text in windows)
    assert any(sentence in text and len(text) < len(long_reply) // 2 for text in windows)
    for view, text in zip((v for v, o in zip(views, owners) if o == 0), windows):
        types = view.get("token_type_ids")
        response_ids = [t for t, k in zip(view["input_ids"], types) if k == 1][:-1]  # minus [SEP]
        assert response_ids == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_each_mechanism_takes_its_best_window():
    # two pairs: pair 0 has views 0, 1; pair 1 has view 2
    logits = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]]))
    levels, probabilities = combine_views(logits, [0, 0, 1], 2)
    assert levels.tolist() == [2, 1]
    assert probabilities[0] == pytest.approx([0.1, 0.2, 0.7])
    # ties on level: the higher expected level wins
    tie = np.log(np.array([[0.1, 0.5, 0.4], [0.1, 0.6, 0.3]]))
    assert combine_views(tie, [0, 0], 1)[1][0] == pytest.approx([0.1, 0.5, 0.4])


def test_fit_gate_moves_specific_ip_ex_to_zero_and_leaves_er_and_generic_alone():
    probabilities = np.array([[0.2, 0.3, 0.5]] * 3)[:, None, :]  # (mechanisms, 1 view, levels)
    logits = np.log(probabilities)
    gated = np.exp(gate_by_fit(logits, np.array([-50.0]), gate=True))[:, 0]
    assert gated[0] == pytest.approx([0.2, 0.3, 0.5])  # ER untouched
    for m in (1, 2):
        assert gated[m] == pytest.approx([0.7, 0.3, 0.0], abs=1e-6)  # level 2 -> 0, level 1 kept
    fits = np.exp(gate_by_fit(logits, np.array([50.0]), gate=True))[:, 0]
    assert fits == pytest.approx(probabilities[:, 0])
    assert np.exp(gate_by_fit(logits, np.array([-50.0]), gate=False))[:, 0] == pytest.approx(probabilities[:, 0])


def test_mismatched_pairs_never_keep_their_own_seeker_and_get_the_documented_labels():
    sp_ids = np.array(["a", "a", "b", "c", "c", "d", "e", "f"], dtype=object)
    rows = np.arange(len(sp_ids))
    answers, seekers = mismatched_rows(sp_ids, rows, 0.5, seed=3)
    assert len(answers) == 4 and len(set(answers.tolist())) == 4
    assert (sp_ids[answers] != sp_ids[seekers]).all()
    labels = np.array([[2, 2, 2], [1, 1, 1], [0, 0, 0]])
    fit_only = mismatch_labels(labels, level_labels=False)
    assert (fit_only[:, :3] == IGNORE).all() and (fit_only[:, 3] == 0).all()
    with_levels = mismatch_labels(labels, level_labels=True)
    assert with_levels[:, 0].tolist() == [IGNORE] * 3
    assert with_levels[:, 1].tolist() == [0, 1, 0] and with_levels[:, 2].tolist() == [0, 1, 0]


def test_cosine_calibration_orders_real_above_mismatched():
    from empeval.fit import calibrate, fit_logits

    rng = np.random.default_rng(0)
    real, mismatched = rng.normal(0.5, 0.1, 200), rng.normal(0.1, 0.1, 200)
    calibration = calibrate(real, mismatched)
    assert calibration["slope"] > 0 and calibration["auc"] > 0.95
    low, high = fit_logits(np.array([0.1, 0.5]), calibration)
    assert low < 0 < high


def test_copy_guard_counts_the_reply_copied_from_the_post():
    from empeval.fit import copied_fraction

    post = "I lost my job last week and I feel like a complete failure who disappoints everyone."
    own_words = "That sounds crushing. Losing work can shake how you see yourself; what has helped before?"
    half = "I feel like a complete failure who disappoints everyone. That sounds crushing, honestly."
    shares = copied_fraction([post] * 4, [post, own_words, half, "ok"])
    assert shares[0] == 1.0 and shares[1] == 0.0 and 0.3 < shares[2] < 0.8
    assert shares[3] == 0.0  # under three words: no trigram, not a copy
    assert copied_fraction([post.upper()], [post.lower()])[0] == 1.0  # case does not hide a copy


def test_head_gate_without_mismatched_pairs_is_refused_before_training():
    from empeval.config import TrainConfig
    from therapy_align.overrides import ConfigError

    with pytest.raises(ConfigError, match="mismatch_fraction"):
        TrainConfig(backbone="x", fit_gate="head")
    with pytest.raises(ConfigError, match="fit_gate"):
        TrainConfig(backbone="x", fit_gate="cosin")
    assert TrainConfig(backbone="x", fit_gate="head", mismatch_fraction=0.5).mismatch_fraction == 0.5


def test_sentence_runs_hold_every_run_of_consecutive_sentences_up_to_the_limit():
    from empeval.evaluator import sentence_runs

    text = "The bus runs late. I'm so sorry. What has been hardest?"
    runs = sentence_runs(text, 2)
    assert runs[:3] == ["The bus runs late.", "I'm so sorry.", "What has been hardest?"]
    assert runs[3:] == ["The bus runs late. I'm so sorry.", "I'm so sorry. What has been hardest?"]
    assert sentence_runs("", 3) == [] and sentence_runs("no end mark", 3) == ["no end mark"]
