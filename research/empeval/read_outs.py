"""The shared shape of the commands that read out trained artifacts' own test splits
(`research.empeval.epitome_protocol`, `research.empeval.ceiling`): one or more `--model DIR`, an optional `--json`
file written atomically (its path checked before any scoring), a Markdown table on stdout; and
the ungated test-split outputs that `research.empeval.ceiling` and `research.empeval.learnability` read."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

import numpy as np


def read_out_command(argv: list[str] | None, description: str, read_one: Callable[[Path, argparse.Namespace], dict],
                     markdown: Callable[[list[dict]], str], *,
                     add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                     refuse: Callable[[argparse.Namespace], str | None] | None = None) -> list[dict]:
    """`read_one(model, args)` per `--model`. `add_arguments` adds a command's own options;
    `refuse(args)` returns why they cannot run (a usage error before any work) or None."""
    from therapy_align.files import atomic_write_json, check_output_path

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, action="append", required=True, help="an artifact (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the read-outs here")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    problem = refuse(args) if refuse is not None else None
    if problem:
        parser.error(problem)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = check_output_path(args.json, kind="file") if args.json else None
    results = [read_one(model, args) for model in args.model]
    if out is not None:
        atomic_write_json(out, results)
    print(markdown(results))
    return results


def ungated_test_outputs(model: Path, data_dir=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An artifact's own test split scored once: the ungated view log-probabilities (mechanisms,
    views, levels) of its whole replies, the pair each view belongs to, and the labels (pairs,
    mechanisms). Ungated: what the level heads know, before the fits-the-post gate and offsets."""
    from empeval.evaluator import gate_by_fit, load
    from empeval.mechanisms import MECHANISMS
    from empeval.probe import test_split_rows
    from empeval.windows import encode_views

    evaluator = load(model)  # checked whole before any work
    rows = test_split_rows(model, data_dir)
    views, owners = encode_views(evaluator.tokenizer, rows["seeker_post"].tolist(), rows["response_post"].tolist(),
                                 evaluator.max_length)
    raw, fit = evaluator.raw_view_outputs(views, evaluator.batch_size)
    return gate_by_fit(raw, fit, False), owners, rows[list(MECHANISMS)].to_numpy(copy=True)
