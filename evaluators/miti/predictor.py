"""Labelling therapist turns with a trained classifier: ``miti.load(path).predict(clients, therapists)``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from miti.artifact import read_artifact
from miti.features import pair_features
from miti.labels import LABELS

# An empty therapist turn carries no MI behaviour: "other" with probability 1, without the model.
EMPTY_TURN_LABEL = "other"


class BehaviourPredictor:
    """The MI-behaviour classifier, ready to label (client turn, therapist turn) pairs."""

    labels = LABELS

    def __init__(self, encoder, head, tokenizer, settings: dict, *, path: str | None = None, batch_size: int = 64):
        self.encoder, self.head, self.tokenizer, self.settings = encoder, head, tokenizer, settings
        self.max_length = int(settings["max_length"])
        self.layers = tuple(int(layer) for layer in settings["layers"])
        self.batch_size = batch_size
        self.path = path

    @torch.inference_mode()
    def predict_proba(self, clients: Sequence[str], therapists: Sequence[str]) -> np.ndarray:
        """(n, len(LABELS)) probabilities, columns in ``LABELS`` order. Long pairs are truncated
        (longest text first) to the training ``max_length``, exactly as in training."""
        if len(clients) != len(therapists):
            raise ValueError(f"{len(clients)} client turns but {len(therapists)} therapist turns")
        probabilities = np.zeros((len(therapists), len(LABELS)))
        probabilities[:, LABELS.index(EMPTY_TURN_LABEL)] = 1.0
        rows = [i for i, text in enumerate(therapists) if text and text.strip()]
        if rows:
            features = pair_features(self.encoder, self.tokenizer, [clients[i] for i in rows],
                                     [therapists[i] for i in rows], max_length=self.max_length, layers=self.layers,
                                     batch_size=self.batch_size)
            logits = self.head(torch.from_numpy(features))
            probabilities[rows] = torch.softmax(logits.float(), -1).numpy()
        return probabilities

    def predict(self, clients: Sequence[str], therapists: Sequence[str]) -> list[str]:
        """One label of ``LABELS`` per therapist turn."""
        return [LABELS[i] for i in self.predict_proba(clients, therapists).argmax(-1)]


def load(path: str | os.PathLike = "artifacts/miti", batch_size: int = 64) -> BehaviourPredictor:
    encoder, head, tokenizer, settings = read_artifact(path)
    return BehaviourPredictor(encoder, head, tokenizer, settings, path=str(path), batch_size=batch_size)
