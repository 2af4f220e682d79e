"""The expert ("human") MITI rows from AnnoMI's codes: `therapy-align miti human`.

Two counting schemes, both after the majority vote of `miti.labels`:
* ``main behaviour``: one code per utterance (``main_therapist_behaviour`` + subtype), what the
  classifier predicts; the rows models are compared with.
* ``all codes``: MITI's own counting: a reflection or question counts wherever an annotator coded
  one (``reflection_subtype``/``question_subtype``), even beside another main behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from miti.labels import load_labelled_turns
from miti.summary import METRICS, multicode_counts, summarise, summarise_counts
from therapy_align.data.splits import TRAIN_FRACTION, split_transcript_ids

RESOLUTION = ("majority vote over the annotators of each utterance (428 utterances of 7 transcripts have "
              "10 annotators); a tie goes to the annotation first in the file")


def group_rows(name: str, turns: pd.DataFrame) -> list[dict]:
    main = summarise(turns["label"])
    codes = summarise_counts(multicode_counts(turns["reflection_subtype"], turns["question_subtype"]))
    base = {"row": name, "n_transcripts": int(turns["transcript_id"].nunique()), "n_turns": len(turns)}
    return [
        {**base, "scheme": scheme, **{m: s[m] for m in METRICS}, "counts": s["counts"], "ratings": s["ratings"]}
        for scheme, s in (("main behaviour", main), ("all codes", codes))
    ]


def human_rows(data_dir: str | Path | None = None, *, seed: int = 0) -> dict:
    turns = load_labelled_turns(data_dir)
    high = turns[turns["quality"] == "high"]
    heldout = split_transcript_ids(sorted(set(high["transcript_id"])), fraction=TRAIN_FRACTION, seed=seed)[1]
    rows = (group_rows("human, high-quality sessions", high)
            + group_rows("human, low-quality sessions", turns[turns["quality"] == "low"])
            + group_rows("human, held-out high-quality sessions (annomi80's 20%)",
                         high[high["transcript_id"].isin(heldout)]))
    return {"resolution": RESOLUTION, "heldout_transcripts": heldout, "rows": rows}


def classifier_row(model: str | Path) -> dict | None:
    """The classifier's scores on the held-out high-quality sessions (from its artifact's metrics.json),
    to show beside the experts'; None when ``model`` has no such metrics."""
    from miti.artifact import METRICS_FILE, read_json

    path = Path(model) / METRICS_FILE
    if not path.is_file():
        return None
    check = read_json(path).get("miti_heldout_high", {}).get("classifier")
    if not check:
        return None
    scores = check["classifier"]
    return {"row": f"classifier ({model}), held-out high-quality sessions", "scheme": "predicted",
            "n_transcripts": len(check["transcripts"]), "n_turns": scores["n"],
            **{m: scores[m] for m in METRICS}, "counts": scores["counts"],
            "relative_difference": check["relative_difference"]}


def _fmt(value: float | None, percent: bool) -> str:
    return "n/a" if value is None else f"{value:.1f}%" if percent else f"{value:.2f}"


def markdown_table(result: dict) -> str:
    lines = ["| row | counting | transcripts | turns | R:Q | %CR | open % |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {r['scheme']} | {r['n_transcripts']} | {r['n_turns']} | "
                     f"{_fmt(r['r_q'], False)} | {_fmt(r['pct_complex_reflections'], True)} | "
                     f"{_fmt(r['pct_open_questions'], True)} |")
    lines.append("| MITI 4.2.1 fair / good | | | | 1.00 / 2.00 | 40% / 50% | |")
    lines.append(f"\nAnnotator overlap: {result['resolution']}.")
    return "\n".join(lines)
