"""How far can a decision rule take a trained evaluator? Upper bounds on its own test split:

    python -m research.empeval.ceiling --model artifacts/empeval [--model DIR ...] [--json OUT]

**Why it exists.** IP level 1 is hardly ever predicted right (docs/evaluator.md), and the F1
anchors ask for it. Before training anything new, this asks whether the trained level heads
already hold what the target needs and only the read-out is wrong. Per mechanism, the test split
is scored once (whole replies, no gate: what the level heads know) and read out three ways:

- `argmax`: the heads' own levels;
- `best_offsets`: the decision offsets [0, b1, b2] with the best test macro-F1, found by the same
  grid search that tunes offsets on dev in training (`empeval.training.tune_offsets`, b2 free);
- `best_band`: the two cut-points on the expected level (P(1) + 2 P(2)) with the best test
  macro-F1: level 0 below the first, 1 between them, 2 above. The levels are ordered
  (none < weak < strong), so a weak level may live between the strong ones' scores even where
  its own probability never wins.

The last two are **chosen on the test split they are measured on**: they are ceilings of the
rule, not results, and a model whose ceiling stays below a target cannot reach it by any offset
or band tuned on dev. Written atomically as JSON with `--json`; a Markdown table on stdout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from empeval.mechanisms import MECHANISMS, SHORT_NAMES

BAND_QUANTILES = 201  # candidate cut-points: quantiles of the expected level (pairs of them)


def _fast_macro_f1(predicted: np.ndarray, target: np.ndarray, levels: int = 3) -> float:
    """Macro-F1 over every level, for the band search (exact F1 is recomputed for the winner)."""
    f1s = []
    for level in range(levels):
        hit = np.sum((predicted == level) & (target == level))
        support = np.sum(target == level) + np.sum(predicted == level)
        f1s.append(2.0 * hit / support if support else 0.0)
    return float(np.mean(f1s))


def band_levels(expected: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below `low`, 1 in [low, high), 2 at or above `high`."""
    return np.where(expected < low, 0, np.where(expected < high, 1, 2))


def best_band(expected: np.ndarray, labels: np.ndarray, quantiles: int = BAND_QUANTILES) -> tuple[float, float]:
    """The cut-points (low <= high) on `expected` with the best macro-F1 against `labels`
    (ties: the narrowest band, then the lowest)."""
    cuts = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, quantiles)))
    cuts = np.append(cuts, np.inf)  # a band may reach the top: no level 2 at all
    best = (-1.0, 0.0, cuts[0], cuts[0])
    for i, low in enumerate(cuts):
        for high in cuts[i:]:
            width = 0.0 if high == low else high - low  # inf - inf when neither band nor level 2 is left
            key = (round(_fast_macro_f1(band_levels(expected, low, high), labels), 9), -width)
            if key > best[:2]:
                best = (*key, low, high)
    return float(best[2]), float(best[3])


def read_out(levels: np.ndarray, labels: np.ndarray) -> dict:
    from empeval.training import f1_per_level_of, macro_f1

    return {"macro_f1": macro_f1(levels, labels), "f1_per_level": f1_per_level_of(levels, labels),
            "level_1_predicted": int(np.sum(levels == 1))}


def ceilings(view_log_probabilities: np.ndarray, owners, labels: np.ndarray) -> dict:
    """Per mechanism: argmax, best offsets and best band, each a `read_out`, from ungated view
    log-probabilities (mechanisms, views, levels) and the labels (pairs, mechanisms)."""
    from empeval.training import tune_offsets
    from empeval.windows import combine_views

    offsets = tune_offsets(view_log_probabilities, owners, labels, mechanisms=MECHANISMS, max_level_2=None)
    result = {}
    for m, mechanism in enumerate(MECHANISMS):
        target = labels[:, m]
        argmax, probabilities = combine_views(view_log_probabilities[m], owners, len(labels))
        offset_levels, _ = combine_views(view_log_probabilities[m] + np.asarray(offsets[m]), owners, len(labels))
        expected = probabilities @ np.arange(probabilities.shape[-1])
        low, high = best_band(expected, target)
        result[mechanism] = {
            "argmax": read_out(argmax, target),
            "best_offsets": {**read_out(offset_levels, target), "offsets": offsets[m]},
            # None: no upper cut-point (no level 2), as strict JSON has no infinity.
            "best_band": {**read_out(band_levels(expected, low, high), target),
                          "cut_points": [low, high if np.isfinite(high) else None]},
        }
    return result


def artifact_ceilings(model: Path, data_dir=None) -> dict:
    from research.empeval.read_outs import ungated_test_outputs

    view_log_probabilities, owners, labels = ungated_test_outputs(model, data_dir)
    return {"model": str(model), "n_test": len(labels), "mechanisms": ceilings(view_log_probabilities, owners, labels)}


def markdown(results: list[dict]) -> str:
    lines = ["Test macro-F1 % (level-1 F1 %) of the ungated whole-reply levels; the offsets and the band are "
             "chosen on the same test split: ceilings, not results", "",
             "| model | rule | " + " | ".join(SHORT_NAMES[m] for m in MECHANISMS) + " |", "|---|---|---|---|---|"]
    for result in results:
        for rule in ("argmax", "best_offsets", "best_band"):
            cells = []
            for m in MECHANISMS:
                r = result["mechanisms"][m][rule]
                cells.append(f"{100 * r['macro_f1']:.1f} ({100 * r['f1_per_level'][1]:.1f})")
            lines.append(f"| `{result['model']}` | {rule} | " + " | ".join(cells) + " |")
    if len(results) > 1:
        for rule in ("argmax", "best_offsets", "best_band"):
            cells = [f"{100 * np.mean([r['mechanisms'][m][rule]['macro_f1'] for r in results]):.1f}" for m in MECHANISMS]
            lines.append(f"| mean of {len(results)} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    from research.empeval.read_outs import read_out_command

    return read_out_command(argv, __doc__.splitlines()[0], lambda model, args: artifact_ceilings(model, args.data_dir),
                            markdown)


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
