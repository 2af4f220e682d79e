"""RL before against after on held-out inputs: every score of a Table-1 output, per row, with
bootstrap intervals and paired differences against the SFT row the RL runs started from.

    python -m research.real_model.rl_before_after runs/results-rl --baseline annomi80 \
        --rows annomi80,grpo_s42,grpo_s1,dpo,grpo_unguarded --out docs/research/data/rl-before-after.md

Read from each cell's stored scores (``cells/<row>__<prompt>/scores-*.jsonl``, made by
``recipes/eval_paper.py``); the RL reward is computed here, once per cell, into
``scores-reward.jsonl`` beside them (resumable, refused if made by another reward), with the reward
of the GRPO ``small`` preset (its length scale is the RL runs' 48-token completions) so that the
terms read as the runs read them. The unit resampled is the input: every row answered the same
inputs, so a draw takes the same inputs in every row and the differences are paired. R:Q, %CR and
open % are ratios over the drawn replies' MITI labels; distinct-2 is within each reply;
harm is flagged replies per 1,000.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from research.real_model import emit, paired_difference, read_jsonl
from research.real_model import percentile_interval as interval

EMPEVAL_KEYS = ("emotional_reactions", "interpretations", "explorations")
WEIGHTS = (0.2, 0.4, 0.4)  # paper Table 1: final = 0.2 E + 0.4 I + 0.4 X
TERMS = ("empeval", "specificity", "copy", "template", "repetition", "questions", "length", "safety")
GUARDS = ("len_tokens", "template_rate", "specificity", "copy_rate", "repetition", "question_rate")


def small_reward():
    """The GRPO small preset's reward (recipes/ is not a package: put it on the path as a recipe does)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "recipes"))
    from rl_empathy import SMALL

    return SMALL.reward


def reward_scores(cell: Path, force: bool = False) -> dict[str, dict]:
    from therapy_align.rl.reward import GuardedReward, RewardScorer
    from therapy_align.scoring import Pair, score_pairs

    gens = read_jsonl(cell / "generations.jsonl")
    pairs = [Pair(id=i, seeker=g["text"], response=g["response"]) for i, g in gens.items()]
    scores = score_pairs(RewardScorer(GuardedReward(small_reward())), pairs, cell / "scores-reward.jsonl", force=force)
    return {p.id: s for p, s in zip(pairs, scores, strict=True)}


def per_input(cell: Path, rewards=reward_scores) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """(ids, per-input numeric columns, MITI labels), in id order; ``rewards(cell)`` gives each id's
    reward terms and total."""
    empeval, judge = read_jsonl(cell / "scores-empeval.jsonl"), read_jsonl(cell / "scores-judge.jsonl")
    guards, safety = read_jsonl(cell / "scores-guards.jsonl"), read_jsonl(cell / "scores-safety.jsonl")
    from therapy_align.evaluation.guards import distinct_n

    miti, gens, reward = read_jsonl(cell / "scores-miti.jsonl"), read_jsonl(cell / "generations.jsonl"), rewards(cell)
    ids = sorted(gens)
    cols: dict[str, list[float]] = {}

    def put(name: str, value: float) -> None:
        cols.setdefault(name, []).append(float(value))

    for i in ids:
        for prefix, scores in (("", empeval[i]), ("judge_", judge[i])):
            levels = [scores[k]["level"] for k in EMPEVAL_KEYS]
            for short, level in zip("EIX", levels, strict=True):
                put(prefix + short, 1000 * level)
            put(prefix + "final", 1000 * sum(w * v for w, v in zip(WEIGHTS, levels, strict=True)))
        put("reward_total", reward[i]["total"])
        for term in TERMS:
            put(f"reward_{term}", reward[i]["terms"].get(term, 0.0))
        for g in GUARDS:
            put(g, guards[i][g])
        put("harm_per_1000", 1000 * bool(safety[i]["reply_flagged"]))
        # within each reply: pooled distinct-2 (the report's column) shrinks under resampling with
        # replacement, since a drawn reply's repeats add no new bigram, so it has no honest interval
        put("distinct_2", distinct_n([gens[i]["response"]], 2))
    labels = [miti[i]["label"] for i in ids]
    return ids, {k: np.asarray(v) for k, v in cols.items()}, labels


