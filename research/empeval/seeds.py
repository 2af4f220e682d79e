"""The multi-seed F1 table of docs/evaluator.md, from one command:

    python -m research.empeval.seeds --seeds 0 1 2 [--out artifacts/empeval-seeds] [--threads 1] [--key=value ...]

Trains `TrainConfig` (defaults, plus any `--field=value` override, e.g. `--max_epochs=2`) once per
seed into `<out>/seed-<N>` (a finished seed is reused, an interrupted one resumes), then writes
`<out>/seeds.md` and `<out>/seeds.json`: test macro-F1 per mechanism per seed, mean ± sample std,
F1 per level, the seeker-shuffle drop, and the variants (truncated vs whole reply, offsets) that
every artifact's metrics.json records. Seeds differ in split and initialisation alike.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from research.empeval.training_read_outs import PUBLISHED_VARIANT, READ_OUTS
from empeval.mechanisms import MECHANISMS, SHORT_NAMES


def _mean_std(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def table(metrics_by_seed: dict[int, dict]) -> str:
    seeds = sorted(metrics_by_seed)
    lines = [f"Test macro-F1 (%), seeds {', '.join(map(str, seeds))} (whole replies, dev-tuned offsets: the "
             "published scoring path)", "",
             "| mechanism | mean ± std | per seed | F1 of level 0 / 1 / 2 (mean) | truncated, no offsets | "
             "whole reply, no offsets | shuffle drop % (mean) | EPITOME's read-out (per-batch mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for m in MECHANISMS:
        per = [metrics_by_seed[s][m]["macro_f1"] for s in seeds]
        levels = np.mean([metrics_by_seed[s][m]["f1_per_level"] for s in seeds], axis=0) * 100
        variants = [metrics_by_seed[s].get("variants", {}) for s in seeds]
        trunc = [v["truncated_128_no_offsets"][m]["macro_f1"] for v in variants if "truncated_128_no_offsets" in v]
        plain = [v["whole_reply_no_offsets"][m]["macro_f1"] for v in variants if "whole_reply_no_offsets" in v]
        drops = [metrics_by_seed[s]["seeker_shuffle"][m]["drop_percent"] for s in seeds
                 if metrics_by_seed[s].get("seeker_shuffle", {}).get(m, {}).get("drop_percent") is not None]
        drop = f"{np.mean(drops):.1f}" if drops else "—"
        # The definition behind the F1 anchors (research/empeval/epitome_protocol.py); absent in old artifacts.
        batched = [metrics_by_seed[s]["epitome_protocol"][PUBLISHED_VARIANT][m]["batch_macro_f1"] for s in seeds
                   if PUBLISHED_VARIANT in metrics_by_seed[s].get("epitome_protocol", {})]
        lines.append(
            f"| {SHORT_NAMES[m]} | **{_mean_std(per)}** | {' / '.join(f'{100 * v:.1f}' for v in per)} | "
            f"{' / '.join(f'{v:.1f}' for v in levels)} | {_mean_std(trunc) if trunc else '—'} | "
            f"{_mean_std(plain) if plain else '—'} | {drop} | {_mean_std(batched) if batched else '—'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from therapy_align.files import atomic_write_json, atomic_write_text
    from therapy_align.overrides import apply_overrides

    from empeval.config import TrainConfig
    from empeval.training import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="artifacts/empeval-seeds")
    parser.add_argument("--threads", type=int, default=0)
    args, overrides = parser.parse_known_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    base = apply_overrides(TrainConfig(), overrides) if overrides else TrainConfig()
    out = Path(args.out)
    results = {}
    for seed in args.seeds:
        target = out / f"seed-{seed}"
        config = replace(base, seed=seed)
        done = target / "metrics.json"
        if not (done.is_file() and json.loads((target / "empeval_config.json").read_text())["train_config"] == config.to_json()):
            train(config, target, read_outs=READ_OUTS)  # the table reads their variants and shuffle drops
        results[seed] = json.loads(done.read_text())
    text = table(results)
    atomic_write_text(out / "seeds.md", text)
    atomic_write_json(out / "seeds.json", {"config": {f.name: getattr(base, f.name) for f in fields(base) if f.name != "seed"},
                                          "metrics": {str(k): v for k, v in results.items()}})
    print(text)
    return results


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
