"""EMP-EVAL scoring speed: length-sorted, dynamically padded batches vs one pair at a time.

Both modes score the same EPITOME pairs (their real length distribution) with the same model, in
alternating rounds so that load from other processes hits both alike; the best round of each is
reported. One forward pass scores all three mechanisms, so pairs/s is for all three.

    python benchmarks/bench_empeval.py [--model artifacts/empeval] [--pairs 256] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/empeval")
    parser.add_argument("--pairs", type=int, default=256, help="pairs scored per round, in each mode")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import torch

    import empeval
    from empeval.epitome_data import load_epitome

    if args.threads:
        torch.set_num_threads(args.threads)
    evaluator = empeval.load(args.model, batch_size=args.batch_size)
    frame = load_epitome().sample(n=args.pairs, random_state=0)  # the same pairs in both modes
    seekers, responses = frame["seeker_post"].tolist(), frame["response_post"].tolist()
    evaluator.score(seekers[:8], responses[:8])  # warm-up

    def batched() -> float:
        start = time.perf_counter()
        evaluator.score(seekers, responses)
        return len(seekers) / (time.perf_counter() - start)

    def one_at_a_time() -> float:
        start = time.perf_counter()
        for seeker, response in zip(seekers, responses):
            evaluator.score([seeker], [response])
        return len(seekers) / (time.perf_counter() - start)

    rates = {"batched": [], "one_at_a_time": []}
    for round_index in range(args.rounds):
        rates["batched"].append(batched())
        rates["one_at_a_time"].append(one_at_a_time())
        print(f"round {round_index + 1}: batched {rates['batched'][-1]:.1f} pairs/s, "
              f"one at a time {rates['one_at_a_time'][-1]:.1f} pairs/s", flush=True)
    best = {mode: max(values) for mode, values in rates.items()}
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    result = {
        "batched_pairs_per_s": round(best["batched"], 1),
        "one_at_a_time_pairs_per_s": round(best["one_at_a_time"], 1),
        "speedup": round(best["batched"] / best["one_at_a_time"], 2),
        "batch_size": args.batch_size,
        "max_length": evaluator.max_length,
        "pairs": args.pairs,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {' '.join(load)}",
    }
    print(f"batched {result['batched_pairs_per_s']} pairs/s vs one at a time "
          f"{result['one_at_a_time_pairs_per_s']} pairs/s: {result['speedup']}x "
          "(targets: >= 5x and >= 300 pairs/s)")
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
