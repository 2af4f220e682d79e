"""Top-k / top-p sampling without sorting the whole vocabulary at every step.

    config, processors = candidate_sampling(generation_config)       # a sampling GenerationConfig
    model.generate(..., generation_config=config, logits_processor=processors)

transformers' ``TopPLogitsWarper`` sorts all the logits of every row at every decoding step, then
takes a softmax and a cumulative sum over them; with Gemma 3's 262,144-token vocabulary that is a
large share of a CPU decoding step for a small model. The nucleus (``top_p``) is almost always a
few dozen tokens, so :class:`CandidateTopPWarper` takes the ``candidates`` most likely tokens with
``torch.topk`` (a partial selection, no full sort) and applies top-p among them:

* with ``top_k`` set, the candidates *are* the top-k tokens, so top-k then top-p is computed on
  them exactly as ``TopKLogitsWarper`` then ``TopPLogitsWarper`` compute it on the full row;
* with top-p alone, a token's probability is its exponentiated logit less the row's logsumexp
  (one pass over the row, no sort); a row whose candidates hold less than ``top_p`` of the mass
  (the nucleus may reach past them) goes through ``TopPLogitsWarper`` itself, so the result is
  exact either way.

"Exact" is the warpers' own decision: a token is kept when the probability mass of the tokens
ranked above it is below ``top_p``. Two things can make the kept set differ from the warpers':
logits tied at the cut (the warpers keep every token tied with the k-th, and among tokens tied at
the top-p cut the full sort's arbitrary order decides), and a token whose mass above lies within
float rounding of ``top_p`` (the warpers sum in float32 over the whole sorted row, this over the
candidates). Kept logits are the input's values, untouched, so the sampling distribution is the
warpers' bit for bit whenever the kept set is.

The processor also applies the temperature: ``generate`` runs processors passed in
``logits_processor`` *before* its own warpers, so temperature, top-k and top-p move into this one
processor together (in the warpers' order) and :func:`candidate_sampling` switches the built-in
ones off, so nothing runs twice.
"""

from __future__ import annotations

import copy

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

# Candidates for top-p alone: the nucleus at top_p <= 0.95 is nearly always far smaller, and
# torch.topk over 262k logits costs about the same for 256 or 2048 of them.
DEFAULT_CANDIDATES = 1024


class CandidateTopPWarper(LogitsProcessor):
    """Temperature, then top-k, then top-p (as transformers' warpers, in their order), with the
    top-p cut made among the ``top_k`` (or, without top-k, ``candidates``) most likely tokens.

    ``rows`` and ``rows_sorted`` count the rows processed and those that needed the full sort
    (top-p alone, the candidates holding less than ``top_p`` of the mass): benchmarks report them.
    """

    def __init__(self, *, top_p: float = 1.0, top_k: int = 0, temperature: float = 1.0,
                 candidates: int = DEFAULT_CANDIDATES, min_tokens_to_keep: int = 1) -> None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if top_k < 0 or candidates < 1 or min_tokens_to_keep < 1:
            raise ValueError(f"need top_k >= 0, candidates >= 1, min_tokens_to_keep >= 1; got {top_k}, {candidates}, "
                             f"{min_tokens_to_keep}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.top_p, self.top_k, self.temperature = float(top_p), int(top_k), float(temperature)
        self.candidates, self.min_tokens_to_keep = int(candidates), int(min_tokens_to_keep)
        self.rows = self.rows_sorted = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.temperature != 1.0:  # as TemperatureLogitsWarper, which generate skips at 1.0
            scores = scores / self.temperature
        vocab = scores.size(-1)
        self.rows += scores.size(0)
        if self.top_k:
            k = min(max(self.top_k, self.min_tokens_to_keep), vocab)
            if self.top_p >= 1.0:  # top-k alone: TopKLogitsWarper's own cut (ties with the k-th kept)
                kth = torch.topk(scores, k).values[..., -1:]
                return scores.masked_fill(scores < kth, -float("inf"))
        elif self.top_p >= 1.0:
            return scores
        else:
            k = min(max(self.candidates, self.min_tokens_to_keep), vocab)
        values, indices = torch.topk(scores, k)  # descending
        if self.top_k:  # TopPLogitsWarper after TopKLogitsWarper renormalises over the top k
            probs = values.softmax(dim=-1)
        else:
            probs = (values - scores.logsumexp(dim=-1, keepdim=True)).exp()
        mass_above = probs.cumsum(dim=-1) - probs
        keep = mass_above < self.top_p
        keep[..., : self.min_tokens_to_keep] = True
        out = torch.full_like(scores, -float("inf")).scatter_(-1, indices, values.masked_fill(~keep, -float("inf")))
        if not self.top_k and k < vocab:
            # The nucleus may reach past the candidates: the next token's mass above is the candidates' total
            beyond = keep[..., -1] & (probs.sum(dim=-1) < self.top_p)
            if beyond.any():
                self.rows_sorted += int(beyond.sum())
                full_sort = TopPLogitsWarper(self.top_p, min_tokens_to_keep=self.min_tokens_to_keep)
                out[beyond] = full_sort(None if input_ids is None else input_ids[beyond], scores[beyond])
        return out


def candidate_sampling(config: GenerationConfig, *, candidates: int = DEFAULT_CANDIDATES
                       ) -> tuple[GenerationConfig, LogitsProcessorList]:
    """``(config with temperature, top_k and top_p switched off, [CandidateTopPWarper])`` for a
    sampling ``config``; a greedy one comes back as it is, with no processor.

    ``config`` must give ``temperature``, ``top_k`` and ``top_p`` explicitly: ``generate`` would
    fill a ``None`` from the model's generation config (top_k defaulting to 50), which this cannot see.
    """
    if not config.do_sample:
        return config, LogitsProcessorList()
    missing = [name for name in ("temperature", "top_k", "top_p") if getattr(config, name) is None]
    if missing:
        raise ValueError(f"a sampling GenerationConfig needs explicit {', '.join(missing)} here")
    warper = CandidateTopPWarper(top_p=config.top_p, top_k=config.top_k, temperature=config.temperature,
                                 candidates=candidates)
    plain = copy.deepcopy(config)
    plain.temperature, plain.top_k, plain.top_p = 1.0, 0, 1.0
    return plain, LogitsProcessorList([warper])
