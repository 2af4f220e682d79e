"""Batched generation vs one prompt at a time, tiny Llama-2 on this machine, side by side.

    .venv/bin/python benchmarks/bench_generation.py --threads 1      # 32 inputs, 64 new tokens
    .venv/bin/python benchmarks/bench_generation.py --write-docs     # also update docs/benchmarks.md

Both modes run the same code path (`therapy_align.evaluation.generation.generate_batch`: chat-template
prompts, left padding, KV cache, greedy) on the same inputs from the evaluation set with the
"new" system prompt; only the batch size differs. Tokens/s counts generated tokens up to each
response's end-of-sequence (padding after an early stop is not counted). The two modes alternate
for ``--repeats`` rounds so that load from other processes hits both alike; the best round of
each is reported, with the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from datetime import date
from pathlib import Path

import torch

from therapy_align.data.chat_format import load_tokenizer
from therapy_align.evaluation.generation import GenerationSettings, generate_batch, prompt_ids, read_inputs
from therapy_align.data.system_prompts import get_system_prompt
from therapy_align.training.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO.parent / "shared" / "data" / "eval_inputs" / "reddit_mental_health_1000.jsonl"
DOCS = REPO / "docs" / "benchmarks.md"


def run(model, tokenizer, prompts, batch_size: int, max_new_tokens: int) -> tuple[int, float]:
    settings = GenerationSettings(batch_size=batch_size, max_new_tokens=max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # as generate_file does
    tokens = 0
    start = time.perf_counter()
    for offset in range(0, len(order), batch_size):
        batch = [prompts[i] for i in order[offset : offset + batch_size]]
        tokens += sum(count for _, count in generate_batch(model, tokenizer, batch, settings))
    return tokens, time.perf_counter() - start


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), load avg {load:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, default=INPUTS)
    parser.add_argument("--n", type=int, default=32, help="prompts")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--write-docs", action="store_true", help="update the ## Generation section of docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    tokenizer = load_tokenizer()
    model = build_tiny_model(seed=0).eval()
    system = get_system_prompt("new")
    records = read_inputs(args.inputs, limit=args.n).records
    prompts = [prompt_ids(tokenizer, system, r.text) for r in records]
    run(model, tokenizer, prompts[:2], 2, 4)  # warm-up

    best: dict[str, tuple[int, float]] = {}
    for _ in range(args.repeats):
        for name, size in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
            tokens, seconds = run(model, tokenizer, prompts, size, args.max_new_tokens)
            if name not in best or tokens / seconds > best[name][0] / best[name][1]:
                best[name] = (tokens, seconds)
    (single_name, (t1, s1)), (batch_name, (t2, s2)) = best.items()
    ratio = (t2 / s2) / (t1 / s1)
    where = machine()
    lines = [
        f"{len(prompts)} prompts (mean {sum(map(len, prompts)) / len(prompts):.0f} prompt tokens), "
        f"{args.max_new_tokens} new tokens max, greedy, tiny Llama-2 (~4M params, 32k vocab); {where}",
        f"{single_name:>16}: {t1:6d} tokens in {s1:7.2f} s = {t1 / s1:8.1f} tok/s",
        f"{batch_name:>16}: {t2:6d} tokens in {s2:7.2f} s = {t2 / s2:8.1f} tok/s",
        f"{'ratio':>16}: {ratio:.1f}x (target >= 5x)",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_docs(args, where, (t1, s1), (t2, s2), ratio, len(prompts))


def write_docs(args, where: str, single, batched, ratio: float, n: int) -> None:
    (t1, s1), (t2, s2) = single, batched
    section = (
        "## Generation\n\n"
        f"`.venv/bin/python benchmarks/bench_generation.py --n {args.n} --batch-size {args.batch_size} "
        f"--max-new-tokens {args.max_new_tokens}" + (f" --threads {args.threads}" if args.threads else "") + "`: the tiny Llama-2 answering {n} evaluation inputs under the "
        "\"new\" system prompt with the project's generation path (chat template, left padding, KV cache, "
        "greedy), one prompt at a time vs batched, alternating rounds, best round of each.\n\n"
        "| machine | one at a time | batched | ratio |\n|---|---|---|---|\n"
        f"| CPU box, {date.today().isoformat()}: {where} | {t1 / s1:.1f} tok/s ({s1:.1f} s) | "
        f"{t2 / s2:.1f} tok/s ({s2:.1f} s) | {ratio:.1f}x |\n\n"
        "Target >= 5x. The tiny model is dominated by per-step overhead (Python, kernel launches, the "
        "32k-vocab head), which batching amortises; on a 7B model on GPU the gain comes from memory "
        "bandwidth instead and grows with the batch until compute-bound.\n\n"
        "On this shared box (load average ~9-11 from other jobs) use `--threads 1`: with torch's default 2 "
        "threads the two threads wait on each other, and the same run measured 14.3 vs 30.4 tok/s (2.1x), "
        "both modes several times slower.\n"
    )
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Benchmarks\n"
    pattern = re.compile(r"^## Generation\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"updated {DOCS} (## Generation)")


if __name__ == "__main__":
    main()
