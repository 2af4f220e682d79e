"""Scoring (seeker, response) pairs with a trained evaluator: `empeval.load(path).score(...)`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from empeval.artifact import read_artifact
from empeval.datamodule import encode_pairs
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


class Evaluator:
    def __init__(self, model, tokenizer, settings: dict, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.max_length = int(settings["max_length"])
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(
        self, seekers: Sequence[str], responses: Sequence[str], batch_size: int | None = None
    ) -> EmpathyScores:
        """Levels and probabilities per mechanism. Batches hold pairs of similar token length and
        are padded only to their own longest pair; pairs over `max_length` tokens are truncated
        (longest text first), exactly as in training."""
        if len(seekers) != len(responses):
            raise ValueError(f"{len(seekers)} seeker posts but {len(responses)} responses")
        batch_size = batch_size or self.batch_size
        n = len(seekers)
        probabilities = np.zeros((len(MECHANISMS), n, len(LEVELS)), dtype=np.float64)
        probabilities[:, :, :] = EMPTY_RESPONSE_PROBABILITIES
        to_run = [i for i in range(n) if responses[i] and responses[i].strip()]
        if to_run:
            features = encode_pairs(
                self.tokenizer, [seekers[i] or "" for i in to_run], [responses[i] for i in to_run], self.max_length
            )
            order = np.argsort([-len(f["input_ids"]) for f in features], kind="stable")
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self.tokenizer.pad([features[j] for j in chunk], padding="longest", return_tensors="pt")
                logits = self.model(
                    batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
                )
                rows = [to_run[j] for j in chunk]
                for m_index, mechanism in enumerate(MECHANISMS):
                    probabilities[m_index, rows] = torch.softmax(logits[mechanism].float(), -1).numpy()
        levels = probabilities.argmax(-1)
        return EmpathyScores(
            levels={m: levels[k].tolist() for k, m in enumerate(MECHANISMS)},
            probabilities={m: probabilities[k].round(6).tolist() for k, m in enumerate(MECHANISMS)},
        )


def load(path: str | os.PathLike = "artifacts/empeval", batch_size: int = 64) -> Evaluator:
    """The trained evaluator in `path` (see `empeval.artifact` for the layout), ready to score."""
    model, tokenizer, settings = read_artifact(path)
    return Evaluator(model, tokenizer, settings, batch_size=batch_size)
