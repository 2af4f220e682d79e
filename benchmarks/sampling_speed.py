"""Sampled generation with transformers' top-p warper vs the candidate top-p processor, side by side.

    .venv/bin/python benchmarks/sampling_speed.py                         # Gemma 3 270M, 16 prompts, 32 new tokens
    .venv/bin/python benchmarks/sampling_speed.py --model tiny-base       # a smoke run
    .venv/bin/python benchmarks/sampling_speed.py --top-k 64 --json out.json

Both arms decode the same prompts (evaluation inputs under the "new" system prompt, chat template,
left padding, KV cache) with the same ``GenerationConfig`` (``therapy_align.evaluation.generation.
generation_config``: ``top_p`` 0.9, temperature 1, top_k 0 as the project's ``GenerationSpec``
sets it, or ``--top-k``) and the same seed per batch:

* ``warpers``: ``model.generate`` with transformers' own TemperatureLogitsWarper / TopKLogitsWarper /
  TopPLogitsWarper (the last sorts the whole vocabulary at every step);
* ``candidates``: the same config through ``therapy_align.evaluation.sampling.candidate_sampling``
  (top-p among the ``torch.topk`` candidates, the full sort only for rows that need it), which is
  what ``generate_batch`` now does.

New tokens/s count generated tokens up to each reply's end of turn; the arms alternate for
``--repeats`` rounds (best round of each). Also printed: how many sampled replies are identical
between the arms (the kept tokens are the same up to float rounding at the top-p cut, so they
should all be), the share of rows that needed the full sort, the two processors alone on one
step's real logits, and whether greedy decoding through ``generate_batch`` still equals plain
``model.generate`` (it must: greedy is untouched). Not a test: record the figures with the
machine in docs/benchmarks.md.
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


def decode(model, tokenizer, prompts, spec, *, top_k: int, candidates: bool):
    """(rows of new token ids cut at end of turn, seconds, the processor or None)."""
    import torch

    from therapy_align.evaluation.generation import batch_seed, cut_at_eos, generation_config, left_pad
    from therapy_align.evaluation.sampling import candidate_sampling

    rows, processors, seconds = [], [], 0.0
    for offset in range(0, len(prompts), spec.batch_size):
        batch = prompts[offset : offset + spec.batch_size]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        ids, mask = left_pad(batch, pad_id)
        config = generation_config(tokenizer, spec)
        if spec.do_sample and top_k:
            config.top_k = top_k
        found = None
        if candidates:
            config, found = candidate_sampling(config)
            processors.append(found[0] if len(found) else None)
        torch.manual_seed(batch_seed(spec.seed, [str(offset)]))
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config, logits_processor=found)
        seconds += time.perf_counter() - start
        rows += [cut_at_eos(row, tokenizer.eos_token_id, pad_id) for row in out[:, ids.shape[1] :].tolist()]
    return rows, seconds, [p for p in processors if p is not None]


def processors_alone(model, tokenizer, prompts, *, top_p: float, top_k: int, repeats: int = 5) -> dict:
    """Milliseconds per call of each arm's processors on one decoding step's real logits."""
    import torch
    from transformers import LogitsProcessorList, TopKLogitsWarper, TopPLogitsWarper

    from therapy_align.evaluation.generation import left_pad
    from therapy_align.evaluation.sampling import CandidateTopPWarper

    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -1, :].float()
    warpers = LogitsProcessorList(([TopKLogitsWarper(top_k)] if top_k else []) + [TopPLogitsWarper(top_p)])
    ours = CandidateTopPWarper(top_p=top_p, top_k=top_k)
    best = {}
    for name, fn in (("warpers", warpers), ("candidates", ours)) * repeats:
        start = time.perf_counter()
        fn(ids, logits.clone())
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    same = torch.equal(warpers(ids, logits.clone()), ours(ids, logits.clone()))
    return {"rows": logits.shape[0], "vocab": logits.shape[1], "warpers_ms": round(best["warpers"] * 1e3, 1),
            "candidates_ms": round(best["candidates"] * 1e3, 1), "same_scores": same}


def measure(model_ref: str = "gemma-3-270m", n: int = 16, batch_size: int = 16, max_new_tokens: int = 32,
            top_p: float = 0.9, top_k: int = 0, repeats: int = 2, threads: int = 0, greedy_check: bool = True) -> dict:
    import torch

    from therapy_align.data.system_prompts import get_system_prompt
    from therapy_align.evaluation.generation import GenerationSpec, generate_batch, prompt_ids, read_inputs
    from therapy_align.paths import resolve_data_dir
    from therapy_align.training.models import load_model_for_inference

    if threads:
        torch.set_num_threads(threads)
    model, tokenizer = load_model_for_inference(model_ref, dtype="float32")
    model.eval()
    system = get_system_prompt("new")
    records = read_inputs(resolve_data_dir() / "eval_inputs" / "reddit_mental_health_1000.jsonl", limit=n).records
    prompts = sorted((prompt_ids(tokenizer, system, r.text) for r in records), key=len, reverse=True)
    spec = GenerationSpec(batch_size=batch_size, max_new_tokens=max_new_tokens, do_sample=True, top_p=top_p, seed=0)
    decode(model, tokenizer, prompts[:2], replace(spec, max_new_tokens=2), top_k=top_k, candidates=False)  # warm-up

    best: dict[str, tuple[int, float]] = {}
    outputs: dict[str, list] = {}
    sorted_rows = all_rows = 0
    for _ in range(repeats):
        for name in ("warpers", "candidates"):
            rows, seconds, processors = decode(model, tokenizer, prompts, spec, top_k=top_k,
                                               candidates=name == "candidates")
            tokens = sum(map(len, rows))
            outputs[name] = rows
            sorted_rows += sum(p.rows_sorted for p in processors)
            all_rows += sum(p.rows for p in processors)
            if name not in best or tokens / seconds > best[name][0] / best[name][1]:
                best[name] = (tokens, seconds)
    same_samples = sum(a == b for a, b in zip(outputs["warpers"], outputs["candidates"], strict=True))
    (t1, s1), (t2, s2) = best["warpers"], best["candidates"]
    result = {
        "model": model_ref, "prompts": len(prompts), "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "batch_size": batch_size, "max_new_tokens": max_new_tokens, "top_p": top_p, "top_k": top_k, "repeats": repeats,
        "warpers_tokens_per_s": round(t1 / s1, 1), "warpers_s": round(s1, 2),
        "candidates_tokens_per_s": round(t2 / s2, 1), "candidates_s": round(s2, 2),
        "ratio_candidates_vs_warpers": round((t2 / s2) / (t1 / s1), 2), "target_ratio": 2.0,
        "identical_sampled_replies": f"{same_samples}/{len(prompts)}",
        "rows_needing_full_sort": f"{sorted_rows}/{all_rows}",
        "processors_alone": processors_alone(model, tokenizer, prompts[:batch_size], top_p=top_p, top_k=top_k),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"load average {os.getloadavg()[0]:.1f}",
    }
    if greedy_check:
        greedy = replace(spec, do_sample=False)
        ours = [text for text, _ in generate_batch(model, tokenizer, prompts[:batch_size], greedy)]
        plain, _, _ = decode(model, tokenizer, prompts[:batch_size], greedy, top_k=0, candidates=False)
        plain_text = [tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
                      for row in plain]
        result["greedy_identical"] = ours == plain_text
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="a model reference (gemma-3-270m, tiny-base, ...)")
    parser.add_argument("--n", type=int, default=16, help="prompts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--top-k", type=int, default=0, help="0: none, as GenerationSpec samples")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--no-greedy-check", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    r = measure(ns.model, ns.n, ns.batch_size, ns.max_new_tokens, ns.top_p, ns.top_k, ns.repeats, ns.threads,
                not ns.no_greedy_check)
    alone = r["processors_alone"]
    print(f"{r['model']}: {r['prompts']} prompts (mean {r['mean_prompt_tokens']:.0f} tokens), batch {r['batch_size']}, "
          f"{r['max_new_tokens']} new tokens max, top_p {r['top_p']}, top_k {r['top_k']}; {r['machine']}")
    print(f"  transformers' warpers: {r['warpers_tokens_per_s']:8.1f} new tok/s ({r['warpers_s']:.1f} s)")
    print(f"  candidate top-p:       {r['candidates_tokens_per_s']:8.1f} new tok/s ({r['candidates_s']:.1f} s)")
    print(f"  ratio: {r['ratio_candidates_vs_warpers']:.2f}x (target >= 2x)")
    print(f"  identical sampled replies {r['identical_sampled_replies']}, rows needing the full sort "
          f"{r['rows_needing_full_sort']}, greedy identical: {r.get('greedy_identical', 'not checked')}")
    print(f"  processors alone on {alone['rows']} x {alone['vocab']} logits: warpers {alone['warpers_ms']} ms, "
          f"candidates {alone['candidates_ms']} ms (same scores: {alone['same_scores']})")
    if ns.json:
        ns.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
