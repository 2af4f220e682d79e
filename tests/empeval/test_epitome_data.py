"""Loading the three EPITOME files into one table, with errors that name file, row and field."""

import pandas as pd
import pytest

from empeval.epitome_data import EpitomeFormatError, load_epitome
from empeval.mechanisms import EPITOME_FILES, MECHANISMS

ROWS = [("s1", "r1", "I feel low", "Why do you feel low?"), ("s1", "r2", "I feel low", "Same here."),
        ("s2", "r3", "Can't sleep", "That sounds exhausting")]


def write_epitome(root, levels_by_mechanism, rp_ids_by_mechanism=None):
    (root / "epitome").mkdir(parents=True, exist_ok=True)
    for mechanism in MECHANISMS:
        rp_ids = (rp_ids_by_mechanism or {}).get(mechanism, [r[1] for r in ROWS])
        pd.DataFrame(
            {
                "sp_id": [r[0] for r in ROWS], "rp_id": rp_ids,
                "seeker_post": [r[2] for r in ROWS], "response_post": [r[3] for r in ROWS],
                "level": levels_by_mechanism[mechanism], "rationales": ["", "", ""],
            }
        ).to_csv(root / EPITOME_FILES[mechanism], index=False)
    return root


def test_merges_one_level_column_per_mechanism(tmp_path):
    levels = {"emotional_reactions": [0, 1, 2], "interpretations": [1, 2, 0], "explorations": [2, 0, 0]}
    frame = load_epitome(write_epitome(tmp_path, levels))
    assert frame["rp_id"].tolist() == ["r1", "r2", "r3"]
    for mechanism in MECHANISMS:
        assert frame[mechanism].tolist() == levels[mechanism]


def test_bad_level_names_file_row_and_field(tmp_path):
    levels = {"emotional_reactions": [0, 1, 2], "interpretations": [1, 7, 0], "explorations": [2, 0, 0]}
    with pytest.raises(EpitomeFormatError, match=r"interpretations-reddit\.csv: row 2, field 'level': '7' is not one of"):
        load_epitome(write_epitome(tmp_path, levels))


def test_files_out_of_step_are_refused(tmp_path):
    levels = {m: [0, 0, 0] for m in MECHANISMS}
    with pytest.raises(EpitomeFormatError, match=r"explorations-reddit\.csv: row 3, fields 'sp_id'/'rp_id'"):
        load_epitome(write_epitome(tmp_path, levels, {"explorations": ["r1", "r2", "rX"]}))

