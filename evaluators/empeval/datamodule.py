"""EPITOME as a LightningDataModule: tokenised (seeker, response) pairs, split by seeker post."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from empeval.config import TrainConfig
from empeval.epitome_data import SPLITS, load_epitome, split_by_seeker
from empeval.mechanisms import MECHANISMS


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase, seekers: Sequence[str], responses: Sequence[str], max_length: int
) -> list[dict[str, list[int]]]:
    """Token ids of each pair as the encoder's sentence pair, without padding (done per batch)."""
    encoded = tokenizer(
        list(seekers), list(responses), truncation="longest_first", max_length=max_length, padding=False
    )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{k: encoded[k][i] for k in keys} for i in range(len(seekers))]


class PairDataset(Dataset):
    def __init__(self, features: list[dict[str, list[int]]], labels: np.ndarray | None = None):
        self.features = features
        self.labels = labels  # (n, 3) levels in MECHANISMS order, or None when scoring

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.features[index])
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


class PairCollator:
    """Pads a batch to its own longest pair (dynamic padding)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        labels = [item.pop("labels") for item in items] if "labels" in items[0] else None
        batch = self.tokenizer.pad(items, padding="longest", return_tensors="pt")
        batch = dict(batch)
        if labels is not None:
            batch["labels"] = torch.as_tensor(np.stack(labels), dtype=torch.long)
        return batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Random batches of similar lengths: shuffle, sort within chunks of 50 batches, shuffle the
    batches. Less padding per batch, hence faster epochs on CPU, with batches still random."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, chunk_batches: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.chunk = batch_size * chunk_batches
        self.epoch = 0

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.chunk):
            chunk = order[start : start + self.chunk]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for index in rng.permutation(len(batches)):
            yield batches[index]


class EpitomeDataModule(L.LightningDataModule):
    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(config.backbone)
        self.datasets: dict[str, PairDataset] = {}
        self.split_rows: dict[str, np.ndarray] = {}

    def prepare_data(self) -> None:
        load_epitome(self.config.data_dir)  # fails early, with the path, when data is missing

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.frame = load_epitome(self.config.data_dir)
        self.split_rows = split_by_seeker(self.frame["sp_id"], seed=self.config.seed)
        labels = self.frame[list(MECHANISMS)].to_numpy()
        features = encode_pairs(
            self.tokenizer, self.frame["seeker_post"], self.frame["response_post"], self.config.max_length
        )
        for split in SPLITS:
            rows = self.split_rows[split]
            self.datasets[split] = PairDataset([features[i] for i in rows], labels[rows])

    def split_rp_ids(self) -> dict[str, list[str]]:
        """rp_ids of each split, in row order (EPITOME repeats a few pairs; repeats stay together)."""
        return {s: self.frame["rp_id"].iloc[rows].tolist() for s, rows in self.split_rows.items()}

    def train_level_counts(self) -> np.ndarray:
        """(3 mechanisms, 3 levels) counts on the training split, for class weights."""
        labels = self.datasets["train"].labels
        return np.stack([np.bincount(labels[:, m], minlength=3) for m in range(len(MECHANISMS))])

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        collate = PairCollator(self.tokenizer)
        if shuffle:
            lengths = [len(f["input_ids"]) for f in dataset.features]
            sampler = LengthGroupedBatchSampler(lengths, self.config.batch_size, self.config.seed)
            return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=self.config.num_workers)
        return DataLoader(
            dataset, batch_size=self.config.batch_size * 4, collate_fn=collate, num_workers=self.config.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