def statistics(cols: dict[str, np.ndarray], labels: list[str], pick: np.ndarray) -> dict[str, float | None]:
    from miti.summary import summarise

    out: dict[str, float | None] = {k: float(v[pick].mean()) for k, v in cols.items()}
    summary = summarise([labels[j] for j in pick])
    out["R:Q"], out["%CR"], out["open %"] = summary["r_q"], summary["pct_complex_reflections"], summary["pct_open_questions"]
    return out


ORDER = ("judge_final", "judge_E", "judge_I", "judge_X", "final", "E", "I", "X", "reward_total",
         *(f"reward_{t}" for t in TERMS), "len_tokens", "distinct_2", *GUARDS[1:], "R:Q", "%CR", "open %", "harm_per_1000")


def bootstrap(out: Path, rows: list[str], prompt: str, *, draws: int = 1000, seed: int = 0, rewards=reward_scores) -> dict:
    data = {row: per_input(out / "cells" / f"{row}__{prompt}", rewards) for row in rows}
    ids = data[rows[0]][0]
    for row in rows[1:]:
        if data[row][0] != ids:
            raise SystemExit(f"error: {row} answered other inputs than {rows[0]}: not a paired comparison")
    n = len(ids)
    rng = np.random.default_rng(seed)
    everyone = np.arange(n)
    point = {row: statistics(*data[row][1:], everyone) for row in rows}
    samples: dict[str, list[dict]] = {row: [] for row in rows}
    for _ in range(draws):
        pick = rng.integers(0, n, n)
        for row in rows:
            samples[row].append(statistics(*data[row][1:], pick))
    replies = {row: read_jsonl(out / "cells" / f"{row}__{prompt}" / "generations.jsonl") for row in rows}
    same = {row: sum(replies[row][i]["response"] == replies[rows[0]][i]["response"] for i in ids) for row in rows[1:]}
    return {"n": n, "point": point, "samples": samples, "same_as_first": same}


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def signed(value: float) -> str:
    return ("-" if value < 0 else "+") + fmt(abs(value))


def report(result: dict, rows: list[str], baseline: str) -> str:
    point, samples = result["point"], result["samples"]
    lines = [f"{result['n']} held-out inputs; percentile bootstrap over inputs (1,000 draws, seed 0), 95% intervals.",
             "", "| measure | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for key in ORDER:
        cells = []
        for row in rows:
            bounds = interval(s[key] for s in samples[row])
            value = point[row][key]
            cells.append("–" if value is None else f"{fmt(value)} [{fmt(bounds[0])}, {fmt(bounds[1])}]")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "Greedy replies word for word the same as `" + rows[0] + "`'s: "
              + ", ".join(f"{row} {k} of {result['n']}" for row, k in result["same_as_first"].items()) + "."]
    others = [r for r in rows if r != baseline]
    lines += ["", f"Paired differences, row − `{baseline}` (same inputs in each draw); **bold**: the interval excludes 0.", "",
              "| measure | " + " | ".join(f"{r} − {baseline}" for r in others) + " |", "|---|" + "---|" * len(others)]
    for key in ORDER:
        cells = []
        for row in others:
            found = paired_difference(point, samples, row, baseline, key)
            if found is None:
                cells.append("–")
                continue
            diff, bounds = found
            text = f"{signed(diff)} [{signed(bounds[0])}, {signed(bounds[1])}]"
            cells.append(f"**{text}**" if bounds[0] > 0 or bounds[1] < 0 else text)
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a Table-1 output directory (holds cells/)")
    parser.add_argument("--rows", default="annomi80,grpo_s42,dpo")
    parser.add_argument("--baseline", default="annomi80")
    parser.add_argument("--prompt", default="standard")
    parser.add_argument("--out", dest="target", type=Path, default=None, help="write the markdown here")
    args = parser.parse_args(argv)
    rows = args.rows.split(",")
    if args.baseline not in rows:
        raise SystemExit(f"error: --baseline {args.baseline} is not among --rows")
    return emit(report(bootstrap(args.out, rows, args.prompt), rows, args.baseline), args.target)


if __name__ == "__main__":
    main()
