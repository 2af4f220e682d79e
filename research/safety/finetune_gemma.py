"""Gemma 3 270M fine-tuned as the crisis classifier (LoRA on every projection, a level head on the
state at the last token of a question about the message), on the same rows, dev split, threshold
rules and held-out sets as ``compare_encoders.py`` and ``gemma_probe.py``.

A head on Gemma's frozen states does no better than one on MiniLM (docs/research/safety-encoders.md);
this asks whether adapting the model itself, with the look-alikes in its training rows, separates
"at the bridge for a picnic" from "at the bridge, not turning back".

    THREADS=2 .venv/bin/python -m research.safety.finetune_gemma \
        --cache artifacts/research-safety [--epochs 2]

Trained with Lightning on CPU (37 minutes on the 2-core box, 2 epochs); the crisis probabilities of the
dev split and of every held-out set are stored in ``<cache>/gemma-finetuned-e<E>.npz``, and both
threshold rules (pooled and per-source cap) are read out from them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from research.safety.compare_encoders import DEFAULT, read_out
from research.safety.gemma_probe import MODEL, QUESTION
from therapy_align.safety.detector import normalize
from therapy_align.safety.evaluate import evaluation_sets
from therapy_align.safety.learned import dev_split, level_loss, training_rows
from therapy_align.safety.levels import LEVELS


def main() -> None:
    import lightning.pytorch as pl
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--cache", default="artifacts/research-safety")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    pl.seed_everything(0, verbose=False)
    cfg = DEFAULT
    cache = Path(args.cache)
    rows = training_rows(cfg)
    prompts = [QUESTION.format(text=normalize(r["text"])) for r in rows]
    levels = np.array([r["level"] for r in rows])
    weights = np.array([cfg.written_weight if r["source"] == "written" else 1.0 for r in rows])
    train, dev = dev_split(rows, cfg.dev_fraction, cfg.seed)
    tok = AutoTokenizer.from_pretrained(str(MODEL))
    tok.padding_side = "right"
    lm = AutoModelForCausalLM.from_pretrained(str(MODEL), dtype=torch.float32)
    body = get_peft_model(lm.model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                               target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"]))
    del lm  # the 262k-word output layer is never used

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            self.head = torch.nn.Linear(640, len(LEVELS))

        def forward(self, batch_prompts):
            enc = tok(batch_prompts, return_tensors="pt", padding=True, truncation=True, max_length=220)
            states = self.body(**enc).last_hidden_state
            last = enc["attention_mask"].sum(1) - 1
            return self.head(states[torch.arange(len(batch_prompts)), last])

        def training_step(self, idx, _):
            idx = idx.tolist()
            logits = self([prompts[i] for i in idx])
            loss = level_loss(logits, torch.tensor(levels[idx]), cfg.positive_weight,
                              torch.tensor(weights[idx], dtype=torch.float32))
            self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            lora = [p for p in self.body.parameters() if p.requires_grad]
            return torch.optim.AdamW([{"params": lora, "lr": args.lr},
                                      {"params": self.head.parameters(), "lr": 2e-3}], weight_decay=0.01)

    model = Classifier()
    # shortest prompts batched together within shuffled buckets would be faster; plain shuffling keeps it simple
    loader = DataLoader(torch.tensor(train), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    started = time.time()
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=True)
    trainer.fit(model, loader)
    print(f"trained in {time.time() - started:.0f}s", flush=True)

    def probability(texts: list[str]) -> np.ndarray:
        model.eval()
        out = np.zeros(len(texts))
        order = np.argsort([len(t) for t in texts])
        with torch.inference_mode():
            for s in range(0, len(order), 32):
                idx = order[s:s + 32]
                logits = model([QUESTION.format(text=normalize(texts[i])) for i in idx])
                out[idx] = 1.0 - torch.softmax(logits, dim=-1)[:, 0].numpy()
        return out

    sets = evaluation_sets()
    texts = [r["text"] for r in rows]
    store = {"dev": probability([texts[i] for i in dev])}
    for name, set_rows in sets.items():
        store[name] = probability([r["text"] for r in set_rows])
    np.savez(cache / f"gemma-finetuned-e{args.epochs}.npz", **store)
    for per_source in (False, True):
        out = read_out(f"gemma-finetuned-e{args.epochs}" + ("-cap" if per_source else ""), store["dev"], dev, rows, sets,
                       store.__getitem__, cache, per_source)
        out["seconds"] = round(time.time() - started, 1)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
