"""Can each level be learned from the text at all? Rankings cross-validated over all EPITOME pairs:

    python -m research.empeval.learnability [--folds 5] [--features tfidf_response minilm_pair]
                                   [--train-fractions 1.0 ...] [--model DIR ...] [--json OUT]

**Why it exists.** IP level 1 is hardly ever predicted right, and the F1 anchors need its
F1 near 0.33 (docs/evaluator.md). A trained model's test split holds ~24 level-1 pairs, too few
to tell "not learned by this model" from "not learnable from these labels". This command asks
the second question with every pair: K-fold cross-validation grouped by seeker post (a post's
responses never straddle folds) over all 3,084 pairs, with two cheap text models whose
out-of-fold probabilities cover every pair:

- `tfidf_response`: TF-IDF of the response's word 1-2-grams and character 2-5-grams;
- `minilm_pair`: the frozen all-MiniLM-L6-v2 embeddings of the response, the post and their
  element-wise product (so the post can matter);

each under a class-balanced multinomial logistic regression (C=1), one per mechanism. Per level
k it reports the AUC of P(k) for level-k pairs against the rest, with a bootstrap 95% interval
over pairs, and the best F1 that any threshold on P(k) gives (chosen on the same pairs: a
ceiling of that rule, not a result). A level whose AUC stays at 0.5 with every pair and every
text model is one that no text classifier trained on these labels can be expected to predict.
`--train-fractions 0.125 0.25 0.5 1` gives a learning curve: each fold's model is trained on that
share of its training pairs (a seeded sample) and still scores the whole held-out fold, so a level
that more labels would teach shows a rising AUC.

`--model DIR` adds trained artifacts: the same numbers from each one's ungated whole-reply
probabilities on its own test split (what `research.empeval.ceiling` reads), and, for several artifacts,
all their test pairs pooled (a pair in two test splits counts twice). Written atomically as JSON
with `--json`; a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from empeval.mechanisms import LEVELS, MECHANISMS, SHORT_NAMES

FEATURES = ("tfidf_response", "minilm_pair")
BOOTSTRAP_ROUNDS = 1000


def best_threshold_f1(scores: np.ndarray, is_level: np.ndarray) -> float:
    """The highest F1 of "score >= t" over every threshold t (ties in score move together)."""
    scores, is_level = np.asarray(scores, dtype=float), np.asarray(is_level, dtype=bool)
    positives = int(is_level.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(is_level[order])
    # Only the last index of each run of equal scores is a reachable cut.
    sorted_scores = scores[order]
    ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    predicted = ends + 1
    return float(np.max(2 * hits[ends] / (predicted + positives)))


def rank_quality(scores: np.ndarray, is_level: np.ndarray, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> dict:
    """AUC of `scores` for the level's pairs against the rest, its bootstrap 95% interval over
    pairs, and `best_threshold_f1`."""
    from sklearn.metrics import roc_auc_score

    scores, is_level = np.asarray(scores, dtype=float), np.asarray(is_level, dtype=bool)
    n = int(is_level.sum())
    if n in (0, len(is_level)):
        return {"n": n, "auc": None, "auc_95": [None, None], "best_f1": best_threshold_f1(scores, is_level)}
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(rounds):
        pick = rng.integers(0, len(scores), len(scores))
        if 0 < is_level[pick].sum() < len(pick):
            resampled.append(roc_auc_score(is_level[pick], scores[pick]))
    auc = float(roc_auc_score(is_level, scores))
    low, high = np.percentile(resampled, [2.5, 97.5]) if resampled else (auc, auc)  # 2-3 pairs: no spread to show
    return {"n": n, "auc": auc, "auc_95": [float(low), float(high)],
            "best_f1": best_threshold_f1(scores, is_level)}


def level_qualities(probabilities: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """`rank_quality` of P(level) per level, from probabilities (pairs, levels) and labels (pairs,)."""
    return {str(k): rank_quality(probabilities[:, k], labels == k, seed=seed) for k in LEVELS}


def cross_validated_probabilities(features_of: Callable[[np.ndarray, np.ndarray], tuple], labels: np.ndarray,
                                  groups: Sequence[str], folds: int, train_fraction: float = 1.0,
                                  seed: int = 0) -> np.ndarray:
    """Out-of-fold P(level) of a class-balanced logistic regression for every pair; folds are
    grouped (`groups`: seeker post ids), and `features_of(train_rows, test_rows)` fits any
    feature extraction on the training rows only. `train_fraction` < 1 trains each fold on a
    seeded sample of that share of its training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    out = np.zeros((len(labels), len(LEVELS)))
    for fold, (train, test) in enumerate(
            GroupKFold(n_splits=folds).split(np.zeros(len(labels)), labels, np.asarray(groups))):
        if train_fraction < 1.0:
            keep = max(len(LEVELS), int(len(train) * train_fraction))
            train = np.sort(np.random.default_rng((seed, fold)).permutation(train)[:keep])
        x_train, x_test = features_of(train, test)
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000).fit(x_train, labels[train])
        out[np.ix_(test, model.classes_)] = model.predict_proba(x_test)
    return out


def tfidf_response_features(responses: Sequence[str]) -> Callable[[np.ndarray, np.ndarray], tuple]:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = np.asarray(list(responses), dtype=object)

    def features_of(train: np.ndarray, test: np.ndarray) -> tuple:
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        characters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
        x_train = hstack([words.fit_transform(texts[train]), characters.fit_transform(texts[train])]).tocsr()
        x_test = hstack([words.transform(texts[test]), characters.transform(texts[test])]).tocsr()
        return x_train, x_test

    return features_of


