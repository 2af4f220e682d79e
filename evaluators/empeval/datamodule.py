"""EPITOME as a LightningDataModule: tokenised (seeker, response) pairs, split by seeker post."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from empeval.config import TrainConfig
from empeval.epitome_data import SPLITS, load_epitome, rationale_column, rationale_spans, split_by_seeker
from empeval.mechanisms import MECHANISMS

IGNORE = -100  # label / tag not supervised (cross-entropy's ignore_index)


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase, seekers: Sequence[str], responses: Sequence[str], max_length: int
) -> list[dict[str, list[int]]]:
    """Token ids of each pair as the encoder's sentence pair, without padding (done per batch)."""
    encoded = tokenizer(
        list(seekers), list(responses), truncation="longest_first", max_length=max_length, padding=False
    )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{k: encoded[k][i] for k in keys} for i in range(len(seekers))]


def rationale_tags(
    tokenizer: PreTrainedTokenizerBase,
    seekers: Sequence[str],
    responses: Sequence[str],
    rationales: Sequence[Sequence[str]],
    max_length: int,
) -> list[list[list[int]]]:
    """Per pair, per token, per mechanism: 1 if the response token lies inside a rationale span,
    0 for other response tokens, IGNORE for the seeker's tokens and special tokens. Tokenised
    exactly as `encode_pairs` (same truncation), so the tags line up with its input_ids."""
    encoded = tokenizer(
        list(seekers), list(responses), truncation="longest_first", max_length=max_length,
        padding=False, return_offsets_mapping=True,
    )
    tags = []
    for i in range(len(seekers)):
        spans = [rationale_spans(responses[i], rationales[i][m]) for m in range(len(MECHANISMS))]
        row = []
        for sequence, (start, end) in zip(encoded.sequence_ids(i), encoded["offset_mapping"][i]):
            if sequence != 1:
                row.append([IGNORE] * len(MECHANISMS))
            else:
                row.append([int(any(a < end and start < b for a, b in spans[m])) for m in range(len(MECHANISMS))])
        tags.append(row)
    return tags


FIT = len(MECHANISMS)  # column of the fits-the-post label after the three levels


def with_fit(labels: np.ndarray, fits: int) -> np.ndarray:
    return np.concatenate([labels, np.full((len(labels), 1), fits, dtype=labels.dtype)], axis=1)


def mismatch_labels(labels: np.ndarray, level_labels: bool) -> np.ndarray:
    """Labels of responses paired with ANOTHER seeker's post (see TrainConfig.mismatch_fraction):
    fits-the-post 0; levels unsupervised, or with `level_labels` ER unsupervised, a specific
    (level-2) IP or EX -> 0 and a generic (level-1) one kept."""
    out = labels.copy()
    if level_labels:
        out[:, 0] = IGNORE
        for m in (1, 2):
            out[out[:, m] == 2, m] = 0
    else:
        out[:, :] = IGNORE
    return with_fit(out, 0)


def mismatched_rows(sp_ids: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(response rows, seeker rows): `fraction` of `rows`, each re-paired with the seeker post of
    another row of `rows` whose seeker differs. Fixed by the seed."""
    n = int(round(fraction * len(rows)))
    if n == 0 or len(set(sp_ids[rows].tolist())) < 2:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    rng = np.random.default_rng((seed, 7919))
    responses = rng.choice(rows, size=n, replace=False)
    partners = rng.choice(rows, size=n)
    for _ in range(100):  # redraw the few partners that share the response's seeker
        same = sp_ids[partners] == sp_ids[responses]
        if not same.any():
            break
        partners[same] = rng.choice(rows, size=int(same.sum()))
    keep = sp_ids[partners] != sp_ids[responses]
    return responses[keep], partners[keep]


class PairDataset(Dataset):
    def __init__(self, features: list[dict[str, list[int]]], labels: np.ndarray | None = None):
        self.features = features
        self.labels = labels  # (n, 3) levels in MECHANISMS order (IGNORE = unsupervised), or None

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
        tags = [item.pop("rationale_tags") for item in items] if "rationale_tags" in items[0] else None
        batch = self.tokenizer.pad(items, padding="longest", return_tensors="pt")
        batch = dict(batch)
        if labels is not None:
            batch["labels"] = torch.as_tensor(np.stack(labels), dtype=torch.long)
        if tags is not None:
            width = batch["input_ids"].shape[1]
            padded = torch.full((len(tags), width, len(MECHANISMS)), IGNORE, dtype=torch.long)
            for i, row in enumerate(tags):
                if row:
                    # tokenizer.pad pads on the tokenizer's side (right for BERT-style encoders)
                    if self.tokenizer.padding_side == "left":
                        padded[i, width - len(row):] = torch.as_tensor(row)
                    else:
                        padded[i, : len(row)] = torch.as_tensor(row)
            batch["rationale_tags"] = padded
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
        config = self.config
        self.frame = load_epitome(config.data_dir)
        self.split_rows = split_by_seeker(self.frame["sp_id"], seed=config.data_split_seed)
        if config.train_fraction < 1.0:  # a slice for exploration runs
            train = self.split_rows["train"]
            keep = np.random.default_rng((config.seed, 31)).permutation(len(train))[: max(2, int(len(train) * config.train_fraction))]
            self.split_rows["train"] = np.sort(train[keep])
        labels = with_fit(self.frame[list(MECHANISMS)].to_numpy(), 1)
        seekers = self.frame["seeker_post"].tolist()
        responses = self.frame["response_post"].tolist()
        features = encode_pairs(self.tokenizer, seekers, responses, config.max_length)
        if config.rationale_weight > 0:
            rationales = list(zip(*(self.frame[rationale_column(m)].tolist() for m in MECHANISMS)))
            for feature, tags in zip(features, rationale_tags(self.tokenizer, seekers, responses, rationales, config.max_length)):
                feature["rationale_tags"] = tags
        for split in SPLITS:
            rows = self.split_rows[split]
            self.datasets[split] = PairDataset([features[i] for i in rows], labels[rows])
        # Mismatched pairs (training only): another training seeker's post before the response.
        sp_ids = self.frame["sp_id"].to_numpy()
        answer_rows, seeker_rows = mismatched_rows(sp_ids, self.split_rows["train"], config.mismatch_fraction, config.seed)
        self.n_mismatched = len(answer_rows)
        if self.n_mismatched:
            extra = encode_pairs(
                self.tokenizer, [seekers[i] for i in seeker_rows], [responses[i] for i in answer_rows], config.max_length
            )
            if config.rationale_weight > 0:  # rationale tags are not supervised on mismatched pairs
                for feature in extra:
                    feature["rationale_tags"] = [[IGNORE] * len(MECHANISMS)] * len(feature["input_ids"])
            train = self.datasets["train"]
            self.datasets["train"] = PairDataset(
                train.features + extra, np.concatenate([train.labels, mismatch_labels(labels[answer_rows, :FIT], config.mismatch_level_labels)])
            )

    def split_rp_ids(self) -> dict[str, list[str]]:
        """rp_ids of each split, in row order (EPITOME repeats a few pairs; repeats stay together)."""
        return {s: self.frame["rp_id"].iloc[rows].tolist() for s, rows in self.split_rows.items()}

    def train_level_counts(self) -> np.ndarray:
        """(3 mechanisms, 3 levels) counts on the training split, for class weights."""
        labels = self.frame[list(MECHANISMS)].to_numpy()[self.split_rows["train"]]  # matched pairs only
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
