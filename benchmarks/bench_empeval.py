"""EMP-EVAL scoring speed: length-sorted, dynamically padded batches of 64 vs one pair at a time
vs batches padded to the full window, against this machine's measured fp32 matmul ceiling;
optionally int8 (dynamic quantisation of the Linear layers) with its level agreement with fp32.

All arms score the same EPITOME pairs (their real length distribution; long replies are read in
windows, exactly as `empeval.load(...).score` does) with the same model, in alternating rounds so
that load from other processes hits them alike; the best round of each is reported. One forward
pass scores all three mechanisms, so pairs/s is for all three.

FLOPs per pair: 2 N T + 4 L d T^2 per view (N = encoder weights used in matrix multiplies, T =
tokens of the view, L layers, d hidden size), summed over the views of the pair (one view unless
the reply is longer than the window). The ceiling is the best of 7 rounds of fp32 1024^3 matrix
products, on CPU time, with the same number of threads.

Two clocks: wall time, and this process's CPU time. On a shared, busy machine the wall figures
mostly measure the other jobs; with --threads 1 the CPU-time figure approximates what one idle
core does, and is the one to compare between runs.

    python benchmarks/bench_empeval.py [--model artifacts/empeval] [--pairs 256] [--rounds 2] [--int8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def matmul_gflops(n: int = 1024, repeats: int = 7) -> float:
    """Best fp32 n^3 matrix product rate, on this process's CPU time (as the CPU-time arms)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(4):
            a @ b
        best = min(best, (time.process_time() - start) / 4)
    return 2 * n**3 / best / 1e9


def flops_of_views(model, views) -> float:
    """Forward FLOPs of the encoder over these views (see the module docstring)."""
    config = model.encoder.config
    d, layers, ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    weights = layers * (4 * d * d + 2 * d * ff)
    return float(sum(2 * weights * len(v["input_ids"]) + 4 * layers * d * len(v["input_ids"]) ** 2 for v in views))


