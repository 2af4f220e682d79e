"""How far any threshold could take each learned detector on everyday wording: the head's ranking
of the held-out indirect and probe sets (50 crises, 50 look-alikes, never trained on), and the best
operating point of the deployed decision (rules, or the head above a threshold where its gate
allows) with the threshold picked on those sets themselves.

That threshold is chosen on the test rows, so its figures are an upper bound on what a threshold
rule could give these features, not a result: if even it misses recall >= 0.90 at a false-positive
rate <= 0.10, no choice of threshold will meet the target, and the limit is in what the head learned.

    .venv/bin/python -m research.safety.operating_points \
        --cache artifacts/research-safety [--features minilm,mpnet,mean-L9,gemma-finetuned-e2]

``minilm`` and ``mpnet`` read ``compare_encoders.py``'s cached embeddings, ``mean-L<k>`` and
``prompt-L<k>`` ``gemma_probe.py``'s, ``gemma-finetuned-e<E>`` the probabilities that
``finetune_gemma.py`` stored. Prints one JSON line per feature.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from research.safety.compare_encoders import DEFAULT, embeddings, rule_view
from therapy_align.safety.detector import normalize
from therapy_align.safety.evaluate import evaluation_sets
from therapy_align.safety.learned import fit_on_dev_split, head_probabilities, training_rows

HARD_SETS = ("indirect", "probe")


def auc(score: np.ndarray, truth: np.ndarray) -> float:
    """P(a crisis scores above a look-alike), ties counting half."""
    pos, neg = score[truth], score[~truth]
    greater = (pos[:, None] > neg[None, :]).mean()
    return float(greater + 0.5 * (pos[:, None] == neg[None, :]).mean())


def auc_interval(score: np.ndarray, truth: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
    draws = []
    for _ in range(n):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(auc(score[idx], truth[idx]))
    return [round(float(np.percentile(draws, 2.5)), 3), round(float(np.percentile(draws, 97.5)), 3)]


def best_points(score: np.ndarray, rules: np.ndarray, allowed: np.ndarray, truth: np.ndarray) -> dict:
    """The deployed decision's best recall at FPR <= 0.10 and best FPR at recall >= 0.90, over every threshold."""
    points = []
    for t in sorted(set(score.tolist())) + [np.inf]:
        flags = rules | (allowed & (score >= t))
        points.append((float(flags[truth].mean()), float(flags[~truth].mean())))
    return {"best_recall_at_fpr_0.10": round(max((r for r, f in points if f <= 0.10 + 1e-9), default=0.0), 3),
            "best_fpr_at_recall_0.90": round(min((f for r, f in points if r >= 0.90 - 1e-9), default=1.0), 3)}


def scores(feature: str, rows, hard_rows, cache: Path) -> np.ndarray:
    if feature.startswith("gemma-finetuned"):
        with np.load(cache / f"{feature}.npz") as stored:
            return np.concatenate([stored[name] for name in HARD_SETS])
    if feature in ("minilm", "mpnet"):
        train = embeddings(feature, [r["text"] for r in rows], cache)
        test = embeddings(feature, [r["text"] for r in hard_rows], cache)
    else:
        from research.safety.gemma_probe import gemma_features

        layers = [4, 6, 9, 12, 15, 18]
        train = gemma_features([normalize(r["text"]) for r in rows], layers, cache)[feature]
        test = gemma_features([normalize(r["text"]) for r in hard_rows], layers, cache)[feature]
        mu, sd = train.mean(0), train.std(0) + 1e-6
        train, test = (train - mu) / sd, (test - mu) / sd
    head, *_ = fit_on_dev_split(train, rows, DEFAULT)
    return 1.0 - head_probabilities(head, test)[:, 0]


def written_curve(features: list[str], rows, hard_rows, truth, cache: Path, seeds: int = 3) -> None:
    """The hard-message AUC against the number of written training rows: a random share of them
    (0.25 to 1, ``seeds`` draws each), then all of them plus ``more_written_rows.jsonl``. If it is
    still rising at the full set, more rows of the same kind may help; if flat, they will not."""
    import random

    from therapy_align.safety.levels import LEVELS

    more = [json.loads(line) for line in (Path(__file__).parent / "more_written_rows.jsonl").read_text().splitlines()
            if line.strip()]
    more = [{"id": r["id"], "text": r["text"], "level": LEVELS.index(r["level"]), "source": "written"} for r in more]
    written = [r for r in rows if r["source"] == "written"]
    others = [r for r in rows if r["source"] != "written"]
    for feature in features:
        for share in (0.25, 0.5, 0.75, 1.0, "+more"):
            aucs = []
            for seed in range(seeds if share not in (1.0, "+more") else 1):
                if share == "+more":
                    subset = others + written + more
                else:
                    subset = others + random.Random(seed).sample(written, round(len(written) * share))
                aucs.append(auc(scores(feature, subset, hard_rows, cache), truth))
            n = sum(r["source"] == "written" for r in subset)
            print(json.dumps({"feature": feature, "written_rows": n, "head_auc": round(float(np.mean(aucs)), 3),
                              "draws": [round(a, 3) for a in aucs]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="artifacts/research-safety")
    parser.add_argument("--features", default="minilm,mpnet,mean-L9")
    parser.add_argument("--curve", action="store_true", help="the hard-message AUC against the written rows' count")
    args = parser.parse_args()
    cache = Path(args.cache)
    rows = training_rows(DEFAULT)
    sets = evaluation_sets()
    hard_rows = [r for name in HARD_SETS for r in sets[name]]
    texts = [r["text"] for r in hard_rows]
    truth = np.array([r["crisis"] for r in hard_rows])
    if args.curve:
        written_curve(args.features.split(","), rows, hard_rows, truth, cache)
        return
    view = rule_view(texts, cache / "rules.json")
    rules = np.array([view[t][0] for t in texts])
    gates = np.array([view[t][1] for t in texts])
    allowed = gates != "settled"  # a discounted message needs the floor too; ignored here, so this is looser still
    print(json.dumps({"feature": "rules alone", "recall": round(float(rules[truth].mean()), 3),
                      "fpr": round(float(rules[~truth].mean()), 3), "n_crisis": int(truth.sum()),
                      "n_lookalike": int((~truth).sum())}), flush=True)
    for feature in args.features.split(","):
        score = scores(feature, rows, hard_rows, cache)
        print(json.dumps({"feature": feature, "head_auc": round(auc(score, truth), 3),
                          "head_auc_ci": auc_interval(score, truth), **best_points(score, rules, allowed, truth)}),
              flush=True)


if __name__ == "__main__":
    main()
