"""AnnoMI's expert codes as one MI behaviour per therapist utterance, and the transcript split.

Label of one annotation: ``main_therapist_behaviour`` refined by its subtype,
``reflection`` -> ``reflection_simple``/``reflection_complex`` (``reflection_subtype``),
``question`` -> ``question_open``/``question_closed`` (``question_subtype``), ``therapist_input``
and ``other`` as they are. A reflection or question without a subtype has no label (1 annotation).

Annotator overlap: AnnoMI-full.csv codes 428 utterances (7 transcripts) by all 10 annotators.
Each field resolves by **majority vote** over the annotators who gave it a value; a **tie goes
to the value of the annotation that comes first in the file** (the same row the data pipeline
keeps when it deduplicates, ``therapy_align.data.transcripts``). 11 utterances tie.

Kept free of torch: `therapy-align miti human` and the baselines run on pandas alone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from therapy_align.data.splits import TRAIN_FRACTION, split_transcript_ids
from therapy_align.data.transcripts import ANNOMI_FILES, read_text_strict
from therapy_align.errors import UserError
from therapy_align.paths import data_file

LABELS: tuple[str, ...] = (
    "reflection_simple", "reflection_complex", "question_open", "question_closed", "therapist_input", "other",
)
REQUIRED_COLUMNS = ("mi_quality", "transcript_id", "topic", "utterance_id", "interlocutor", "utterance_text",
                    "annotator_id", "main_therapist_behaviour", "reflection_subtype", "question_subtype")
SPLIT_SIDES = ("train", "dev", "test")


def behaviour_label(main: object, reflection_subtype: object, question_subtype: object) -> str | None:
    """One annotation's label in LABELS, or None when the behaviour is missing or lacks its subtype."""
    if main == "reflection":
        return f"reflection_{reflection_subtype}" if reflection_subtype in ("simple", "complex") else None
    if main == "question":
        return f"question_{question_subtype}" if question_subtype in ("open", "closed") else None
    return main if main in ("therapist_input", "other") else None


