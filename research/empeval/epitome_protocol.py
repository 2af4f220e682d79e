"""EPITOME's own F1 read-out, beside ours, for artifacts already trained:

    python -m research.empeval.epitome_protocol --model artifacts/empeval [--model DIR ...] [--orders 1000] [--json OUT]

**Why it exists.** The evaluator's F1 anchors (EPITOME, Sharma et al. 2020, and a public
reproduction) are what EPITOME's released code (behavioral-data/Empathy-Mental-Health, the
authors' own, reused by reproductions) reports, and that code does not compute macro-F1 over the
test split. Its test loop (`src/train.py`) walks the test file in order (a `SequentialSampler`)
in batches of 32 pairs, calls `evaluation_utils.compute_f1` on each batch, which is sklearn's
`f1_score(pred, labels, average="macro")`, and reports the mean of the per-batch values, the
last, shorter batch counting like the others.

sklearn's macro average runs over the levels that occur in the batch's labels **or** predictions.
A rare level (interpretation level 1: 3.7% of the pairs, about one per batch) is absent from
roughly a third of the batches; a model that never predicts it then averages only the two common
levels there (~0.8 each) instead of three levels one of which it gets wrong (~0.55). Averaging
per batch therefore lifts a model that ignores the rare level, and the more so the rarer the level
and the smaller the batch. Whole-split macro-F1 (what `metrics.json` reports, torchmetrics over
all test pairs) has no such lift. The two numbers measure different things: comparing ours with
the anchors needs the anchors' definition, which is what this module computes.

`batch_macro_f1` is that definition (checked against sklearn by a property test); the file order
of a test split is arbitrary, so `order_spread` also gives its mean and 95% range over random
orders of the same pairs. `protocol_read_out` puts both beside whole-split macro-F1 per
mechanism; the recipe's training read-out (`research.empeval.training_read_outs.epitome_protocol`)
records it in the artifact's `metrics.json` (`epitome_protocol`, for every read-out variant), and
this command computes the same for any other artifact (an older one, or one trained without it), by scoring its test split once and reading out every variant (the
published path is `whole_reply_dev_offsets`, what `Evaluator.score` gives).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from empeval.mechanisms import MECHANISMS, SHORT_NAMES

EPITOME_TEST_BATCH = 32  # src/train.py --batch_size default, used for the test DataLoader too


def present_levels_macro_f1(predicted, target) -> float:
    """Macro-F1 over the levels that occur in `target` or `predicted` (sklearn's
    `f1_score(average="macro")` with its default labels): a level absent from both is left out
    of the mean, a level only predicted counts with F1 0."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    levels = np.union1d(predicted, target)
    if levels.size == 0:
        return 0.0
    scores = []
    for level in levels:
        true_positive = np.sum((predicted == level) & (target == level))
        predicted_count, target_count = np.sum(predicted == level), np.sum(target == level)
        scores.append(2.0 * true_positive / (predicted_count + target_count))
    return float(np.mean(scores))


