"""The process-wide sentence encoder: one per settings, a bounded memo that returns what a fresh
encoding returns, and every reader (EMP-EVAL's gate, the specificity guard, the safety layer)
served by the same one."""

import numpy as np

from therapy_align.sentence_embedding import SentenceEncoder, minilm_path


def test_the_memo_gives_the_same_embeddings_and_stays_bounded():
    encoder = SentenceEncoder()  # its own memo, not the shared one
    texts = ["I feel alone since the move.", "What happened after that?", "I feel alone since the move.", ""]
    fresh = encoder._encode(list(dict.fromkeys(texts)))
    first = encoder.embed(texts)
    assert np.allclose(first[0], first[2]) and np.allclose(first[:2], fresh[:2], atol=1e-5)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)  # unit vectors, the empty text too
    assert len(encoder._memo) == 3  # duplicates encoded once
    assert np.allclose(encoder.embed(texts[::-1]), first[::-1])  # served from the memo, same order
    encoder.MEMO_SIZE = 2
    encoder.embed(["one more text", "and another one"])
    assert len(encoder._memo) == 2 and "I feel alone since the move." not in encoder._memo
    assert encoder.embed([]).shape == (0, encoder.width)
    longer = encoder.embed(["a", "b", "c", "a"])  # one call longer than the memo
    assert np.allclose(longer[0], longer[3]) and len(encoder._memo) == 2
    encoder.clear_memo()
    assert not encoder._memo


def test_one_encoder_per_settings_serves_the_gate_the_guard_and_the_safety_layer():
    from empeval.config import default_backbone
    from empeval.fit import PostFit

    from therapy_align.evaluation.guards import specificity
    from therapy_align.safety.semantic import default_encoder

    shared = SentenceEncoder.shared()
    assert SentenceEncoder.shared(str(minilm_path())) is shared is PostFit(default_backbone()).encoder
    assert default_encoder() is SentenceEncoder.shared(max_length=128) is not shared  # another token limit
    posts = ["My dog died last week and the house is so quiet.", "Exams start Monday and I can't sleep."]
    replies = ["I'm sorry about your dog; a quiet house makes the loss louder.", "Sleep before exams is hard."]
    PostFit().cosine(posts, replies)  # the gate embeds posts and replies ...
    before = dict(shared._memo)
    scores = specificity(posts, replies)  # ... and the guard finds them in the memo: nothing re-encoded
    assert shared._memo.keys() == before.keys()
    assert scores[0] > 0 and scores[1] > 0  # each reply is more about its own post
