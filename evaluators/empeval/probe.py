"""`therapy-align empeval probe`: the evaluator's blind spots, measured.

Every probe keeps the seeker posts of the EPITOME test split (the artifact's own `split.json`)
and replaces the responses; its scores are set against the real responses to the same seekers.

  real                 the human responses of the test split (the reference row)
  seeker_shuffle       the same responses, each before ANOTHER test seeker's post
  canned               one fixed empathic-sounding reply for every seeker
  repeat_x3            each real response repeated three times
  copy_seeker          the seeker's own post sent back as the reply
  empty                "" (scored 0 without the model)
  filler               a contentless filler reply
  neutral_long         ~200 tokens of neutral text alone (the control of the next row)
  late_empathy         the same neutral text, then one empathic sentence (after >128 tokens)
  empathy_sentence     that empathic sentence alone (what late_empathy should get credit for)

Columns: mean level per mechanism, the Table-1 final score on the per-1,000 scale, and the change
of each mean level against `real` (or, for late_empathy, against empathy_sentence).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from empeval.mechanisms import MECHANISMS, PAPER_INPUTS, SHORT_NAMES, final_score

CANNED_REPLY = (
    "I'm so sorry you're going through this. It sounds like you feel completely alone right now. "
    "What do you think is causing this?"
)
FILLER_REPLY = "Okay. I see. Thanks for posting. Hmm, alright. Let me know."
NEUTRAL_SENTENCES = (
    "The city library opens at nine in the morning and closes at six in the evening on weekdays.",
    "Its reading room has four long tables, a row of desk lamps and a shelf of local newspapers.",
    "Books can be borrowed for three weeks and renewed twice online or at the front desk.",
    "The bus stop outside is served by lines 12 and 40, which run every fifteen minutes.",
    "On Saturdays the building hosts a small market selling bread, vegetables and used books.",
    "A new heating system was installed last year, and the roof was repaired in the spring.",
    "Parking is available behind the building, with two spaces reserved for bicycles and vans.",
    "The café on the ground floor serves tea, coffee and sandwiches until four in the afternoon.",
    "Printers and scanners are on the second floor, next to the map collection and the archive.",
    "The garden at the back has a fountain, three benches and a path lined with old oak trees.",
    "Opening hours change during public holidays, and a notice is posted by the main entrance.",
    "The staff sort returned books every morning before the doors open to the public.",
)
EMPATHY_SENTENCE = (
    "I'm really sorry you're going through this; it sounds like you feel completely alone and "
    "exhausted right now, and that must be so hard. What has been weighing on you the most?"
)


def neutral_text(tokenizer, min_tokens: int) -> str:
    """Neutral sentences, in order and repeated as needed, until at least `min_tokens` tokens."""
    parts: list[str] = []
    k = 0
    while len(tokenizer(" ".join(parts), add_special_tokens=False)["input_ids"]) < min_tokens:
        parts.append(NEUTRAL_SENTENCES[k % len(NEUTRAL_SENTENCES)])
        k += 1
    return " ".join(parts)


def shuffled_seekers(seekers: list[str], sp_ids: list[str], seed: int = 0) -> list[str]:
    """Each position gets the post of another seeker (different sp_id): a seeded permutation,
    with any position left on its own seeker swapped with a random other one."""
    n = len(seekers)
    rng = np.random.default_rng((seed, 104729))
    order = rng.permutation(n)
    ids = np.asarray(sp_ids, dtype=object)
    for _ in range(1000):
        same = np.flatnonzero(ids[order] == ids)
        if len(same) == 0 or n < 2:
            break
        for i in same:
            j = int(rng.integers(n))
            order[i], order[j] = order[j], order[i]
    return [seekers[k] for k in order]


def mean_levels(scores) -> dict[str, float]:
    return {m: float(np.mean(scores.levels[m])) if len(scores) else 0.0 for m in MECHANISMS}


def _row(name: str, scores, reference: dict[str, float] | None, against: str) -> dict:
    means = mean_levels(scores)
    expected = {m: float(np.mean(scores.expected_levels(m))) if len(scores) else 0.0 for m in MECHANISMS}
    row = {
        "probe": name,
        "n": len(scores),
        "mean_level": means,
        "mean_expected_level": expected,
        # Table 1's scale: sums per 1,000 inputs, final = 0.2 E + 0.4 I + 0.4 X.
        "final_score": final_score(*(means[m] * PAPER_INPUTS for m in MECHANISMS)),
        "against": against,
    }
    if reference is not None:
        row["change_percent"] = {
            m: (100.0 * (means[m] - reference[m]) / reference[m] if reference[m] else None) for m in MECHANISMS
        }
    return row


def run_probes(evaluator, seekers: list[str], responses: list[str], sp_ids: list[str], seed: int = 0) -> list[dict]:
    """One row per probe (see the module docstring)."""
    n = len(seekers)
    real = evaluator.score(seekers, responses)
    reference = mean_levels(real)
    neutral = neutral_text(evaluator.tokenizer, 200)
    rows = [_row("real", real, None, "")]
    variants = {
        "seeker_shuffle": (shuffled_seekers(seekers, sp_ids, seed), responses),
        "canned": (seekers, [CANNED_REPLY] * n),
        "repeat_x3": (seekers, [" ".join([r] * 3) for r in responses]),
        "copy_seeker": (seekers, list(seekers)),
        "empty": (seekers, [""] * n),
        "filler": (seekers, [FILLER_REPLY] * n),
        "neutral_long": (seekers, [neutral] * n),
    }
    for name, (s, r) in variants.items():
        rows.append(_row(name, evaluator.score(s, r), reference, "real"))
    sentence = evaluator.score(seekers, [EMPATHY_SENTENCE] * n)
    late = evaluator.score(seekers, [f"{neutral} {EMPATHY_SENTENCE}"] * n)
    rows.append(_row("empathy_sentence", sentence, reference, "real"))
    late_row = _row("late_empathy", late, mean_levels(sentence), "empathy_sentence")
    # Per pair: does the long reply get at least the sentence's own level?
    late_row["credit_kept"] = {
        m: float(np.mean(np.asarray(late.levels[m]) >= np.asarray(sentence.levels[m]))) if n else 0.0
        for m in MECHANISMS
    }
    rows.append(late_row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| probe | n | ER | IP | EX | final (Table-1 scale) | ER / IP / EX change vs | ER | IP | EX |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        change = row.get("change_percent") or {}

        def pct(m):
            value = change.get(m)
            return "" if value is None else f"{value:+.0f}%"

        lines.append(
            f"| {row['probe']} | {row['n']} | "
            + " | ".join(f"{row['mean_level'][m]:.3f}" for m in MECHANISMS)
            + f" | {row['final_score']:.1f} | {row['against']} | "
            + " | ".join(pct(m) for m in MECHANISMS) + " |"
        )
    late = next((r for r in rows if "credit_kept" in r), None)
    if late:
        kept = ", ".join(f"{SHORT_NAMES[m]} {100 * late['credit_kept'][m]:.0f}%" for m in MECHANISMS)
        lines.append("")
        lines.append(f"late_empathy keeps at least the sentence's own level on: {kept} of the seekers.")
    return "\n".join(lines) + "\n"


def test_split_rows(artifact: str | os.PathLike, data_dir=None, limit: int = 0):
    """The EPITOME rows (file order) of the artifact's test split; a missing, unreadable or empty
    split is a one-line error naming split.json."""
    from empeval.artifact import SPLIT_FILE, ArtifactError
    from empeval.epitome_data import load_epitome

    path = Path(artifact) / SPLIT_FILE
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
        test_ids = set(split["test"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ArtifactError(f"no readable test split ({err})", file=path, field="test",
                            fix="use an artifact written by `therapy-align empeval train`") from None
    if not test_ids:
        raise ArtifactError("the test split is empty", file=path, field="test",
                            fix="use an artifact written by `therapy-align empeval train`")
    frame = load_epitome(data_dir)
    test = frame[frame["rp_id"].isin(test_ids)]
    return test.iloc[:limit] if limit else test


def test_split_pairs(artifact: str | os.PathLike, data_dir=None, limit: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(seekers, responses, sp_ids) of the artifact's test split, from EPITOME."""
    test = test_split_rows(artifact, data_dir, limit)
    return test["seeker_post"].tolist(), test["response_post"].tolist(), test["sp_id"].tolist()


