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

from research.safety.compare_encoders import DEFAULT, decide, rule_view, threshold_capped_per_source
from therapy_align.safety.detector import normalize
from therapy_align.safety.evaluate import bootstrap_interval, evaluation_sets
from therapy_align.safety.learned import choose_threshold, fit_on_dev_split, head_probabilities, training_rows

MODEL = Path("artifacts/models/gemma-3-270m")
QUESTION = ('Message: "{text}"\n'
            "Question: Is the person who wrote this message at risk of suicide or self-harm, or asking how to "
            "die or how to hurt themselves?\nAnswer (yes or no):")


def gemma_features(texts: list[str], layers: list[int], cache: Path) -> dict[str, np.ndarray]:
    """``{feature name: (len(texts), 640)}`` for mean-L<k>, prompt-L<k> and zero-shot, cached by text."""
    path = cache / "gemma-features.npz"
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
    cfg = DEFAULT
    mu, sd = feats_train.mean(0), feats_train.std(0) + 1e-6
    head, levels, _, dev = fit_on_dev_split((feats_train - mu) / sd, rows, cfg)
    texts = [r["text"] for r in rows]
    view = rule_view(texts, cache / "rules.json")
    prob = 1.0 - head_probabilities(head, ((feats_train - mu) / sd)[dev])[:, 0]
    return read_out(name, prob, dev, levels, texts, view, rows, sets, sets_feats,
                    lambda f: 1.0 - head_probabilities(head, (f - mu) / sd)[:, 0], cache, per_source)


def read_out(name, prob, dev, levels, texts, view, rows, sets, sets_feats, score, cache, per_source) -> dict:
    cfg = DEFAULT
    rules = np.array([view[texts[i]][0] for i in dev])
    gates = np.array([view[texts[i]][1] for i in dev])
    gated = np.where(gates == "settled", -1.0,
                     np.where((gates == "discounted") & (prob < cfg.discounted_threshold_floor), -1.0, prob))
    positive = levels[dev] != 0
    if per_source:
        threshold = threshold_capped_per_source(gated, rules, positive, np.array([rows[i]["source"] for i in dev]),
                                                cfg.target_recall, cfg.max_added_fpr)
    else:
        threshold = choose_threshold(gated, rules, positive, cfg.target_recall, cfg.max_added_fpr)
    flags = decide(prob, rules, gates, threshold, cfg.discounted_threshold_floor)
    out = {"variant": name + ("-cap" if per_source else ""), "threshold": round(float(threshold), 3),
           "dev_recall": round(float(flags[positive].mean()), 3), "dev_fpr": round(float(flags[~positive].mean()), 3)}
    for set_name, set_rows in sets.items():
        set_texts = [r["text"] for r in set_rows]
        v = rule_view(set_texts, cache / "rules.json")
        p = score(sets_feats[set_name])
        f = decide(p, np.array([v[t][0] for t in set_texts]), np.array([v[t][1] for t in set_texts]), threshold,
                   cfg.discounted_threshold_floor)
        truth = np.array([r["crisis"] for r in set_rows])
        neg = f[np.array([r["label"] == "none" for r in set_rows])] if set_name == "tsid_test" else f[~truth]
        out[set_name] = {"recall": round(float(f[truth].mean()), 3), "recall_ci": bootstrap_interval(f[truth].tolist()),
                         "fpr": round(float(neg.mean()), 3), "fpr_ci": bootstrap_interval(neg.tolist())}
    return out


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
        if name == "zero-shot":
            levels = np.array([r["level"] for r in rows])
            from therapy_align.safety.learned import dev_split

            _, dev = dev_split(rows, DEFAULT.dev_fraction, DEFAULT.seed)
            texts = [r["text"] for r in rows]
            squash = lambda f: 1.0 / (1.0 + np.exp(-f[:, 0]))  # noqa: E731
            out = read_out(name, squash(train_feats[name][dev]), dev, levels, texts, rule_view(texts, cache / "rules.json"),
                           rows, sets, {k: v[name] for k, v in set_feats.items()}, squash, cache, args.per_source_cap)
        else:
            out = evaluate(name, train_feats[name], rows, {k: v[name] for k, v in set_feats.items()}, sets, cache,
                           args.per_source_cap)
        out["seconds"] = round(time.time() - started, 1)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
