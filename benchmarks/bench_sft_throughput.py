"""Supervised tokens/s of the SFT recipe (tiny preset) vs a naive TRL-defaults baseline.

    .venv/bin/python benchmarks/bench_sft_throughput.py [--rows 32] [--repeats 1] [--json out.json]

All arms train the same tiny model (random-init Llama-2 architecture, 32000 vocab) with the same
LoRA on the same rows of the real ``annomi80`` data (the tiny preset's 512-token chunks), one epoch,
on CPU, and count the supervised (therapist) next-token targets the model actually trained on:

* ``naive``: ``SFTConfig`` defaults (TRL 1.16): batch 8, pad to the longest row, random order,
  ``max_length=1024``, no padding-free, and TRL's ``bf16=True`` / ``gradient_checkpointing=True``;
* ``naive_fp32``: the same batching, with the recipe's precision (fp32) and no checkpointing, so
  ``recipe / naive_fp32`` isolates the data path (batch shape, padding-free, length grouping);
* ``recipe``: the library's ``make_trainer`` (``therapy_align.training.sft_run``) on
  ``recipes/sft_paper.py``'s tiny preset as it stands (only rows, steps and logging changed); its
  batch / padding-free / sampling are printed.

Prints each arm and the ratios. Not a test: the numbers depend on the machine and its load; record
them in docs/benchmarks.md with the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO_ROOT = Path(__file__).resolve().parents[1]


def load_recipe():
    spec = importlib.util.spec_from_file_location("sft_paper_recipe_bench", REPO_ROOT / "recipes" / "sft_paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def timed_train(name: str, trainer) -> dict:
    from therapy_align.training.sft_run import SupervisedTokenCounter

    counter = SupervisedTokenCounter(trainer.model)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    counter.remove()
    args = trainer.args
    return {
        "arm": name, "steps": trainer.state.global_step, "supervised_tokens": counter.count, "seconds": round(wall, 2),
        "supervised_tokens_per_s": round(counter.count / wall, 1),
        "batch": f"{args.per_device_train_batch_size}x{args.gradient_accumulation_steps}",
        "padding_free": args.padding_free, "sampling": args.train_sampling_strategy,
        "bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
    }


def naive_arm(name: str, cfg, rows, tokenizer, out: str, *, fp32: bool) -> dict:
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from therapy_align.training.models import load_causal_lm

    torch.manual_seed(cfg.train.seed)
    model = load_causal_lm(cfg.model.name_or_path, dtype="float32")
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), bias="none", task_type="CAUSAL_LM")
    steps = len(rows) // 8  # SFTConfig's default per_device_train_batch_size is 8
    extra = {"bf16": False, "gradient_checkpointing": False} if fp32 else {}
    args = SFTConfig(output_dir=out, report_to=[], use_cpu=True, max_steps=steps, learning_rate=cfg.train.learning_rate,
                     save_strategy="no", logging_steps=1000, seed=cfg.train.seed, disable_tqdm=True, **extra)
    assert args.per_device_train_batch_size == 8 and not args.padding_free
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=lora)
    return timed_train(name, trainer)


def measure(rows: int = 32, repeats: int = 1, arms: str = "naive,naive_fp32,recipe") -> dict:
    """Every arm on the same rows; ``{"results": [...per arm and repeat], "summary": {...ratios}}``."""
    import torch

    from therapy_align.training.sft_run import make_trainer, sft_dataset

    recipe = load_recipe()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = recipe.TINY
        per_step = tiny.train.per_device_train_batch_size * tiny.train.gradient_accumulation_steps
        cfg = replace(
            tiny, name="bench", runs_dir=tmp,
            data=replace(tiny.data, max_train_rows=rows, max_heldout_rows=1),
            train=tiny.train.replace(max_steps=rows // per_step, logging_steps=1000, save_steps=10**6),
            run=replace(tiny.run, wandb=False, heldout_eval=False),
        )
        results = []
        for repeat in range(repeats):
            for name in arms.split(","):
                out = os.path.join(tmp, f"{name}-{repeat}")
                if name == "recipe":
                    trainer, tokenizer = make_trainer(cfg, Path(out))
                    trainer.args.disable_tqdm = True
                    result = timed_train(name, trainer)
                else:
                    from therapy_align.data.chat_format import load_tokenizer

                    tokenizer = load_tokenizer(cfg.model.tokenizer)
                    train_rows = sft_dataset(cfg.data, tokenizer=tokenizer, max_length=cfg.train.max_length)["train"]
                    result = naive_arm(name, cfg, train_rows, tokenizer, out, fp32=name == "naive_fp32")
                results.append(result)
                print(json.dumps(result), flush=True)
        train_rows = sft_dataset(cfg.data, tokenizer=tokenizer, max_length=cfg.train.max_length)["train"]
    lengths = [len(ids) for ids in train_rows["input_ids"]]
    best = {}
    for r in results:
        best[r["arm"]] = max(best.get(r["arm"], 0.0), r["supervised_tokens_per_s"])
    summary = {
        "rows": len(lengths), "mean_row_tokens": round(sum(lengths) / len(lengths), 1), "max_row_tokens": max(lengths),
        "best_supervised_tokens_per_s": best, "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
    }
    if "recipe" in best and "naive" in best:
        summary["ratio_recipe_vs_naive"] = round(best["recipe"] / best["naive"], 2)
    if "recipe" in best and "naive_fp32" in best:
        summary["ratio_recipe_vs_naive_fp32"] = round(best["recipe"] / best["naive_fp32"], 2)
    return {"results": results, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32, help="training rows (a multiple of 8)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--arms", default="naive,naive_fp32,recipe")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    measured = measure(ns.rows, ns.repeats, ns.arms)
    print(json.dumps(measured["summary"], indent=2))
    if ns.json:
        ns.json.write_text(json.dumps(measured, indent=2) + "\n")


if __name__ == "__main__":
    main()