def probe(model: str | os.PathLike, out: str | os.PathLike, *, data_dir=None, limit: int = 0, seed: int = 0) -> list[dict]:
    """Run the probe suite on the artifact `model`; write `probe.md` and `probe.json` in `out`."""
    from therapy_align.files import atomic_write_json, atomic_write_text, check_output_path

    from empeval.evaluator import load

    out = check_output_path(out, kind="dir")
    evaluator = load(model)  # checked whole before any work
    seekers, responses, sp_ids = test_split_pairs(model, data_dir, limit)
    rows = run_probes(evaluator, seekers, responses, sp_ids, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "probe.json", {"model": str(model), "n_test_pairs": len(seekers), "rows": rows})
    atomic_write_text(out / "probe.md", f"EMP-EVAL probe of `{model}` on its EPITOME test split\n\n" + markdown_table(rows))
    return rows


def run_probe_command(model, out=None, data_dir=None, limit: int = 0) -> None:
    """`therapy-align empeval probe`: run, write, print the Markdown table."""
    import os as _os

    _os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(out) if out is not None else Path(model) / "probe"
    rows = probe(model, out, data_dir=data_dir, limit=limit)
    print(markdown_table(rows))
    print(f"wrote {out / 'probe.md'} and {out / 'probe.json'}")
