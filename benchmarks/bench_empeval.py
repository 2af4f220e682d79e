"""EMP-EVAL scoring speed: length-sorted, dynamically padded batches vs one pair at a time.

Both modes score the same EPITOME pairs (their real length distribution) with the same model, in
alternating rounds so that load from other processes hits both alike; the best round of each is
reported. One forward pass scores all three mechanisms, so pairs/s is for all three.

Two clocks: wall time, and this process's CPU time. On a shared, busy machine the wall figures
mostly measure the other jobs; with --threads 1 the CPU-time figure approximates what one idle
core does, and is the one to compare between runs.

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

    def timed(run) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        return len(seekers) / (time.perf_counter() - wall), len(seekers) / (time.process_time() - cpu)

    modes = {
        "batched": lambda: evaluator.score(seekers, responses),
        "one_at_a_time": lambda: [evaluator.score([s], [r]) for s, r in zip(seekers, responses)],
    }
    rates = {mode: [] for mode in modes}
    for round_index in range(args.rounds):
        for mode, run in modes.items():
            rates[mode].append(timed(run))
        print(f"round {round_index + 1}: " + ", ".join(
            f"{mode} {rates[mode][-1][0]:.1f} pairs/s wall, {rates[mode][-1][1]:.1f} pairs/CPU-s" for mode in modes
        ), flush=True)
    best = {mode: max(r[0] for r in values) for mode, values in rates.items()}
    best_cpu = {mode: max(r[1] for r in values) for mode, values in rates.items()}
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    result = {
        "batched_pairs_per_s": round(best["batched"], 1),
        "one_at_a_time_pairs_per_s": round(best["one_at_a_time"], 1),
        "speedup": round(best["batched"] / best["one_at_a_time"], 2),
        "batched_pairs_per_cpu_s": round(best_cpu["batched"], 1),
        "one_at_a_time_pairs_per_cpu_s": round(best_cpu["one_at_a_time"], 1),
        "speedup_cpu_time": round(best_cpu["batched"] / best_cpu["one_at_a_time"], 2),
        "batch_size": args.batch_size,
        "max_length": evaluator.max_length,
        "pairs": args.pairs,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {' '.join(load)}",
    }
    print(f"batched {result['batched_pairs_per_s']} pairs/s vs one at a time "
          f"{result['one_at_a_time_pairs_per_s']} pairs/s: {result['speedup']}x wall; "
          f"{result['batched_pairs_per_cpu_s']} vs {result['one_at_a_time_pairs_per_cpu_s']} pairs/CPU-s: "
          f"{result['speedup_cpu_time']}x (targets: >= 5x and >= 300 pairs/s)")
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
