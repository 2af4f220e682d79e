"""A seed ensemble of evaluators trained on one split, measured on that split:

    python -m research.empeval.ensemble --members artifacts/empeval DIR [DIR ...] [--out DIR]

Members are artifacts of `therapy-align empeval train` that differ only in initialisation
(`--train.seed=N --train.split_seed=S`), so they share the dev and test pairs. Per view, the
ensemble averages the members' gated level probabilities (each member with its own fits-the-post
calibration), tunes the IP/EX decision offsets on dev as a single artifact does
(`empeval.training.tune_offsets`), and scores the test split through the same whole-reply
combination; the same responses after other seekers' posts give the seeker-shuffle drop.
Written, atomically, to `<out>/ensemble.md` and `<out>/ensemble.json`: test macro-F1, F1 per
level, the ranking AUC of P(level 1) and the shuffle drop per mechanism, for every member alone
(its own dev-tuned offsets, as published) and for the ensemble.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from empeval.mechanisms import MECHANISMS, SHORT_NAMES


def _split_pairs(member: Path, frame, split: str):
    from empeval.artifact import SPLIT_FILE

    ids = set(json.loads((member / SPLIT_FILE).read_text(encoding="utf-8"))[split])
    rows = frame[frame["rp_id"].isin(ids)]
    return (rows["seeker_post"].tolist(), rows["response_post"].tolist(), rows[list(MECHANISMS)].to_numpy(copy=True),
            rows["sp_id"].tolist())


def check_same_split(members: list[Path]) -> None:
    """Every member must hold the same dev and test pairs, or the ensemble would be tuned or
    tested on another member's training pairs."""
    from empeval.artifact import SPLIT_FILE, ArtifactError

    first = json.loads((members[0] / SPLIT_FILE).read_text(encoding="utf-8"))
    for member in members[1:]:
        other = json.loads((member / SPLIT_FILE).read_text(encoding="utf-8"))
        for split in ("dev", "test"):
            if sorted(other[split]) != sorted(first[split]):
                raise ArtifactError(f"its {split} split differs from {members[0]}'s", file=member / SPLIT_FILE,
                                    field=split, fix="train every member with the same --train.split_seed")


