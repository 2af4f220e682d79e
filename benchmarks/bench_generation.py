"""Batched generation vs one prompt at a time, tiny Llama-2 on this machine, side by side.

    .venv/bin/python benchmarks/bench_generation.py --threads 1      # 32 inputs, 64 new tokens
    .venv/bin/python benchmarks/bench_generation.py --json out.json  # also write the results

Both modes run the same code path (`therapy_align.evaluation.generation.generate_batch`: chat-template
prompts, left padding, KV cache, greedy) on the same inputs from the evaluation set with the
"new" system prompt; only the batch size differs. Tokens/s counts generated tokens up to each
response's end-of-sequence (padding after an early stop is not counted). The two modes alternate
for ``--repeats`` rounds so that load from other processes hits both alike; the best round of
each is reported, with the ratio. ``benchmarks/run_all.py`` writes the result into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from therapy_align.data.chat_format import load_tokenizer
from therapy_align.data.system_prompts import get_system_prompt
from therapy_align.evaluation.generation import GenerationSpec, generate_batch, prompt_ids, read_inputs
from therapy_align.paths import resolve_data_dir
from therapy_align.training.tiny_model import build_tiny_model


def run(model, tokenizer, prompts, batch_size: int, max_new_tokens: int) -> tuple[int, float]:
    settings = GenerationSpec(batch_size=batch_size, max_new_tokens=max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # as generate_file does
    tokens = 0
    start = time.perf_counter()
    for offset in range(0, len(order), batch_size):
        batch = [prompts[i] for i in order[offset : offset + batch_size]]
        tokens += sum(count for _, count in generate_batch(model, tokenizer, batch, settings))
    return tokens, time.perf_counter() - start


def machine() -> str:
    from run_all import machine as machine_info  # benchmarks/ is on the path when run as a script

    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({torch.get_num_threads()} threads), "
            f"load avg {load:.1f}")


def measure(n: int = 32, batch_size: int = 32, max_new_tokens: int = 64, repeats: int = 2, threads: int = 0,
            inputs: Path | None = None) -> dict:
    """One prompt at a time vs batched, alternating rounds, best round of each."""
    if threads:
        torch.set_num_threads(threads)
    tokenizer = load_tokenizer()
    model = build_tiny_model(seed=0).eval()
    system = get_system_prompt("new")
    path = inputs or resolve_data_dir() / "eval_inputs" / "reddit_mental_health_1000.jsonl"
    records = read_inputs(path, limit=n).records
    prompts = [prompt_ids(tokenizer, system, r.text) for r in records]
    run(model, tokenizer, prompts[:2], 2, 4)  # warm-up
    best: dict[str, tuple[int, float]] = {}
    for _ in range(repeats):
        for name, size in (("one_at_a_time", 1), ("batched", batch_size)):
            tokens, seconds = run(model, tokenizer, prompts, size, max_new_tokens)
            if name not in best or tokens / seconds > best[name][0] / best[name][1]:
                best[name] = (tokens, seconds)
    (t1, s1), (t2, s2) = best["one_at_a_time"], best["batched"]
    return {
        "prompts": len(prompts), "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "repeats": repeats,
        "one_at_a_time_tokens_per_s": round(t1 / s1, 1), "one_at_a_time_s": round(s1, 2),
        "batched_tokens_per_s": round(t2 / s2, 1), "batched_s": round(s2, 2),
        "ratio_batched_vs_one": round((t2 / s2) / (t1 / s1), 2), "target_ratio": 5.0,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path)
    parser.add_argument("--n", type=int, default=32, help="prompts")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    r = measure(args.n, args.batch_size, args.max_new_tokens, args.repeats, args.threads, args.inputs)
    print(f"{r['prompts']} prompts (mean {r['mean_prompt_tokens']:.0f} prompt tokens), {r['max_new_tokens']} new "
          f"tokens max, greedy, tiny Llama-2 (~4M params, 32k vocab); {r['machine']}")
    print(f"   one at a time: {r['one_at_a_time_tokens_per_s']:8.1f} tok/s ({r['one_at_a_time_s']:.2f} s)")
    print(f"  batched ({r['batch_size']:>3}): {r['batched_tokens_per_s']:8.1f} tok/s ({r['batched_s']:.2f} s)")
    print(f"           ratio: {r['ratio_batched_vs_one']:.1f}x (target >= 5x)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
