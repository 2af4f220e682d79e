"""Time the full AnnoMI data build (both splits, cleaned, chunked, tokenised, labelled).

    .venv/bin/python benchmarks/bench_data_build.py [--repeats 3] [--json out.json]

Target: <= 10 s for both splits on the 2-core CPU machine, so a data change is cheap to check.
Prints each stage, the best of ``--repeats`` runs, and the speed-up from sharing the
per-transcript cache between the two splits (measured side by side in this run).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from therapy_align.data.chat_format import load_tokenizer
from therapy_align.data.dataset_build import BuildConfig, build_dataset
from therapy_align.data.transcripts import _read_annomi


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def measure(repeats: int = 3) -> dict:
    """Both splits built with a shared per-transcript cache vs separately, best of ``repeats``."""
    tokenizer_seconds, tokenizer = timed(load_tokenizer)
    shared, separate = [], []
    for _ in range(repeats):
        cache: dict = {}
        _read_annomi.cache_clear()  # each measured build parses the CSV again
        shared.append(sum(timed(lambda s=s: build_dataset(BuildConfig(split=s), tokenizer=tokenizer, cache=cache))[0] for s in ("annomi80", "full_plus")))
        _read_annomi.cache_clear()
        separate.append(sum(timed(lambda s=s: build_dataset(BuildConfig(split=s), tokenizer=tokenizer))[0] for s in ("annomi80", "full_plus")))
    _, (dataset, stats) = timed(lambda: build_dataset(BuildConfig(split="full_plus"), tokenizer=tokenizer))
    return {
        "tokenizer_load_s": round(tokenizer_seconds, 2), "repeats": repeats,
        "both_splits_shared_cache_s": round(min(shared), 2), "both_splits_separate_s": round(min(separate), 2),
        "ratio_separate_vs_shared": round(min(separate) / min(shared), 2), "target_s": 10.0,
        "full_plus": {k: stats[k] for k in ("chunks", "tokens", "supervised_tokens")},
        "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    result = measure(args.repeats)
    print(f"machine: {result['machine']}, {result['torch_threads']} torch threads")
    print(f"tokenizer load: {result['tokenizer_load_s']:.2f} s")
    print(f"both splits, shared cache (best of {args.repeats}): {result['both_splits_shared_cache_s']:.2f} s  [target <= 10 s]")
    print(f"both splits, built separately (best of {args.repeats}): {result['both_splits_separate_s']:.2f} s")
    print(f"ratio separate/shared: {result['ratio_separate_vs_shared']:.2f}x")
    fp = result["full_plus"]
    print(f"full_plus: {fp['chunks']} chunks, {fp['tokens']} tokens, {fp['supervised_tokens']} supervised")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
