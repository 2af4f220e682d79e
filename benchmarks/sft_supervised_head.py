"""SFT steps with TRL's default head vs the head at supervised positions only, side by side.

    .venv/bin/python benchmarks/sft_supervised_head.py                      # Gemma 3 270M, 4 steps of 2 x 512
    .venv/bin/python benchmarks/sft_supervised_head.py --model tiny-base    # a smoke run in seconds
    .venv/bin/python benchmarks/sft_supervised_head.py --steps 6 --json out.json

Both arms are ``make_trainer`` (``therapy_align.training.sft_run``) on ``recipes/sft_paper.py``'s
preset (``small`` for Gemma, ``tiny`` for the tiny model) as it stands, with only
``run.supervised_logits_only`` differing (off: TRL's fused head, which on the CPU projects every
position; on: :mod:`therapy_align.training.supervised_head`, only the therapist positions). They
train the same rows in the same order from the same seed, so they see the same batches and the
same LoRA dropout masks; the per-step training losses must agree within ``--tolerance`` (relative;
the head's matrix products run over different row counts, so they round differently, and the
difference compounds through the optimizer's updates). The arms alternate for ``--repeats`` rounds
so load from other processes hits both; each step is timed by a trainer callback (the first step of
each arm, which pays for allocation, is left out of the rate), and supervised tokens are the
next-token targets the model trained on. Not a test: record the figures with the machine in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO_ROOT = Path(__file__).resolve().parents[1]
PRESET_OF_MODEL = {"gemma-3-270m": "SMALL", "tiny-base": "TINY"}


def load_recipe():
    sys.path.insert(0, str(REPO_ROOT / "recipes"))
    spec = importlib.util.spec_from_file_location("sft_paper_recipe_head_bench", REPO_ROOT / "recipes" / "sft_paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self._start)

    return StepTimer()


def run_arm(cfg, out: Path, *, supervised_only: bool, seed: int) -> dict:
    import torch
    from transformers import PrinterCallback

    from therapy_align.training.sft_run import SupervisedTokenCounter, make_trainer

    cfg = replace(cfg, run=replace(cfg.run, supervised_logits_only=supervised_only))
    torch.manual_seed(seed)  # the LoRA initialisation
    trainer, _ = make_trainer(cfg, out)
    trainer.remove_callback(PrinterCallback)  # the arms' results are printed below, once
    timer = step_timer()
    trainer.add_callback(timer)
    tokens_per_step: list[int] = []
    counter = SupervisedTokenCounter(trainer.model)
    torch.manual_seed(seed)  # the LoRA dropout masks
    trainer.train()
    counter.remove()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    timed = timer.seconds[1:] or timer.seconds  # the first step pays for allocation
    steps = len(timer.seconds)
    # rows of equal shape per step: the counted tokens spread evenly enough for a rate
    tokens = counter.count * len(timed) / steps
    return {"arm": "supervised_only" if supervised_only else "default", "steps": steps, "losses": losses,
            "supervised_tokens": counter.count, "step_s": [round(s, 2) for s in timer.seconds],
            "supervised_tokens_per_s": tokens / sum(timed), "mean_step_s": statistics.mean(timed),
            "trainer": type(trainer).__name__}


def measure(model: str = "gemma-3-270m", steps: int = 4, repeats: int = 1, seed: int = 0) -> dict:
    import torch

    recipe = load_recipe()
    base = getattr(recipe, PRESET_OF_MODEL[model])
    per_step = base.train.per_device_train_batch_size * base.train.gradient_accumulation_steps
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = replace(base, name="head-bench", runs_dir=tmp,
                      data=replace(base.data, max_train_rows=steps * per_step, max_heldout_rows=1),
                      train=base.train.replace(max_steps=steps, logging_steps=1, save_steps=10**6, seed=seed,
                                               disable_tqdm=True),
                      run=replace(base.run, wandb=False, heldout_eval=False))
        for repeat in range(repeats):
            for supervised_only in (False, True):
                out = Path(tmp) / f"{supervised_only}-{repeat}"
                result = run_arm(cfg, out, supervised_only=supervised_only, seed=seed)
                result["repeat"] = repeat
                results.append(result)
                print(json.dumps(result), flush=True)
    best = {}
    for r in results:
        best[r["arm"]] = max(best.get(r["arm"], 0.0), r["supervised_tokens_per_s"])
    default = [r for r in results if r["arm"] == "default"][0]["losses"]
    ours = [r for r in results if r["arm"] == "supervised_only"][0]["losses"]
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(default, ours, strict=True)]
    load = os.getloadavg()[0]
    return {
        "model": model, "preset": PRESET_OF_MODEL[model].lower(), "steps": steps, "repeats": repeats,
        "batch": f"{per_step} x {base.train.max_length} tokens",
        "supervised_tokens_per_step": results[0]["supervised_tokens"] / results[0]["steps"],
        "default_supervised_tokens_per_s": round(best["default"], 2),
        "supervised_only_supervised_tokens_per_s": round(best["supervised_only"], 2),
        "ratio_supervised_only_vs_default": round(best["supervised_only"] / best["default"], 2),
        "target_ratio": 1.5,
        "losses_default": default, "losses_supervised_only": ours, "max_relative_loss_difference": max(rel),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, load average {load:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(PRESET_OF_MODEL), default="gemma-3-270m")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest relative per-step loss difference")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    if ns.steps < 2:
        parser.error("--steps must be at least 2 (the first step is not timed)")
    r = measure(ns.model, ns.steps, ns.repeats, ns.seed)
    print(f"{r['model']} ({r['preset']} preset), {r['steps']} LoRA steps of {r['batch']} "
          f"(~{r['supervised_tokens_per_step']:.0f} supervised tokens/step); {r['machine']}")
    print(f"  default head (TRL, every position): {r['default_supervised_tokens_per_s']:8.1f} supervised tok/s")
    print(f"  supervised positions only:          {r['supervised_only_supervised_tokens_per_s']:8.1f} supervised tok/s")
    print(f"  ratio: {r['ratio_supervised_only_vs_default']:.2f}x (target >= 1.5x)")
    print(f"  per-step losses: default {[round(x, 5) for x in r['losses_default']]}")
    print(f"                   ours    {[round(x, 5) for x in r['losses_supervised_only']]}")
    ok = r["max_relative_loss_difference"] <= ns.tolerance
    print(f"  largest relative loss difference {r['max_relative_loss_difference']:.2e} "
          f"({'within' if ok else 'OVER'} tolerance {ns.tolerance:g})")
    if ns.json:
        ns.json.write_text(json.dumps(r, indent=2) + "\n")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
