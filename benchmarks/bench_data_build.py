"""Time the full AnnoMI data build (both splits, cleaned, chunked, tokenised, labelled).

    .venv/bin/python benchmarks/bench_data_build.py [--repeats 3]

Target (issue 2): <= 10 s for both splits on the 2-core CPU machine. Prints each stage, the
best of ``--repeats`` runs, and the speed-up from sharing the per-transcript cache between
the two splits (measured side by side in this run).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from therapy_align.data.chat_format import load_tokenizer
from therapy_align.data.dataset_build import BuildConfig, build_dataset
from therapy_align.data.transcripts import _read_annomi


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tokenizer_seconds, tokenizer = timed(load_tokenizer)
    shared, separate = [], []
    for _ in range(args.repeats):
        cache: dict = {}
        _read_annomi.cache_clear()  # each measured build parses the CSV again
        shared.append(sum(timed(lambda s=s: build_dataset(BuildConfig(split=s), tokenizer=tokenizer, cache=cache))[0] for s in ("annomi80", "full_plus")))
        _read_annomi.cache_clear()
        separate.append(sum(timed(lambda s=s: build_dataset(BuildConfig(split=s), tokenizer=tokenizer))[0] for s in ("annomi80", "full_plus")))
    _, (dataset, stats) = timed(lambda: build_dataset(BuildConfig(split="full_plus"), tokenizer=tokenizer))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"tokenizer load: {tokenizer_seconds:.2f} s")
    print(f"both splits, shared cache (best of {args.repeats}): {min(shared):.2f} s  [target <= 10 s]")
    print(f"both splits, built separately (best of {args.repeats}): {min(separate):.2f} s")
    print(f"ratio separate/shared: {min(separate) / min(shared):.2f}x")
    print(f"full_plus: {stats['chunks']} chunks, {stats['tokens']} tokens, {stats['supervised_tokens']} supervised")


if __name__ == "__main__":
    main()