def level_one_auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Ranking AUC of P(level 1) for the level-1 pairs against all others (0.5 = chance)."""
    import torch
    from torchmetrics.functional.classification import binary_auroc

    target = labels == 1
    if target.all() or not target.any():
        return float("nan")
    return float(binary_auroc(torch.as_tensor(probabilities[:, 1]), torch.as_tensor(target.astype(np.int64))))


def read_out(view_log_probabilities: np.ndarray, owners, labels: np.ndarray, offsets,
             shuffled: tuple[np.ndarray, list[int]] | None = None) -> dict:
    """Whole-reply levels with `offsets`, against `labels`: macro-F1, F1 per level, level-1 AUC,
    and with `shuffled` (the same responses' view log-probabilities after other seekers' posts,
    and their owners) the drop of the mean level in % (the evaluator's seeker-shuffle check)."""
    from research.empeval.epitome_protocol import batch_macro_f1
    from empeval.training import f1_per_level_of, macro_f1
    from empeval.windows import combine_views

    result = {}
    for m_index, mechanism in enumerate(MECHANISMS):
        adjust = np.asarray(offsets[m_index], dtype=np.float64)
        levels, probabilities = combine_views(view_log_probabilities[m_index] + adjust, owners, len(labels))
        result[mechanism] = {"macro_f1": macro_f1(levels, labels[:, m_index]),
                             "epitome_batch_macro_f1": batch_macro_f1(levels, labels[:, m_index]),
                             "f1_per_level": f1_per_level_of(levels, labels[:, m_index]),
                             "level_1_auc": level_one_auc(probabilities, labels[:, m_index])}
        if shuffled is not None:
            shuffled_levels, _ = combine_views(shuffled[0][m_index] + adjust, shuffled[1], len(labels))
            real = levels.mean()
            result[mechanism]["shuffle_drop_percent"] = 100.0 * (1 - shuffled_levels.mean() / real) if real else None
    return result


def evaluate(members: list[Path], data_dir=None, shuffle_seed: int = 0, max_level_2_offset: float | None = None) -> dict:
    from empeval.epitome_data import load_epitome
    from empeval.evaluator import GATED, load
    from empeval.probe import shuffled_seekers
    from empeval.training import tune_offsets

    evaluators = [load(member) for member in members]  # each checked whole before any work
    check_same_split(members)
    frame = load_epitome(data_dir)
    dev, test = _split_pairs(members[0], frame, "dev"), _split_pairs(members[0], frame, "test")
    shuffled_test_seekers = shuffled_seekers(test[0], test[3], shuffle_seed)
    results, probabilities = {}, {"dev": [], "test": [], "shuffled": []}
    for member, evaluator in zip(members, evaluators):
        # Views depend only on the tokenizer and the window, which members share: the same owners.
        logits, owners = {}, {}
        for name, (seekers, responses) in {"dev": dev[:2], "test": test[:2],
                                           "shuffled": (shuffled_test_seekers, test[1])}.items():
            logits[name], owners[name] = evaluator.gated_view_logits(seekers, responses)
            probabilities[name].append(np.exp(logits[name]))
        results[str(member)] = read_out(logits["test"], owners["test"], test[2], evaluator.offsets,
                                        (logits["shuffled"], owners["shuffled"]))
    mean = {name: np.log(np.mean(values, axis=0)) for name, values in probabilities.items()}
    offsets = tune_offsets(mean["dev"], owners["dev"], dev[2], mechanisms=GATED, max_level_2=max_level_2_offset)
    results["ensemble"] = read_out(mean["test"], owners["test"], test[2], offsets, (mean["shuffled"], owners["shuffled"]))
    return {"members": [str(m) for m in members], "n_dev": len(dev[2]), "n_test": len(test[2]),
            "shuffle_seed": shuffle_seed, "max_level_2_offset": max_level_2_offset,
            "ensemble_offsets": dict(zip(MECHANISMS, offsets)), "results": results}


def markdown(report: dict) -> str:
    lines = [f"Seed ensemble on one split ({report['n_test']} test pairs): test macro-F1 % "
             "(F1 of level 0 / 1 / 2; AUC of P(level 1); seeker-shuffle drop of the mean level %)", "",
             "| model | " + " | ".join(SHORT_NAMES[m] for m in MECHANISMS) + " |", "|---|---|---|---|"]
    for name, result in report["results"].items():
        cells = [f"{100 * r['macro_f1']:.1f} ({' / '.join(f'{100 * v:.0f}' for v in r['f1_per_level'])}; "
                 f"{r['level_1_auc']:.2f}; {r['shuffle_drop_percent']:.0f}%)" for r in (result[m] for m in MECHANISMS)]
        lines.append(f"| {'**ensemble**' if name == 'ensemble' else f'`{name}`'} | " + " | ".join(cells) + " |")
    lines += ["", "The same levels read out as EPITOME's code reports F1, the definition of the anchors (mean of "
              "per-batch macro-F1, batches of 32 in file order; research/empeval/epitome_protocol.py): "
              + "; ".join(f"{'ensemble' if name == 'ensemble' else f'`{name}`'} "
                          + " / ".join(f"{100 * result[m]['epitome_batch_macro_f1']:.1f}" for m in MECHANISMS)
                          for name, result in report["results"].items() if "epitome_batch_macro_f1" in result[MECHANISMS[0]])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from therapy_align.files import atomic_write_json, atomic_write_text, check_output_path

    from empeval.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", nargs="+", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=Path("artifacts/empeval-ensemble"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-level-2-offset", type=float, default=TrainConfig.max_gated_level_2_offset,
                        help="cap of the ensemble's IP/EX level-2 offset; default: a single artifact's "
                             "(TrainConfig.max_gated_level_2_offset)")
    parser.add_argument("--shuffle-seed", type=int, default=0, help="the permutation of the seeker-shuffle read-out")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = check_output_path(args.out, kind="dir")
    report = evaluate(args.members, args.data_dir, args.shuffle_seed, args.max_level_2_offset)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ensemble.json", report)
    text = markdown(report)
    atomic_write_text(out / "ensemble.md", text)
    print(text)
    return report


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
