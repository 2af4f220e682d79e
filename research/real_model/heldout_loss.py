"""Held-out loss on therapist tokens: an SFT run against the base it was trained from, paired.

    python -m research.real_model.heldout_loss runs/results-table1/sft/annomi80 --rows 48 \
        --out docs/research/data/heldout-small.json

Both models score the same held-out chunks of the run's own split (its config.json's data section,
rebuilt with its tokenizer, so for the annomi80 split these are the 20% of sessions it never saw):
mean cross-entropy (nats per supervised token) over the therapist tokens, token-weighted. The
interval is a paired bootstrap over chunks (the same resampled chunks for both models), so the
difference's interval reflects which chunks were held out, not noise between two samples.

Logits are computed only at supervised positions (``logits_to_keep`` as a boolean mask): the
262k-token output head dominates a small model's forward pass, and positions without a label cost
nothing. Per-model results are kept in ``<out>.<model>.jsonl`` as chunks finish and reused on a
rerun when the model, the chunk and its tokens are the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import numpy as np


def as_fields(default, stored: dict) -> dict:
    """``stored`` (a config section read back from JSON) as field values of ``default``'s type:
    lists back to tuples, nested sections back to their dataclasses."""
    values = {}
    for f in fields(default):
        if f.name not in stored:
            continue
        value, current = stored[f.name], getattr(default, f.name)
        if is_dataclass(current) and isinstance(value, dict):
            value = replace(current, **as_fields(current, value))
        elif isinstance(value, list):
            value = frozenset(value) if isinstance(current, (set, frozenset)) else tuple(value)
        values[f.name] = value
    return values


def heldout_rows(run_dir: Path, rows: int | None):
    """The run's held-out chunks (``input_ids``, ``labels``), evenly spaced when ``rows`` is given."""
    from therapy_align.training.config import SftData
    from therapy_align.training.models import load_tokenizer_for, read_run_config
    from therapy_align.training.sft_run import sft_dataset

    config = read_run_config(run_dir)
    data = dict(as_fields(SftData(), config["data"]), max_heldout_rows=rows, max_train_rows=1)
    tokenizer = load_tokenizer_for(str(run_dir / "tokenizer"))
    max_length = (config.get("train") or {}).get("max_length")
    return sft_dataset(SftData(**data), tokenizer=tokenizer, max_length=max_length)["heldout"]


def row_key(model: str, ids, labels) -> str:
    return hashlib.sha256(json.dumps([model, list(ids), list(labels)]).encode()).hexdigest()[:16]


def score_model(ref: str, dataset, store: Path) -> list[dict]:
    """``[{"nll", "tokens"}]`` per chunk for model ``ref``, resuming from ``store``."""
    import torch

    from therapy_align.training.models import load_model_for_inference

    done = {}
    if store.is_file():
        for line in store.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    keys = [row_key(ref, ex["input_ids"], ex["labels"]) for ex in dataset]
    if not all(k in done for k in keys):
        model, _ = load_model_for_inference(ref, dtype="float32", merge=True)
        with store.open("a", encoding="utf-8") as out, torch.no_grad():
            for i, (key, ex) in enumerate(zip(keys, dataset, strict=True)):
                if key in done:
                    continue
                ids = torch.tensor([ex["input_ids"]])
                labels = torch.tensor([ex["labels"]])
                targets = labels[:, 1:]
                keep = torch.zeros_like(labels, dtype=torch.bool)
                keep[:, :-1] = targets != -100  # position t predicts token t+1
                logits = model(input_ids=ids, logits_to_keep=keep).logits.reshape(-1, model.config.vocab_size)
                nll = torch.nn.functional.cross_entropy(logits.float(), targets[targets != -100], reduction="sum")
                done[key] = {"key": key, "nll": float(nll), "tokens": int((targets != -100).sum())}
                out.write(json.dumps(done[key]) + "\n")
                out.flush()
                print(f"{ref}: chunk {i + 1}/{len(keys)}, {done[key]['nll'] / done[key]['tokens']:.3f} nats/token",
                      file=sys.stderr, flush=True)
        del model
    return [done[k] for k in keys]


def paired_bootstrap(base: list[dict], tuned: list[dict], *, draws: int = 1000, seed: int = 0) -> dict:
    nll = np.array([[b["nll"], t["nll"]] for b, t in zip(base, tuned, strict=True)])
    tokens = np.array([b["tokens"] for b in base], dtype=float)
    point = nll.sum(0) / tokens.sum()
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(draws):
        idx = rng.integers(0, len(tokens), len(tokens))
        samples.append(nll[idx].sum(0) / tokens[idx].sum())
    samples = np.array(samples)
    diff = samples[:, 1] - samples[:, 0]

    def ci(values):
        return [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]

    return {"chunks": len(tokens), "supervised_tokens": int(tokens.sum()),
            "base_loss": round(float(point[0]), 4), "base_ci": ci(samples[:, 0]),
            "sft_loss": round(float(point[1]), 4), "sft_ci": ci(samples[:, 1]),
            "difference": round(float(point[1] - point[0]), 4), "difference_ci": ci(diff),
            "significant": bool(np.percentile(diff, 97.5) < 0 or np.percentile(diff, 2.5) > 0),
            "bootstrap": {"draws": draws, "seed": seed, "unit": "held-out chunk, paired"}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the SFT run directory")
    parser.add_argument("--base", default=None, help="the base model (default: the run's base_model)")
    parser.add_argument("--rows", type=int, default=None, help="evenly spaced held-out chunks (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON summary goes")
    args = parser.parse_args(argv)
    from therapy_align.training.models import read_run_config, run_base_model

    base = args.base or run_base_model(read_run_config(args.run))
    dataset = heldout_rows(args.run, args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scores = {name: score_model(ref, dataset, args.out.with_suffix(f".{name}.jsonl"))
              for name, ref in (("base", base), ("sft", str(args.run)))}
    result = {"run": str(args.run), "base": base, **paired_bootstrap(scores["base"], scores["sft"])}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
