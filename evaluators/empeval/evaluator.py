"""Scoring (seeker, response) pairs with a trained evaluator: `empeval.load(path).score(...)`."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from empeval.artifact import read_artifact
from empeval.mechanisms import LEVELS, MECHANISMS, final_score

# An empty (or whitespace-only) response shows no empathy mechanism at all: it scores level 0 with
# probability 1 for every mechanism, without running the model.
EMPTY_RESPONSE_PROBABILITIES = (1.0, 0.0, 0.0)


@dataclass(frozen=True, kw_only=True)
class EmpathyScores:
    """Per mechanism: `levels[m][i]` in {0,1,2} and `probabilities[m][i]` = P(level 0, 1, 2)."""

    levels: dict[str, list[int]]
    probabilities: dict[str, list[list[float]]]

    def __len__(self) -> int:
        return len(self.levels[MECHANISMS[0]])

    def expected_levels(self, mechanism: str) -> list[float]:
        """Probability-weighted level, a smooth version of the level (useful as an RL reward)."""
        return [float(np.dot(p, LEVELS)) for p in self.probabilities[mechanism]]

    def row(self, index: int) -> dict:
        return {
            m: {"level": self.levels[m][index], "probabilities": self.probabilities[m][index]}
            for m in MECHANISMS
        }

    def final_scores(self, weights: Sequence[float] | None = None, expected: bool = False) -> list[float]:
        """Per-pair weighted score (Table 1's formula applied to one pair's levels)."""
        per = [self.expected_levels(m) if expected else self.levels[m] for m in MECHANISMS]
        kwargs = {} if weights is None else {"weights": weights}
        return [final_score(e, i, x, **kwargs) for e, i, x in zip(*per)]


GATED = ("interpretations", "explorations")  # mechanisms whose level 2 must fit the post
FIT_RUN_SENTENCES = 3  # a window's fit is also read on runs of up to this many sentences
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentence_runs(text: str, longest: int) -> list[str]:
    """Every run of 1..`longest` consecutive sentences of `text` (split after . ! ?), in order."""
    sentences = [part for part in _SENTENCE_END.split(text.strip()) if part]
    return [" ".join(sentences[i : i + k]) for k in range(1, longest + 1) for i in range(len(sentences) - k + 1)]


def gate_by_fit(logits: np.ndarray, fit_logits: np.ndarray, gate: bool) -> np.ndarray:
    """(mechanisms, views, levels) log-probabilities. With `gate`, a specific (level-2)
    interpretation or exploration counts only if the response fits the post: P(2) *= P(fits) and
    the removed mass goes to level 0 (see TrainConfig.mismatch_fraction)."""
    shifted = logits - logits.max(-1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(-1, keepdims=True)
    if gate:
        fits = 1.0 / (1.0 + np.exp(-fit_logits))  # (views,)
        for mechanism in GATED:
            m = MECHANISMS.index(mechanism)
            moved = probabilities[m, :, 2] * (1.0 - fits)
            probabilities[m, :, 2] -= moved
            probabilities[m, :, 0] += moved
    return np.log(np.clip(probabilities, 1e-12, None))


class Evaluator:
    def __init__(self, model, tokenizer, settings: dict, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.max_length = int(settings["max_length"])
        self.batch_size = batch_size
        # Per-class decision offsets tuned on dev at training time (0 = plain argmax).
        offsets = settings.get("decision_offsets") or {}
        self.offsets = np.array([offsets.get(m, [0.0] * len(LEVELS)) for m in MECHANISMS], dtype=np.float64)
        # Gate: False, True / "head" (the cross-encoder's fits-the-post head) or "cosine" (a
        # calibrated sentence-encoder cosine, empeval.fit; settings["fit_calibration"]).
        gate = settings.get("fit_gate", False)
        self.fit_gate = bool(gate)
        self.fit_mode = "cosine" if gate == "cosine" else "head"
        self.fit_calibration = settings.get("fit_calibration")
        self._post_fit = None

    def pair_fit_logits(self, seekers: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Per pair, the fits-the-post logit of the cosine gate: P(fits) = the calibrated cosine's
        probability x (1 - the share of the reply copied from the post; `empeval.fit.copied_fraction`)."""
        from empeval.fit import PostFit, copied_fraction, fit_logits

        if self._post_fit is None:
            self._post_fit = PostFit()
        fits = 1.0 / (1.0 + np.exp(-fit_logits(self._post_fit.cosine(seekers, responses), self.fit_calibration)))
        fits = np.clip(fits * (1.0 - copied_fraction(seekers, responses)), 1e-9, 1 - 1e-9)
        return np.log(fits) - np.log1p(-fits)

    def view_fit_logits(self, seekers: Sequence[str], responses: Sequence[str], owners, spans) -> np.ndarray:
        """Per view, the fits-the-post logit of the part of the reply that view reads.

        A pair read in one view: the whole reply (as calibrated). A window of a long reply: the
        best of the window's text and every run of up to `FIT_RUN_SENTENCES` consecutive sentences
        in it. Per window and per run, not per reply: a specific sentence after 200 tokens of
        unrelated text fits the post as well as that sentence alone, while the embedding of the
        whole reply, or of a window half filled with the unrelated text, is mostly that text
        (with a per-reply gate the probe's `late_empathy` lost the sentence's EX level for about half
        of the seekers; docs/research/evaluator-studies.md)."""
        texts, candidate_view = [], []
        for view, (owner, (start, end)) in enumerate(zip(owners, spans)):
            whole = responses[owner]
            window = whole[start:end]
            texts.append(window)
            candidate_view.append(view)
            if (start, end) != (0, len(whole)):
                for run in sentence_runs(window, FIT_RUN_SENTENCES):
                    texts.append(run)
                    candidate_view.append(view)
        logits = self.pair_fit_logits([seekers[owners[v]] for v in candidate_view], texts)
        best = np.full(len(owners), -np.inf)
        np.maximum.at(best, np.asarray(candidate_view, dtype=np.int64), logits)
        return best

    @torch.inference_mode()
    def raw_view_outputs(self, views: Sequence[dict], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(mechanisms, views, levels) logits and (views,) fits-the-post logits; batches of similar
        length, each padded to its own longest view (dynamic padding)."""
        logits = np.zeros((len(MECHANISMS), len(views), len(LEVELS)), dtype=np.float64)
        fit = np.zeros(len(views), dtype=np.float64)
        order = np.argsort([-len(f["input_ids"]) for f in views], kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self.tokenizer.pad([views[j] for j in chunk], padding="longest", return_tensors="pt")
            out = self.model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            for m_index, mechanism in enumerate(MECHANISMS):
                logits[m_index, chunk] = out[mechanism].float().numpy()
            fit[chunk] = out["fit"].float().numpy()
        return logits, fit

    def gated_view_logits(self, seekers: Sequence[str], responses: Sequence[str], batch_size: int = 64):
        """(log-probabilities (mechanisms, views, levels) with this evaluator's gate, before offsets;
        owners) of non-empty pairs: what the decision offsets are tuned on."""
        raw, fit, owners = self._view_outputs(seekers, responses, batch_size, self.fit_gate)
        return gate_by_fit(raw, fit, self.fit_gate), owners

    def _view_outputs(self, seekers: Sequence[str], responses: Sequence[str], batch_size: int, gated: bool):
        """(level logits per view, fits-the-post logit per view, owners): one forward pass over
        every view, and, when a gated read-out needs it under the cosine gate, the per-view fit."""
        from empeval.windows import encode_views

        views, owners, spans = encode_views(self.tokenizer, list(seekers), list(responses), self.max_length, spans=True)
        raw, fit = self.raw_view_outputs(views, batch_size)
        if gated and self.fit_mode == "cosine":
            fit = self.view_fit_logits(seekers, responses, owners, spans)
        return raw, fit, owners

    def view_logits(self, views: Sequence[dict], batch_size: int) -> np.ndarray:
        """(mechanisms, views, levels) log-probabilities, gated by fit when the artifact says so,
        before decision offsets."""
        return gate_by_fit(*self.raw_view_outputs(views, batch_size), self.fit_gate)

    def score(
        self, seekers: Sequence[str], responses: Sequence[str], batch_size: int | None = None
    ) -> EmpathyScores:
        """Levels and probabilities per mechanism of whole replies: a pair within `max_length`
        tokens is read as in training; a longer reply is read in windows, each with the seeker
        post, and each mechanism takes its best window (`empeval.windows`). Levels are the argmax
        of the (fit-gated) log-probabilities plus the artifact's decision offsets; probabilities
        are their softmax."""
        return self.score_variants(seekers, responses, {"": (self.fit_gate, self.offsets)}, batch_size)[""]

    def score_variants(
        self, seekers: Sequence[str], responses: Sequence[str], variants: dict, batch_size: int | None = None
    ) -> dict[str, EmpathyScores]:
        """One forward pass, several read-outs: `variants` maps a name to (fit gate on?, offsets
        array (mechanisms, levels)). `score` is the artifact's own variant."""
        views = self.view_outputs(seekers, responses, batch_size, gated=any(g for g, _ in variants.values()))
        return {name: views.read_out(gate, offsets) for name, (gate, offsets) in variants.items()}

    def view_outputs(self, seekers: Sequence[str], responses: Sequence[str], batch_size: int | None = None,
                     gated: bool = True) -> "ViewOutputs":
        """The model's outputs on every view of the pairs (one forward pass), to be read out with or
        without the gate and with any offsets (`ViewOutputs.read_out`). `gated=False` skips the
        cosine gate's sentence embeddings when no gated read-out will be asked for."""
        if len(seekers) != len(responses):
            raise ValueError(f"{len(seekers)} seeker posts but {len(responses)} responses")
        to_run = [i for i in range(len(seekers)) if responses[i] and responses[i].strip()]
        if not to_run:
            return ViewOutputs(len(seekers), to_run)
        raw, fit, owners = self._view_outputs([seekers[i] or "" for i in to_run], [responses[i] for i in to_run],
                                              batch_size or self.batch_size, gated)
        return ViewOutputs(len(seekers), to_run, raw, fit, owners)


@dataclass(frozen=True)
class ViewOutputs:
    """Level logits (mechanisms, views, levels) and fits-the-post logits (views,) of the non-empty
    pairs `to_run` among `n`, and the pair (index into `to_run`) each view belongs to."""

    n: int
    to_run: list[int]
    raw: np.ndarray | None = None
    fit: np.ndarray | None = None
    owners: list[int] | None = None

    def read_out(self, gate: bool, offsets) -> EmpathyScores:
        """Whole-reply levels and probabilities with the gate on or off and these decision offsets
        (mechanisms, levels); an empty response scores EMPTY_RESPONSE_PROBABILITIES."""
        from empeval.windows import combine_views

        probabilities = np.zeros((len(MECHANISMS), self.n, len(LEVELS)), dtype=np.float64)
        probabilities[:, :, :] = EMPTY_RESPONSE_PROBABILITIES
        levels = np.zeros((len(MECHANISMS), self.n), dtype=np.int64)
        if self.to_run:
            logits = gate_by_fit(self.raw, self.fit, gate) + np.asarray(offsets, dtype=np.float64)[:, None, :]
            for m_index in range(len(MECHANISMS)):
                lv, pr = combine_views(logits[m_index], self.owners, len(self.to_run))
                levels[m_index, self.to_run] = lv
                probabilities[m_index, self.to_run] = pr
        return EmpathyScores(
            levels={m: levels[k].tolist() for k, m in enumerate(MECHANISMS)},
            probabilities={m: probabilities[k].round(6).tolist() for k, m in enumerate(MECHANISMS)},
        )


def load(path: str | os.PathLike = "artifacts/empeval", batch_size: int = 64, int8: bool = False) -> Evaluator:
    """The trained evaluator in `path` (see `empeval.artifact` for the layout), ready to score.

    `int8=True` quantises the Linear layers to int8 (dynamic quantisation, CPU): faster, but its
    levels may differ from fp32 on a few pairs; docs/evaluator.md gives the measured agreement."""
    model, tokenizer, settings = read_artifact(path)
    if int8:
        from torch.ao.quantization import quantize_dynamic

        model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return Evaluator(model, tokenizer, settings, batch_size=batch_size)
