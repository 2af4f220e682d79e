"""Sampled generation: transformers' warpers vs candidate top-p vs candidate top-p over the corpora's vocabulary.

    .venv/bin/python benchmarks/bench_sampling.py                      # Gemma 3 270M, 16 prompts, 256 new tokens
    .venv/bin/python benchmarks/bench_sampling.py --model tiny-base --n 4 --batch-size 4 --max-new-tokens 16 \
        --repeats 1                                                # a smoke run (~10 s)
    .venv/bin/python benchmarks/bench_sampling.py --arms greedy_full,greedy_restricted --max-new-tokens 64

Every arm decodes the same prompts (evaluation inputs under the "new" system prompt, chat template,
left padding, KV cache, stop ids as ``generate_batch`` gives them) with the same seed per batch.
256 new tokens is the paper's reply length (``GenerationSpec.max_new_tokens``): at 24 the prefill of
~290-token prompts dominated and hid what the decoding step costs.

* ``warpers`` (a): ``model.generate`` with transformers' Temperature / TopK / TopP warpers (the last
  sorts the 262k-token row at every step), full vocabulary: the defaults;
* ``candidates`` (b): ``therapy_align.evaluation.sampling.candidate_sampling`` (top-p among the
  ``torch.topk`` candidates), full vocabulary: what ``generate_batch`` does when sampling;
* ``restricted`` (c): (b) with the output head over the corpora's tokens
  (``therapy_align.evaluation.restricted_vocab``, ``GenerationSpec(vocabulary="corpora")``);
* ``greedy_full`` / ``greedy_restricted``: greedy decoding with each head.

The arms alternate for ``--repeats`` rounds, the order rotated each round (best round of each).
New tokens/s count generated tokens up to each reply's stop id. Printed: each arm's rate, the ratios
against (a) (target >= 2x for sampling) and greedy restricted vs full, the kept vocabulary, the
share of greedy replies identical restricted vs full (the promise: identical whenever the full
model's argmax is a kept token at every step, so also how many full replies use only kept tokens),
the share of sampled replies identical (b) vs (a) (all, up to rounding at the top-p cut) and (c)
vs (a), and the two sampling processors alone on one step's logits. Not a test: record the figures
with the machine in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARMS = ("warpers", "candidates", "restricted", "greedy_full", "greedy_restricted")
SAMPLED = ("warpers", "candidates", "restricted")


def decode(model, tokenizer, prompts, spec, arm: str, *, top_k: int = 0) -> tuple[list[list[int]], float]:
    """(rows of new token ids cut at their stop id, seconds in ``generate``) of one arm."""
    import torch

    from therapy_align.evaluation.generation import batch_seed, cut_at_eos, generation_config, left_pad, stop_ids
    from therapy_align.evaluation.restricted_vocab import vocabulary_for
    from therapy_align.evaluation.sampling import candidate_sampling

    sampled = arm in SAMPLED
    spec = replace(spec, do_sample=sampled, vocabulary="corpora" if arm in ("restricted", "greedy_restricted") else "full")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_ids(model, tokenizer)
    rows, seconds = [], 0.0
    for offset in range(0, len(prompts), spec.batch_size):
        ids, mask = left_pad(prompts[offset : offset + spec.batch_size], pad_id)
        config = generation_config(tokenizer, spec)
        config.eos_token_id = stops if len(stops) > 1 else config.eos_token_id
        if sampled and top_k:
            config.top_k = top_k
        processors = None
        if arm in ("candidates", "restricted"):
            config, processors = candidate_sampling(config)
        torch.manual_seed(batch_seed(spec.seed, [str(offset)]))
        with vocabulary_for(model, tokenizer, spec.vocabulary), torch.inference_mode():
            start = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                 logits_processor=processors)
            seconds += time.perf_counter() - start
        rows += [cut_at_eos(row, stops, pad_id) for row in out[:, ids.shape[1] :].tolist()]
    return rows, seconds


def processors_alone(model, tokenizer, prompts, *, top_p: float, top_k: int, repeats: int = 5) -> dict:
    """Milliseconds per call of transformers' warpers and the candidate processor on one step's real logits."""
    import torch
    from transformers import LogitsProcessorList, TopKLogitsWarper, TopPLogitsWarper

    from therapy_align.evaluation.generation import left_pad
    from therapy_align.evaluation.sampling import CandidateTopPWarper

    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :].float()
    warpers = LogitsProcessorList(([TopKLogitsWarper(top_k)] if top_k else []) + [TopPLogitsWarper(top_p)])
    ours = CandidateTopPWarper(top_p=top_p, top_k=top_k)
    best: dict[str, float] = {}
    for name, fn in (("warpers", warpers), ("candidates", ours)) * repeats:
        start = time.perf_counter()
        fn(ids, logits.clone())
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    same = torch.equal(warpers(ids, logits.clone()), ours(ids, logits.clone()))
    return {"rows": logits.shape[0], "vocab": logits.shape[1], "warpers_ms": round(best["warpers"] * 1e3, 1),
            "candidates_ms": round(best["candidates"] * 1e3, 1), "same_scores": same}


def _rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds > 0 else 0.0


def measure(model_ref: str = "gemma-3-270m", n: int = 16, batch_size: int = 16, max_new_tokens: int = 256,
            top_p: float = 0.9, top_k: int = 0, repeats: int = 2, threads: int = 0,
            arms: tuple[str, ...] = ARMS, alone: bool = True) -> dict:
    import torch

    from therapy_align.data.system_prompts import get_system_prompt
    from therapy_align.evaluation.generation import GenerationSpec, prompt_ids, read_inputs
    from therapy_align.evaluation.restricted_vocab import restricted_head
    from therapy_align.paths import resolve_data_dir
    from therapy_align.training.models import load_model_for_inference

    load_before = os.getloadavg()
    if threads:
        torch.set_num_threads(threads)
    model, tokenizer = load_model_for_inference(model_ref, dtype="float32")
    model.eval()
    system = get_system_prompt("new")
    records = read_inputs(resolve_data_dir() / "eval_inputs" / "reddit_mental_health_1000.jsonl", limit=n).records
    prompts = sorted((prompt_ids(tokenizer, system, r.text) for r in records), key=len, reverse=True)
    spec = GenerationSpec(batch_size=batch_size, max_new_tokens=max_new_tokens, do_sample=True, top_p=top_p, seed=0)

    made = time.perf_counter()
    head = restricted_head(model, tokenizer, "corpora")  # the kept ids (cached on disk) and the kept rows, once
    head_s = time.perf_counter() - made
    kept = set(head.kept.tolist())
    for arm in arms:  # warm-up: first-call costs out of the timed rounds
        decode(model, tokenizer, prompts[:2], replace(spec, max_new_tokens=2), arm, top_k=top_k)

    best: dict[str, tuple[int, float]] = {}
    outputs: dict[str, list[list[int]]] = {}
    for round_ in range(repeats):
        for arm in arms[round_ % len(arms):] + arms[: round_ % len(arms)]:
            rows, seconds = decode(model, tokenizer, prompts, spec, arm, top_k=top_k)
            tokens = sum(map(len, rows))
            outputs[arm] = rows
            if arm not in best or _rate(tokens, seconds) > _rate(*best[arm]):
                best[arm] = (tokens, seconds)
            print(f"  round {round_ + 1} {arm:18s} {_rate(tokens, seconds):8.1f} new tok/s ({tokens} tokens, "
                  f"{seconds:.1f} s, load {os.getloadavg()[0]:.1f})", flush=True)

    def same(a: str, b: str) -> str | None:
        if a not in outputs or b not in outputs:
            return None
        return f"{sum(x == y for x, y in zip(outputs[a], outputs[b], strict=True))}/{len(prompts)}"

    def ratio(a: str, b: str) -> float | None:
        if a not in best or b not in best:
            return None
        return round(_rate(*best[a]) / _rate(*best[b]), 2)

    result: dict = {
        "model": model_ref, "prompts": len(prompts), "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "batch_size": batch_size, "max_new_tokens": max_new_tokens, "top_p": top_p, "top_k": top_k, "repeats": repeats,
        "vocabulary": head.out_features, "kept_vocabulary": len(kept), "restricted_head_build_s": round(head_s, 1),
    }
    for arm, (tokens, seconds) in best.items():
        result[f"{arm}_tokens_per_s"] = round(_rate(tokens, seconds), 1)
        result[f"{arm}_s"] = round(seconds, 1)
        result[f"{arm}_tokens"] = tokens
    result.update({
        "ratio_candidates_vs_warpers": ratio("candidates", "warpers"),
        "ratio_restricted_vs_warpers": ratio("restricted", "warpers"),
        "ratio_restricted_vs_candidates": ratio("restricted", "candidates"),
        "ratio_greedy_restricted_vs_full": ratio("greedy_restricted", "greedy_full"),
        "target_ratio": 2.0,
        "identical_sampled_candidates_vs_warpers": same("candidates", "warpers"),
        "identical_sampled_restricted_vs_warpers": same("restricted", "warpers"),
        "identical_greedy_restricted_vs_full": same("greedy_restricted", "greedy_full"),
    })
    if "greedy_full" in outputs:
        full_rows = outputs["greedy_full"]
        all_kept = [all(t in kept for t in row) for row in full_rows]
        result["greedy_full_replies_only_kept_tokens"] = f"{sum(all_kept)}/{len(full_rows)}"
        result["greedy_full_tokens_kept_share"] = round(
            sum(t in kept for row in full_rows for t in row) / max(1, sum(map(len, full_rows))), 4)
        if "greedy_restricted" in outputs:  # the promise, checked: identical where every full argmax is kept
            pairs = [(a, b) for a, b, ok in zip(full_rows, outputs["greedy_restricted"], all_kept, strict=True) if ok]
            result["identical_greedy_where_promised"] = f"{sum(a == b for a, b in pairs)}/{len(pairs)}"
    if "warpers" in outputs:
        rows = outputs["warpers"]
        result["sampled_full_tokens_kept_share"] = round(
            sum(t in kept for row in rows for t in row) / max(1, sum(map(len, rows))), 4)
    if alone and any(arm in SAMPLED for arm in arms):
        result["processors_alone"] = processors_alone(model, tokenizer, prompts[:batch_size], top_p=top_p, top_k=top_k)
    load_after = os.getloadavg()
    result.update({
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"os.getloadavg() {tuple(round(x, 2) for x in load_before)} before, "
                   f"{tuple(round(x, 2) for x in load_after)} after",
    })
    return result


def report(r: dict) -> None:
    print(f"{r['model']}: {r['prompts']} prompts (mean {r['mean_prompt_tokens']:.0f} tokens), batch {r['batch_size']}, "
          f"{r['max_new_tokens']} new tokens max, top_p {r['top_p']}, top_k {r['top_k']}, best of {r['repeats']} "
          f"round(s); {r['torch_threads']} torch threads; {r['machine']}")
    print(f"  kept vocabulary: {r['kept_vocabulary']:,} of {r['vocabulary']:,} tokens "
          f"({r['kept_vocabulary'] / r['vocabulary']:.1%}; head built in {r['restricted_head_build_s']} s)")
    names = {"warpers": "(a) transformers' warpers", "candidates": "(b) candidate top-p",
             "restricted": "(c) candidate top-p + corpora vocab", "greedy_full": "greedy, full vocab",
             "greedy_restricted": "greedy, corpora vocab"}
    for arm, name in names.items():
        if f"{arm}_tokens_per_s" in r:
            print(f"  {name:38s} {r[f'{arm}_tokens_per_s']:8.1f} new tok/s ({r[f'{arm}_tokens']} tokens, {r[f'{arm}_s']} s)")
    for key, label in (("ratio_candidates_vs_warpers", "(b) / (a)"), ("ratio_restricted_vs_warpers", "(c) / (a)"),
                       ("ratio_greedy_restricted_vs_full", "greedy corpora / full")):
        if r.get(key) is not None:
            target = f" (target >= 2x: {'met' if r[key] >= 2 else 'missed'})" if "warpers" in key else ""
            print(f"  ratio {label}: {r[key]:.2f}x{target}")
    for key in ("identical_sampled_candidates_vs_warpers", "identical_sampled_restricted_vs_warpers",
                "identical_greedy_restricted_vs_full", "greedy_full_replies_only_kept_tokens",
                "identical_greedy_where_promised", "greedy_full_tokens_kept_share", "sampled_full_tokens_kept_share"):
        if r.get(key) is not None:
            print(f"  {key.replace('_', ' ')}: {r[key]}")
    if "processors_alone" in r:
        a = r["processors_alone"]
        print(f"  processors alone on {a['rows']} x {a['vocab']} logits: warpers {a['warpers_ms']} ms, "
              f"candidates {a['candidates_ms']} ms (same scores: {a['same_scores']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="a model reference (gemma-3-270m, tiny-base, ...)")
    parser.add_argument("--n", type=int, default=16, help="prompts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="256: the paper's reply length")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--top-k", type=int, default=0, help="0: none, as GenerationSpec samples")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every arm, alternating")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    parser.add_argument("--no-processors-alone", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    arms = tuple(a for a in ns.arms.split(",") if a)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    r = measure(ns.model, ns.n, ns.batch_size, ns.max_new_tokens, ns.top_p, ns.top_k, ns.repeats, ns.threads, arms,
                not ns.no_processors_alone)
    report(r)
    if ns.json:
        ns.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
