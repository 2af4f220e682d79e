"""Frozen cross-encoder features of (client turn, therapist turn) pairs.

The pair is encoded as EMP-EVAL encodes (seeker, response) (`empeval.datamodule.encode_pairs`:
one sequence, longest text truncated first); the tokens of each segment (client: token type 0,
therapist: token type 1) are mean-pooled at each of ``layers`` of the encoder, giving
``2 * len(layers) * hidden`` numbers per pair. The encoder is not fine-tuned: on the shared 2-core
box a fine-tuning step costs ~6 CPU-s per batch of 32 (measured), features cost one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from empeval.datamodule import PairCollator, PairDataset, encode_pairs


def feature_size(hidden_size: int, layers: Sequence[int]) -> int:
    return 2 * len(layers) * hidden_size


@torch.inference_mode()
def pair_features(encoder, tokenizer, clients: Sequence[str], therapists: Sequence[str], *, max_length: int,
                  layers: Sequence[int], batch_size: int = 64,
                  on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(n, feature_size) float32 features, rows in input order."""
    if len(clients) != len(therapists):
        raise ValueError(f"{len(clients)} client turns but {len(therapists)} therapist turns")
    out = np.zeros((len(therapists), feature_size(encoder.config.hidden_size, layers)), dtype=np.float32)
    if not len(therapists):
        return out
    encoded = encode_pairs(tokenizer, [c or "" for c in clients], list(therapists), max_length)
    order = np.argsort([len(e["input_ids"]) for e in encoded], kind="stable")  # less padding per batch
    loader = DataLoader(PairDataset([encoded[i] for i in order]), batch_size=batch_size,
                        collate_fn=PairCollator(tokenizer))
    encoder.eval()
    done = 0
    for batch in loader:
        states = encoder(**batch, output_hidden_states=True).hidden_states
        present = batch["attention_mask"].bool()
        segments = [present & (batch["token_type_ids"] == kind) for kind in (0, 1)]
        pooled = []
        for layer in layers:
            for mask in segments:
                weights = mask.unsqueeze(-1).to(states[layer].dtype)
                pooled.append((states[layer] * weights).sum(1) / weights.sum(1).clamp(min=1.0))
        rows = order[done:done + len(present)]
        out[rows] = torch.cat(pooled, -1).float().numpy()
        done += len(present)
        if on_progress:
            on_progress(len(present))
    return out
