"""CandidateTopPWarper keeps the tokens transformers' Temperature -> TopK -> TopP warpers keep, with the
same values (so the same renormalised probabilities and samples), sorting only when it must."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from transformers import GenerationConfig, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from therapy_align.evaluation.sampling import CandidateTopPWarper, candidate_sampling


def reference(scores, *, top_p, top_k, temperature):
    """What generate's own warpers do, in generate's order (each only when it would be built)."""
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers(None, scores)


def near_the_cut(scores, *, top_p, top_k, temperature, margin=1e-5) -> bool:
    """Whether some token's mass above (in float64) lies within ``margin`` of ``top_p``, where the
    warpers' float32 sum over the whole row decides by rounding."""
    z = scores.double() / temperature
    if top_k:
        kth = torch.topk(z, min(top_k, z.size(-1))).values[..., -1:]
        z = z.masked_fill(z < kth, -float("inf"))
    probs = z.softmax(-1).sort(-1, descending=True).values
    above = probs.cumsum(-1) - probs
    return bool(((above - top_p).abs() < margin).any())


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 4), vocab=st.integers(2, 3000),
       spread=st.floats(0.05, 12.0), top_p=st.floats(0.01, 1.0), top_k=st.just(0) | st.integers(1, 3100),
       temperature=st.sampled_from([1.0, 0.7, 1.3]), candidates=st.integers(1, 64) | st.integers(1, 3100))
def test_kept_set_and_probabilities_equal_the_warpers(seed, rows, vocab, spread, top_p, top_k, temperature, candidates):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn((rows, vocab), generator=gen) * spread
    # Ties at a cut are decided arbitrarily by the full sort; rounding at the top-p cut too
    assume(all(row.unique().numel() == vocab for row in scores))
    assume(not near_the_cut(scores, top_p=top_p, top_k=top_k, temperature=temperature))

    expected = reference(scores.clone(), top_p=top_p, top_k=top_k, temperature=temperature)
    warper = CandidateTopPWarper(top_p=top_p, top_k=top_k, temperature=temperature, candidates=candidates)
    got = warper(None, scores.clone())

    assert torch.equal(torch.isfinite(got), torch.isfinite(expected))  # the kept set
    assert torch.equal(got, expected)  # the kept values, untouched
    assert torch.equal(got.softmax(-1), expected.softmax(-1))  # the renormalised distribution
    assert warper.rows == rows
    event("full sort" if warper.rows_sorted else "candidates only")


def test_falls_back_to_the_full_sort_only_when_the_candidates_cannot_hold_the_nucleus():
    flat = torch.zeros((1, 1000))  # uniform: top_p = 0.5 needs 500 tokens
    peaked = torch.full((1, 1000), -20.0)
    peaked[0, :3] = 5.0
    scores = torch.cat([flat, peaked])
    warper = CandidateTopPWarper(top_p=0.5, candidates=64)
    got = warper(None, scores.clone())
    assert warper.rows == 2 and warper.rows_sorted == 1
    assert int(torch.isfinite(got[0]).sum()) == int(torch.isfinite(TopPLogitsWarper(0.5)(None, flat)).sum())
    assert int(torch.isfinite(got[1]).sum()) == 2  # 2 of 3 equal tokens already hold a mass above 0.5


def test_candidate_sampling_switches_the_built_in_warpers_off_and_leaves_greedy_alone():
    sampled = GenerationConfig(do_sample=True, temperature=0.7, top_k=0, top_p=0.9, max_new_tokens=3)
    config, processors = candidate_sampling(sampled)
    assert (config.temperature, config.top_k, config.top_p) == (1.0, 0, 1.0)
    assert (sampled.temperature, sampled.top_p) == (0.7, 0.9)  # the caller's config is not changed
    (warper,) = processors
    assert (warper.temperature, warper.top_k, warper.top_p) == (0.7, 0, 0.9)
    greedy = GenerationConfig(do_sample=False, max_new_tokens=3)
    assert candidate_sampling(greedy) == (greedy, LogitsProcessorList())
    with pytest.raises(ValueError, match="top_k"):
        candidate_sampling(GenerationConfig(do_sample=True, temperature=1.0, top_p=0.9))


@pytest.mark.parametrize("bad", [{"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}, {"candidates": 0}, {"temperature": 0.0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        CandidateTopPWarper(**bad)


def test_generate_samples_the_same_tokens_as_with_the_built_in_warpers(tmp_path):
    from therapy_align.training.tiny_model import build_tiny_model

    model = build_tiny_model().eval()
    # Sharpen the random model so the nucleus is a few tokens and the candidate path (not only the
    # fallback) decides
    with torch.no_grad():
        model.lm_head.weight.mul_(40)
    ids = torch.randint(3, 32000, (3, 6), generator=torch.Generator().manual_seed(0))
    config = GenerationConfig(do_sample=True, temperature=0.8, top_k=0, top_p=0.9, max_new_tokens=12, pad_token_id=0,
                              eos_token_id=None)
    outs = []
    for use_candidates in (False, True):
        gen_config, processors = candidate_sampling(config) if use_candidates else (config, None)
        torch.manual_seed(7)
        with torch.inference_mode():
            outs.append(model.generate(input_ids=ids, generation_config=gen_config, logits_processor=processors))
    assert torch.equal(outs[0], outs[1])
    assert processors[0].rows == 3 * 12
