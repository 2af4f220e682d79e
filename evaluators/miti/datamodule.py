"""AnnoMI therapist turns as a LightningDataModule: frozen MiniLM features of (client turn,
therapist turn) pairs (`miti.features`), split by transcript (`miti.labels.split_transcripts`).
Features are computed once and cached in ``cache_dir`` under a hash of what they are computed from
(data, backbone, max_length, layers, the turns of each side), so a resumed run, or a run that
changes only the head's training, skips them."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import AutoModel, AutoTokenizer

from miti.features import pair_features
from miti.labels import LABELS, SPLIT_SIDES, load_labelled_turns, split_transcripts

LABEL_INDEX = {label: index for index, label in enumerate(LABELS)}


class TurnDataModule(L.LightningDataModule):
    """``cfg``: a :class:`miti.config.TrainConfig`; ``cache_dir``: where features are cached."""

    def __init__(self, cfg, cache_dir: Path, *, progress: bool = True):
        super().__init__()
        self.cfg, self.cache_dir, self.progress = cfg, Path(cache_dir), progress
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model.backbone)
        self.encoder = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, TensorDataset] = {}
        self.split: dict[str, list[str]] = {}

    def prepare_data(self) -> None:
        load_labelled_turns(self.cfg.data.data_dir)  # fails early, naming the file, when data is missing

    def _features(self) -> dict[str, np.ndarray]:
        from therapy_align.store import digest

        m = self.cfg.model
        made_from = {"data": self.cfg.data, "backbone": m.backbone, "max_length": m.max_length, "layers": m.layers,
                     "seed": self.cfg.train.seed, "ids": {side: list(f["id"]) for side, f in self.frames.items()}}
        cache = self.cache_dir / f"features-{digest(made_from)}.npz"
        if cache.is_file():
            with np.load(cache) as stored:
                return {side: stored[side] for side in SPLIT_SIDES}
        from tqdm.auto import tqdm

        self.encoder = AutoModel.from_pretrained(m.backbone)
        total = sum(len(frame) for frame in self.frames.values())
        with tqdm(total=total, desc="MiniLM features", disable=not self.progress) as bar:
            features = {side: pair_features(self.encoder, self.tokenizer, list(frame["client"]), list(frame["therapist"]),
                                            max_length=m.max_length, layers=m.layers, on_progress=bar.update)
                        for side, frame in self.frames.items()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.stem}.tmp.npz")
        np.savez(tmp, **features)
        tmp.replace(cache)  # a kill never leaves a half-written cache
        return features

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        data = self.cfg.data
        turns = load_labelled_turns(data.data_dir)
        self.split = split_transcripts(turns, seed=data.split_seed, dev_fraction=data.dev_fraction)
        for side in SPLIT_SIDES:
            frame = turns[turns["transcript_id"].isin(self.split[side])]
            if side == "train" and data.max_train_turns:
                frame = frame.sample(n=min(data.max_train_turns, len(frame)), random_state=self.cfg.train.seed)
            if side != "train" and data.max_eval_turns:
                frame = frame.head(data.max_eval_turns)
            self.frames[side] = frame.reset_index(drop=True)
        for side, features in self._features().items():
            labels = self.frames[side]["label"].map(LABEL_INDEX).to_numpy(dtype=np.int64)
            self.datasets[side] = TensorDataset(torch.tensor(features), torch.from_numpy(labels))

    @property
    def n_features(self) -> int:
        return int(self.datasets["train"].tensors[0].shape[1])

    def train_label_counts(self) -> np.ndarray:
        """(1, n_labels) counts on the training side: EMP-EVAL's class-weight helper takes one row per head."""
        return np.bincount(self.datasets["train"].tensors[1].numpy(), minlength=len(LABELS))[None, :]

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.cfg.train.seed)
        return DataLoader(self.datasets["train"], batch_size=self.cfg.train.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["dev"], batch_size=1024)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=1024)