def minilm_pair_features(seekers: Sequence[str], responses: Sequence[str]) -> Callable[[np.ndarray, np.ndarray], tuple]:
    from empeval.fit import PostFit

    encoder = PostFit()  # the frozen offline backbone, as the fits-the-post gate uses it
    response, seeker = encoder.embed(responses), encoder.embed(seekers)
    pair = np.hstack([response, seeker, response * seeker])
    return lambda train, test: (pair[train], pair[test])


def cross_validated_learnability(frame, features: Sequence[str] = FEATURES, folds: int = 5,
                                 train_fractions: Sequence[float] = (1.0,)) -> list[dict]:
    """One entry {features, train_fraction, mechanisms: {mechanism: level_qualities}} per feature
    set and training share, over every pair of `frame` (load_epitome)."""
    builders = {"tfidf_response": lambda: tfidf_response_features(frame["response_post"]),
                "minilm_pair": lambda: minilm_pair_features(frame["seeker_post"], frame["response_post"])}
    entries = []
    for name in features:
        features_of = builders[name]()  # the frozen embeddings are computed once per feature set
        for fraction in train_fractions:
            mechanisms = {}
            for mechanism in MECHANISMS:
                labels = frame[mechanism].to_numpy()
                probabilities = cross_validated_probabilities(features_of, labels, frame["sp_id"], folds, fraction)
                mechanisms[mechanism] = level_qualities(probabilities, labels)
            entries.append({"features": name, "train_fraction": fraction, "mechanisms": mechanisms})
    return entries


def artifact_learnability(models: Sequence[Path], data_dir=None) -> dict:
    """{model or "pooled": {mechanism: level_qualities}} of trained artifacts on their test splits."""
    from research.empeval.read_outs import ungated_test_outputs
    from empeval.windows import combine_views

    per_model, pooled = {}, {m: ([], []) for m in MECHANISMS}
    for model in models:
        view_log_probabilities, owners, labels = ungated_test_outputs(model, data_dir)
        per_model[str(model)] = {}
        for m, mechanism in enumerate(MECHANISMS):
            _, probabilities = combine_views(view_log_probabilities[m], owners, len(labels))
            per_model[str(model)][mechanism] = level_qualities(probabilities, labels[:, m])
            pooled[mechanism][0].append(probabilities)
            pooled[mechanism][1].append(labels[:, m])
    if len(models) > 1:
        per_model["pooled"] = {m: level_qualities(np.concatenate(p), np.concatenate(y)) for m, (p, y) in pooled.items()}
    return per_model


def markdown(result: dict) -> str:
    cross_validation = (f"; cross-validated: {result['folds']} folds grouped by seeker post over all pairs"
                        if result["cross_validated"] else "")
    lines = ["AUC of P(level) for that level's pairs against the rest [bootstrap 95%], and the best F1 of a "
             f"threshold on P(level) (chosen on the same pairs){cross_validation}", "",
             "| source | mechanism | " + " | ".join(f"level {k}: n, AUC [95%], best F1" for k in LEVELS) + " |",
             "|---|---|" + "---|" * len(LEVELS)]
    rows = [(f"cross-validated {entry['features']}"
             + ("" if entry["train_fraction"] == 1.0 else f", {100 * entry['train_fraction']:g}% of each fold's training pairs"),
             entry["mechanisms"]) for entry in result["cross_validated"]]
    rows += [(f"`{model}` test split" if model != "pooled" else "artifacts' test splits pooled", by_mechanism)
             for model, by_mechanism in result.get("artifacts", {}).items()]
    for source, by_mechanism in rows:
        for mechanism in MECHANISMS:
            cells = []
            for k in LEVELS:
                q = by_mechanism[mechanism][str(k)]
                auc = "n/a" if q["auc"] is None else f"{q['auc']:.3f} [{q['auc_95'][0]:.3f}, {q['auc_95'][1]:.3f}]"
                cells.append(f"{q['n']}, {auc}, {100 * q['best_f1']:.1f}")
            lines.append(f"| {source} | {SHORT_NAMES[mechanism]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from therapy_align.files import atomic_write_json, check_output_path

    from empeval.epitome_data import load_epitome

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--features", nargs="*", choices=FEATURES, default=list(FEATURES),
                        help="cross-validated text models (none: only --model read-outs)")
    parser.add_argument("--train-fractions", type=float, nargs="+", default=[1.0],
                        help="shares of each fold's training pairs to train on (a learning curve)")
    parser.add_argument("--model", type=Path, action="append", default=[], help="a trained artifact (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    if not all(0 < f <= 1 for f in args.train_fractions):
        parser.error(f"--train-fractions {args.train_fractions}: each must be in (0, 1]")
    if not args.features and not args.model:
        parser.error("nothing to measure: give --features and/or --model")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = check_output_path(args.json, kind="file") if args.json else None
    # Artifacts first: a broken one is refused (by `empeval.load`) before the minutes of cross-validation.
    artifacts = artifact_learnability(args.model, args.data_dir) if args.model else None
    frame = load_epitome(args.data_dir)
    result = {"n_pairs": len(frame), "folds": args.folds,
              "cross_validated": cross_validated_learnability(frame, args.features, args.folds, args.train_fractions)}
    if artifacts is not None:
        result["artifacts"] = artifacts
    if out is not None:
        atomic_write_json(out, result)
    print(markdown(result))
    return result


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
