"""Gemma 3 270M's hidden states as the crisis head's features, against the sentence encoders, on the
same rows, dev split, threshold rule and held-out sets as ``compare_encoders.py``.

MiniLM and mpnet were trained to place paraphrases together; Gemma was trained on far more text and
may know that "I've worked out the height of every bridge" is about a fall. Two readings of each
message, from one forward pass per reading:
  mean-L<k>    the mean of layer k's states over the message's tokens
  prompt-L<k>  layer k's state at the last token of a question about the message (the model's
               answer is read at that position, so its state summarises what the question asks of it)
and ``zero-shot``: log P(" yes") - log P(" no") after the question, with no training at all.

    THREADS=2 .venv/bin/python -m research.safety.gemma_probe \
        --cache artifacts/research-safety [--layers 6,9,12] [--per-source-cap]

Features are standardised on the training rows (a head on raw LM states is dominated by a few
outlier dimensions). Findings in docs/research/safety-encoders.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from research.safety.compare_encoders import DEFAULT, read_out
from therapy_align.safety.detector import normalize
from therapy_align.safety.evaluate import evaluation_sets
from therapy_align.safety.learned import dev_split, fit_on_dev_split, head_probabilities, training_rows

MODEL = Path("artifacts/models/gemma-3-270m")
QUESTION = ('Message: "{text}"\n'
            "Question: Is the person who wrote this message at risk of suicide or self-harm, or asking how to "
            "die or how to hurt themselves?\nAnswer (yes or no):")


def gemma_features(texts: list[str], layers: list[int], cache: Path) -> dict[str, np.ndarray]:
    """``{feature name: (len(texts), 640)}`` for mean-L<k>, prompt-L<k> and zero-shot, cached by text
    (one cache file per choice of layers)."""
    path = cache / f"gemma-features-L{'-'.join(map(str, layers))}.npz"
    stored: dict[str, dict[str, np.ndarray]] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "texts"}  # each read once: a view keeps its array
            for i, t in enumerate(data["texts"].tolist()):
                stored[t] = {k: a[i].copy() for k, a in arrays.items()}
    missing = [t for t in dict.fromkeys(texts) if t not in stored]
    if missing:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(MODEL))
        tok.padding_side = "right"
        lm = AutoModelForCausalLM.from_pretrained(str(MODEL), dtype=torch.float32).eval()
        yes, no = tok(" yes", add_special_tokens=False).input_ids[-1], tok(" no", add_special_tokens=False).input_ids[-1]
        started = time.time()
        order = sorted(missing, key=len)
        for s in range(0, len(order), 16):
            batch = order[s:s + 16]
            row: dict[str, list[np.ndarray]] = {}
            with torch.inference_mode():
                enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=160)
                hidden = lm.model(**enc, output_hidden_states=True).hidden_states
                # the BOS state is the same for every message
                mask = enc["attention_mask"] * (enc["input_ids"] != tok.bos_token_id)
                m = mask.unsqueeze(-1).float()
                for k in layers:
                    row[f"mean-L{k}"] = ((hidden[k] * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
                prompts = [QUESTION.format(text=t) for t in batch]
                enc = tok(prompts, return_tensors="pt", padding=True, truncation=True, max_length=220)
                out = lm.model(**enc, output_hidden_states=True)
                last = enc["attention_mask"].sum(1) - 1
                rows = torch.arange(len(batch))
                for k in layers:
                    row[f"prompt-L{k}"] = out.hidden_states[k][rows, last].numpy()
                logits = lm.lm_head(out.last_hidden_state[rows, last])
                logp = torch.log_softmax(logits.float(), dim=-1)
                row["zero-shot"] = (logp[:, yes] - logp[:, no]).unsqueeze(1).numpy()
            for i, t in enumerate(batch):
                stored[t] = {k: v[i] for k, v in row.items()}
            if (s // 16) % 20 == 0:
                print(f"  gemma features {s + len(batch)}/{len(order)} {time.time() - started:.0f}s", flush=True)
        keys = sorted(next(iter(stored.values())))
        order = list(stored)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}.npz")
        np.savez(tmp, texts=np.array(order), **{k: np.stack([stored[t][k] for t in order]) for k in keys})
        os.replace(tmp, path)
    keys = sorted(stored[texts[0]])
    return {k: np.stack([stored[t][k] for t in texts]) for k in keys}


def evaluate(name, feats_train, rows, sets_feats, sets, cache, per_source) -> dict:
    """A head on standardised features, its threshold and held-out figures (``compare_encoders.read_out``)."""
    mu, sd = feats_train.mean(0), feats_train.std(0) + 1e-6
    head, _, _, dev = fit_on_dev_split((feats_train - mu) / sd, rows, DEFAULT)

    def score(set_name: str) -> np.ndarray:
        return 1.0 - head_probabilities(head, (sets_feats[set_name] - mu) / sd)[:, 0]

    prob = 1.0 - head_probabilities(head, ((feats_train - mu) / sd)[dev])[:, 0]
    return read_out(name + ("-cap" if per_source else ""), prob, dev, rows, sets, score, cache, per_source)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="artifacts/research-safety")
    parser.add_argument("--layers", default="4,6,9,12,15,18")
    parser.add_argument("--features", default="", help="comma-separated feature names to evaluate (default: all)")
    parser.add_argument("--per-source-cap", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    cache = Path(args.cache)
    layers = [int(k) for k in args.layers.split(",")]
    rows = training_rows(DEFAULT)
    sets = evaluation_sets()
    norm = lambda rs: [normalize(r["text"]) for r in rs]  # noqa: E731
    everything = norm(rows) + [t for s in sets.values() for t in norm(s)]
    gemma_features(everything, layers, cache)  # one pass, cached
    train_feats = gemma_features(norm(rows), layers, cache)
    set_feats = {name: gemma_features(norm(s), layers, cache) for name, s in sets.items()}
    names = args.features.split(",") if args.features else sorted(train_feats)
    for name in names:
        started = time.time()
        if name == "zero-shot":  # the log-odds of " yes", squashed to a probability; nothing trained
            _, dev = dev_split(rows, DEFAULT.dev_fraction, DEFAULT.seed)
            squash = lambda f: 1.0 / (1.0 + np.exp(-f[:, 0]))  # noqa: E731
            out = read_out(name + ("-cap" if args.per_source_cap else ""), squash(train_feats[name][dev]), dev, rows,
                           sets, lambda set_name: squash(set_feats[set_name][name]), cache, args.per_source_cap)
        else:
            out = evaluate(name, train_feats[name], rows, {k: v[name] for k, v in set_feats.items()}, sets, cache,
                           args.per_source_cap)
        out["seconds"] = round(time.time() - started, 1)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