def run(model: str = "artifacts/empeval", pairs: int = 256, batch_size: int = 64, rounds: int = 2,
        threads: int = 0, int8: bool = False) -> dict:
    """The benchmark's results as a dict (also what `--json` writes)."""
    import torch

    import empeval
    from empeval.epitome_data import load_epitome
    from empeval.windows import encode_views

    if threads:
        torch.set_num_threads(threads)
    evaluator = empeval.load(model, batch_size=batch_size)
    frame = load_epitome().sample(n=pairs, random_state=0)  # the same pairs in every arm
    seekers, responses = frame["seeker_post"].tolist(), frame["response_post"].tolist()
    views, _ = encode_views(evaluator.tokenizer, seekers, responses, evaluator.max_length)
    flops_per_pair = flops_of_views(evaluator.model, views) / len(seekers)
    evaluator.score(seekers[:8], responses[:8])  # warm-up

    def padded_to_window():
        # the same views, every batch padded to max_length: what dynamic padding saves
        tokenizer = evaluator.tokenizer
        for start in range(0, len(views), batch_size):
            batch = tokenizer.pad(views[start : start + batch_size], padding="max_length",
                                  max_length=evaluator.max_length, return_tensors="pt")
            with torch.inference_mode():
                evaluator.model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    arms = {
        "batched": lambda: evaluator.score(seekers, responses),
        "one_at_a_time": lambda: [evaluator.score([s], [r]) for s, r in zip(seekers, responses)],
        "padded_to_window": padded_to_window,
    }
    int8_evaluator = None
    if int8:
        int8_evaluator = empeval.load(model, batch_size=batch_size, int8=True)
        arms["int8_batched"] = lambda: int8_evaluator.score(seekers, responses)

    from empeval.fit import PostFit

    sentence_encoder = PostFit().encoder  # the process-wide encoder of the cosine gate, shared by both evaluators

    def timed(arm) -> tuple[float, float]:
        sentence_encoder.clear_memo()  # every arm pays for its own sentence embeddings
        wall, cpu = time.perf_counter(), time.process_time()
        arm()
        return len(seekers) / (time.perf_counter() - wall), len(seekers) / max(time.process_time() - cpu, 1e-9)

    rates = {arm: [] for arm in arms}
    for round_index in range(rounds):
        for arm, call in arms.items():
            rates[arm].append(timed(call))
        print(f"round {round_index + 1}: " + ", ".join(
            f"{arm} {rates[arm][-1][0]:.1f} pairs/s wall, {rates[arm][-1][1]:.1f} pairs/CPU-s" for arm in arms
        ), flush=True)
    best = {arm: max(r[0] for r in values) for arm, values in rates.items()}
    best_cpu = {arm: max(r[1] for r in values) for arm, values in rates.items()}
    ceiling = matmul_gflops()
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    result = {
        "batched_pairs_per_s": round(best["batched"], 1),
        "one_at_a_time_pairs_per_s": round(best["one_at_a_time"], 1),
        "padded_to_window_pairs_per_s": round(best["padded_to_window"], 1),
        "speedup": round(best["batched"] / best["one_at_a_time"], 2),
        "dynamic_padding_speedup": round(best["batched"] / best["padded_to_window"], 2),
        "batched_pairs_per_cpu_s": round(best_cpu["batched"], 1),
        "one_at_a_time_pairs_per_cpu_s": round(best_cpu["one_at_a_time"], 1),
        "speedup_cpu_time": round(best_cpu["batched"] / best_cpu["one_at_a_time"], 2),
        "flops_per_pair": round(flops_per_pair),
        "views_per_pair": round(len(views) / len(seekers), 3),
        "mean_tokens_per_pair": round(sum(len(v["input_ids"]) for v in views) / len(seekers), 1),
        "matmul_ceiling_gflops": round(ceiling, 1),
        "batched_gflops": round(best_cpu["batched"] * flops_per_pair / 1e9, 2),
        "share_of_ceiling_cpu_time": round(best_cpu["batched"] * flops_per_pair / 1e9 / ceiling, 3),
        "batch_size": batch_size,
        "max_length": evaluator.max_length,
        "pairs": pairs,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {' '.join(load)}",
    }
    if int8_evaluator is not None:
        fp32, q8 = evaluator.score(seekers, responses), int8_evaluator.score(seekers, responses)
        agree = [sum(a == b for a, b in zip(fp32.levels[m], q8.levels[m])) / len(seekers) for m in fp32.levels]
        all_agree = sum(all(fp32.levels[m][i] == q8.levels[m][i] for m in fp32.levels) for i in range(len(seekers)))
        result.update({
            "int8_pairs_per_s": round(best["int8_batched"], 1),
            "int8_pairs_per_cpu_s": round(best_cpu["int8_batched"], 1),
            "int8_speedup_cpu_time": round(best_cpu["int8_batched"] / best_cpu["batched"], 2),
            "int8_level_agreement_per_mechanism": [round(a, 4) for a in agree],
            "int8_pairs_all_levels_agree": round(all_agree / len(seekers), 4),
        })
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/empeval")
    parser.add_argument("--pairs", type=int, default=256, help="pairs scored per round, in each arm")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--int8", action="store_true", help="also time int8 and measure its agreement with fp32")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    result = run(args.model, args.pairs, args.batch_size, args.rounds, args.threads, args.int8)
    print(f"batched {result['batched_pairs_per_s']} pairs/s vs one at a time {result['one_at_a_time_pairs_per_s']} "
          f"pairs/s: {result['speedup']}x wall; {result['batched_pairs_per_cpu_s']} vs "
          f"{result['one_at_a_time_pairs_per_cpu_s']} pairs/CPU-s: {result['speedup_cpu_time']}x; dynamic padding "
          f"{result['dynamic_padding_speedup']}x; {result['flops_per_pair'] / 1e9:.2f} GFLOP/pair, "
          f"{result['batched_gflops']} GFLOP/s = {result['share_of_ceiling_cpu_time']:.0%} of the "
          f"{result['matmul_ceiling_gflops']} GFLOP/s fp32 matmul ceiling")
    print(json.dumps(result, indent=2))
    if args.json:
        from therapy_align.files import atomic_write_json

        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