def batch_macro_f1(predicted, target, batch_size: int = EPITOME_TEST_BATCH) -> float:
    """EPITOME's reported macro-F1: the mean over consecutive batches of `batch_size` pairs (in
    the given order; the last batch may be shorter and weighs the same) of each batch's
    `present_levels_macro_f1`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    predicted, target = np.asarray(predicted), np.asarray(target)
    if len(predicted) != len(target):
        raise ValueError(f"{len(predicted)} predictions for {len(target)} labels")
    if len(target) == 0:
        return 0.0
    starts = range(0, len(target), batch_size)
    return float(np.mean([present_levels_macro_f1(predicted[s:s + batch_size], target[s:s + batch_size])
                          for s in starts]))


def order_spread(predicted, target, *, batch_size: int = EPITOME_TEST_BATCH, orders: int = 1000,
                 seed: int = 0) -> dict:
    """`batch_macro_f1` over `orders` random orders of the same pairs: mean, 2.5th and 97.5th
    percentile. The file order of a split is one draw of these."""
    if orders < 1:
        raise ValueError(f"orders must be >= 1, got {orders}")
    predicted, target = np.asarray(predicted), np.asarray(target)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(orders):
        order = rng.permutation(len(target))
        values.append(batch_macro_f1(predicted[order], target[order], batch_size))
    return {"mean": float(np.mean(values)), "low": float(np.percentile(values, 2.5)),
            "high": float(np.percentile(values, 97.5)), "orders": orders, "seed": seed}


def protocol_read_out(levels: dict, labels: np.ndarray, *, batch_size: int = EPITOME_TEST_BATCH,
                      orders: int = 1000, seed: int = 0) -> dict:
    """Per mechanism: whole-split macro-F1 (as in metrics.json), EPITOME's batch-averaged macro-F1
    in the given (file) order, and its spread over random orders. `levels[m]` are the predicted
    levels of the pairs whose labels are `labels[:, k]` (k: the mechanism's index)."""
    result = {}
    for k, mechanism in enumerate(MECHANISMS):
        predicted, target = np.asarray(levels[mechanism]), labels[:, k]
        result[mechanism] = {
            "macro_f1": present_levels_macro_f1(predicted, target),
            "batch_macro_f1": batch_macro_f1(predicted, target, batch_size),
            "batch_macro_f1_over_orders": order_spread(predicted, target, batch_size=batch_size, orders=orders,
                                                       seed=seed),
        }
    return {"batch_size": batch_size, **result}


def artifact_read_out(model: Path, data_dir=None, *, orders: int = 1000) -> dict:
    """Score `model`'s own test split (file order) once and read out every variant that
    metrics.json reports (`research.empeval.training_read_outs.read_out_variants`; the published path is
    `whole_reply_dev_offsets`) both ways."""
    from empeval.evaluator import load
    from research.empeval.training_read_outs import read_out_variants
    from empeval.probe import test_split_rows

    evaluator = load(model)  # checked whole before any work
    rows = test_split_rows(model, data_dir)  # file order, as the training's test read-out
    labels = rows[list(MECHANISMS)].to_numpy(copy=True)
    scores = evaluator.score_variants(rows["seeker_post"].tolist(), rows["response_post"].tolist(),
                                      read_out_variants(evaluator.fit_gate, evaluator.offsets))
    return {"model": str(model), "n_test": len(rows),
            "variants": {name: protocol_read_out(s.levels, labels, orders=orders) for name, s in scores.items()}}


def _cell(read_out: dict) -> str:
    spread = read_out["batch_macro_f1_over_orders"]
    return (f"{100 * read_out['macro_f1']:.1f} → **{100 * read_out['batch_macro_f1']:.1f}** "
            f"[{100 * spread['mean']:.1f}, {100 * spread['low']:.1f}–{100 * spread['high']:.1f}]")


def markdown(read_outs: list[dict]) -> str:
    lines = ["Test macro-F1 % per mechanism: whole split (ours, metrics.json) → EPITOME's read-out (mean "
             f"of per-batch macro-F1, batches of {EPITOME_TEST_BATCH}, file order) [its mean and 95% range over "
             "random orders]", "",
             "| model | read-out | " + " | ".join(SHORT_NAMES[m] for m in MECHANISMS) + " |", "|---|---|---|---|---|"]
    variants = list(read_outs[0]["variants"]) if read_outs else []
    for read_out in read_outs:
        for name in variants:
            lines.append(f"| `{read_out['model']}` | {name} | "
                         + " | ".join(_cell(read_out["variants"][name][m]) for m in MECHANISMS) + " |")
    if len(read_outs) > 1:
        for name in variants:
            means = []
            for m in MECHANISMS:
                values = [r["variants"][name][m] for r in read_outs]
                means.append(f"{100 * np.mean([v['macro_f1'] for v in values]):.1f} → "
                             f"**{100 * np.mean([v['batch_macro_f1'] for v in values]):.1f}** "
                             f"[{100 * np.mean([v['batch_macro_f1_over_orders']['mean'] for v in values]):.1f}]")
            lines.append(f"| mean of {len(read_outs)} | {name} | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    from research.empeval.read_outs import read_out_command

    return read_out_command(
        argv, __doc__.splitlines()[0], lambda model, args: artifact_read_out(model, args.data_dir, orders=args.orders),
        markdown,
        add_arguments=lambda parser: parser.add_argument("--orders", type=int, default=1000,
                                                         help="random orders for the spread"),
        refuse=lambda args: f"--orders must be at least 1, got {args.orders}" if args.orders < 1 else None)


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
