"""EPITOME pairs with their three mechanism labels, and the seeded split by seeker post."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from therapy_align.errors import UserError

from empeval.mechanisms import EPITOME_FILES, LEVELS, MECHANISMS

PAIR_COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post")
SPLITS = ("train", "dev", "test")


class EpitomeFormatError(UserError, ValueError):
    """An EPITOME file is not what the loader expects; the message names file, row and field."""


def load_epitome(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per (seeker post, response) pair with a 0/1/2 level column per mechanism.

    The three files hold the same pairs in the same order; this is checked row by row rather
    than joined on rp_id, because some rp_ids occur twice.
    """
    from therapy_align.paths import data_file

    merged: pd.DataFrame | None = None
    for mechanism in MECHANISMS:
        path = data_file(EPITOME_FILES[mechanism], data_dir)
        frame = pd.read_csv(path, dtype={"sp_id": str, "rp_id": str}, keep_default_na=False)
        missing = [c for c in (*PAIR_COLUMNS, "level") if c not in frame.columns]
        if missing:
            raise EpitomeFormatError(f"{path}: missing column(s) {missing}")
        levels = pd.to_numeric(frame["level"], errors="coerce")
        bad = levels.isna() | ~levels.isin(LEVELS)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            # Data rows counted from 1 after the header (quoted posts may span several lines).
            raise EpitomeFormatError(
                f"{path}: row {row + 1}, field 'level': '{frame['level'].iloc[row]}' is not one of {LEVELS}"
            )
        if merged is None:
            merged = frame[list(PAIR_COLUMNS)].copy()
        else:
            if len(frame) != len(merged):
                raise EpitomeFormatError(f"{path}: {len(frame)} rows, expected {len(merged)} like the other files")
            same = (merged["sp_id"].to_numpy() == frame["sp_id"].to_numpy()) & (
                merged["rp_id"].to_numpy() == frame["rp_id"].to_numpy()
            )
            if not same.all():
                row = int(np.flatnonzero(~same)[0])
                raise EpitomeFormatError(
                    f"{path}: row {row + 1}, fields 'sp_id'/'rp_id' differ from the other EPITOME files"
                )
        merged[mechanism] = levels.astype(int).to_numpy()
        # Spans of the response that carry the mechanism, '|'-separated (EPITOME's format).
        merged[rationale_column(mechanism)] = (
            frame["rationales"].astype(str).to_numpy() if "rationales" in frame.columns else ""
        )
    assert merged is not None
    return merged.reset_index(drop=True)


def rationale_column(mechanism: str) -> str:
    return f"rationales_{mechanism}"


def rationale_spans(response: str, rationales: str) -> list[tuple[int, int]]:
    """Character spans of `response` covered by the '|'-separated rationale strings (a string not
    found verbatim, as in ~8% of EPITOME's annotations, is skipped)."""
    spans = []
    for part in rationales.split("|"):
        part = part.strip()
        if not part:
            continue
        start = response.find(part)
        if start >= 0:
            spans.append((start, start + len(part)))
    return spans


@dataclass(frozen=True, kw_only=True)
class SplitFractions:
    train: float = 0.75
    dev: float = 0.05
    test: float = 0.20  # EPITOME's 75/5/20


def split_by_seeker(
    sp_ids: Sequence[str], seed: int, fractions: SplitFractions = SplitFractions()
) -> dict[str, np.ndarray]:
    """Row indices of train/dev/test: distinct seeker posts are shuffled with `seed` and cut by
    the fractions, so all responses to one seeker post land in the same split."""
    sp_ids = np.asarray(list(sp_ids), dtype=object)
    unique = np.array(sorted(set(sp_ids.tolist())), dtype=object)  # sorted: independent of row order
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = round(fractions.train * len(unique))
    n_dev = round(fractions.dev * len(unique))
    split_of_seeker = {}
    for rank, idx in enumerate(order):
        split_of_seeker[unique[idx]] = 0 if rank < n_train else 1 if rank < n_train + n_dev else 2
    codes = np.array([split_of_seeker[s] for s in sp_ids], dtype=np.int64)
    return {name: np.flatnonzero(codes == code) for code, name in enumerate(SPLITS)}