def majority(values: list) -> object:
    """The most frequent non-missing value; a tie goes to the tied value seen first. None if none."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))]
    if not present:
        return None
    counts = Counter(present)
    top = max(counts.values())
    return next(v for v in present if counts[v] == top)


def annomi_csv(data_dir: str | Path | None = None, path: str | Path | None = None) -> Path:
    return Path(path) if path is not None else data_file(ANNOMI_FILES["full"], data_dir)


def load_labelled_turns(data_dir: str | Path | None = None, *, path: str | Path | None = None) -> pd.DataFrame:
    """One row per therapist utterance with a resolved label.

    Columns: ``id`` (``"<transcript>-<utterance>"``), ``transcript_id`` (str), ``utterance_id``,
    ``quality``, ``topic``, ``client`` (the nearest preceding client utterance, "" if none),
    ``therapist``, ``label``, ``n_annotators``, ``agreement`` (share of annotators giving ``label``),
    and the resolved multi-code fields ``reflection_subtype``/``question_subtype`` (MITI counts a
    reflection or question wherever an annotator coded one, even when it is not the main behaviour).
    """
    csv_path = annomi_csv(data_dir, path)
    if not csv_path.is_file():
        raise UserError("AnnoMI file not found", file=csv_path, fix="pass --data-dir (github.com/uccollab/AnnoMI)")
    import io

    frame = pd.read_csv(io.StringIO(read_text_strict(csv_path)), keep_default_na=False, na_values=[""],
                        dtype={"utterance_text": object})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"missing column(s) {', '.join(missing)}", file=csv_path, line=1,
                        fix="use AnnoMI-full.csv (the file with the annotators' codes)")
    frame["transcript_id"] = frame["transcript_id"].astype(str)
    frame["label"] = [behaviour_label(*row) for row in
                      frame[["main_therapist_behaviour", "reflection_subtype", "question_subtype"]].itertuples(index=False)]
    for column in ("reflection_subtype", "question_subtype"):  # "none" (no such code) is a vote too
        frame[column] = frame[column].where(frame[column].isin(["simple", "complex", "open", "closed"]), "none")
    keys = ["transcript_id", "utterance_id"]
    grouped = frame.groupby(keys, sort=False)
    resolved = grouped.agg(
        quality=("mi_quality", "first"), topic=("topic", "first"), interlocutor=("interlocutor", "first"),
        text=("utterance_text", "first"), n_annotators=("annotator_id", "nunique"),
        label=("label", lambda s: majority(list(s))),
        reflection_subtype=("reflection_subtype", lambda s: majority(list(s))),
        question_subtype=("question_subtype", lambda s: majority(list(s))),
    ).reset_index()
    agreement = grouped["label"].agg(list).reset_index(drop=True)
    resolved["agreement"] = [
        (votes.count(label) / len(votes)) if label is not None else 0.0
        for votes, label in zip(agreement, resolved["label"])
    ]
    resolved["utterance_id"] = resolved["utterance_id"].astype(int)
    resolved = resolved.sort_values(["transcript_id", "utterance_id"], key=_natural_key).reset_index(drop=True)
    client = []
    for _, rows in resolved.groupby("transcript_id", sort=False):
        last = ""
        for speaker, text in zip(rows["interlocutor"], rows["text"]):
            client.append(last)
            if str(speaker).strip().lower() == "client":
                last = str(text).strip() if isinstance(text, str) else ""
    resolved["client"] = client
    turns = resolved[(resolved["interlocutor"].str.lower() == "therapist") & resolved["label"].notna()].copy()
    turns["therapist"] = turns["text"].astype(str).str.strip()
    turns = turns[turns["therapist"] != ""]
    turns["id"] = turns["transcript_id"] + "-" + turns["utterance_id"].astype(str)
    for column in ("reflection_subtype", "question_subtype"):
        turns[column] = turns[column].where(turns[column] != "none", None)
    columns = ["id", "transcript_id", "utterance_id", "quality", "topic", "client", "therapist", "label",
               "n_annotators", "agreement", "reflection_subtype", "question_subtype"]
    return turns[columns].reset_index(drop=True)


def _natural_key(column: pd.Series) -> pd.Series:
    if column.name == "transcript_id":
        return column.map(lambda v: (0, int(v), "") if str(v).isdigit() else (1, 0, str(v)))
    return column


def split_transcripts(turns: pd.DataFrame, *, seed: int = 0, dev_fraction: float = 0.1) -> dict[str, list[str]]:
    """Transcript ids of train / dev / test, by transcript.

    test = the ``annomi80`` split's held-out 20% of high-quality transcripts (the same call and seed
    as ``therapy_align.data.dataset_build``, so the multi-turn evaluation's sessions are unseen)
    plus a seeded 20% of the low-quality ones; dev = a seeded ``dev_fraction`` of the rest (for
    checkpoint selection); train = the remainder.
    """
    by_quality = turns.groupby("quality")["transcript_id"].agg(lambda s: sorted(set(s)))
    high_train, high_test = split_transcript_ids(by_quality.get("high", []), fraction=TRAIN_FRACTION, seed=seed)
    low_train, low_test = split_transcript_ids(by_quality.get("low", []), fraction=TRAIN_FRACTION, seed=seed)
    train, dev = split_transcript_ids(high_train + low_train, fraction=1 - dev_fraction, seed=seed)
    return {"train": train, "dev": dev, "test": sorted(high_test + low_test, key=lambda v: (len(v), v))}


def heldout_high_ids(seed: int = 0, data_dir: str | Path | None = None) -> list[str]:
    """The ``annomi80`` split's held-out high-quality transcript ids."""
    turns = load_labelled_turns(data_dir)
    high = sorted(set(turns.loc[turns["quality"] == "high", "transcript_id"]))
    return split_transcript_ids(high, fraction=TRAIN_FRACTION, seed=seed)[1]
