"""All-MiniLM-L6-v2 fine-tuned briefly with the level head (encoder and head trained together), against
the frozen-encoder head, on the same rows, dev split, threshold rule and held-out sets as
``compare_encoders.py`` (whose cached rule verdicts it reuses).

    THREADS=1 .venv/bin/python -m research.safety.finetune_minilm \
        --cache artifacts/research-safety [--per-source-cap]

(run from the repository root after ``compare_encoders.py``, whose cache of rule verdicts it reads;
``THREADS``: torch threads, 2 by default). About 13 minutes per run with one thread on the 2-core
box; findings in docs/research/safety-encoders.md.

A frozen encoder places "at the bridge for a picnic" and "at the bridge, not turning back" close
together (same topic); fine-tuning can move them apart using the written look-alikes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from research.safety.compare_encoders import DEFAULT, read_out
from therapy_align.safety.detector import normalize
from therapy_align.safety.evaluate import evaluation_sets
from therapy_align.safety.learned import dev_split, level_loss, training_rows
from therapy_align.safety.levels import LEVELS
from therapy_align.sentence_embedding import minilm_path


def main() -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--cache", default="artifacts/research-safety")
    parser.add_argument("--per-source-cap", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    cfg = DEFAULT
    rows = training_rows(cfg)
    texts = [normalize(r["text"]) for r in rows]
    levels = np.array([r["level"] for r in rows])
    weights = np.array([cfg.written_weight if r["source"] == "written" else 1.0 for r in rows])
    train, dev = dev_split(rows, cfg.dev_fraction, cfg.seed)
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    encoder = AutoModel.from_pretrained(str(minilm_path()))
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(encoder.config.hidden_size, len(LEVELS)))

    def embed(batch_texts, grad):
        enc = tok(batch_texts, truncation=True, max_length=128, padding="longest", return_tensors="pt")
        with torch.set_grad_enabled(grad):
            hidden = encoder(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)

    def probability(batch_texts):
        encoder.eval(), head.eval()
        order = np.argsort([-len(t) for t in batch_texts])
        result = np.zeros(len(batch_texts))
        with torch.inference_mode():
            for s in range(0, len(order), 64):
                idx = order[s:s + 64]
                logits = head(embed([batch_texts[i] for i in idx], False) * 20.0)
                result[idx] = 1.0 - torch.softmax(logits, dim=-1)[:, 0].numpy()
        return result

    optimizer = torch.optim.AdamW([{"params": encoder.parameters(), "lr": args.lr},
                                   {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01)
    started = time.time()
    for epoch in range(args.epochs):
        encoder.train(), head.train()
        order = train[:]
        random.Random(epoch).shuffle(order)
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            # unit vectors scaled: a linear layer on raw unit vectors learns slowly
            logits = head(embed([texts[i] for i in idx], True) * 20.0)
            loss = level_loss(logits, torch.tensor(levels[idx]), cfg.positive_weight,
                              torch.tensor(weights[idx], dtype=torch.float32))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {float(loss.detach()):.3f} {time.time() - started:.0f}s", flush=True)
    sets = evaluation_sets()
    out = read_out(f"minilm-finetuned-e{args.epochs}-lr{args.lr}" + ("-cap" if args.per_source_cap else ""),
                   probability([texts[i] for i in dev]), dev, rows, sets,
                   lambda name: probability([normalize(r["text"]) for r in sets[name]]), Path(args.cache),
                   args.per_source_cap, cfg)
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
