"""The real EPITOME files in ../shared load into the table EMP-EVAL trains on (integration:
it needs ../shared)."""

import pytest
from empeval.epitome_data import load_epitome

pytestmark = pytest.mark.integration


def test_real_data_shape():
    frame = load_epitome()
    assert len(frame) == 3084 and frame["sp_id"].nunique() == 2979
    assert [frame["emotional_reactions"].value_counts().get(level, 0) for level in (0, 1, 2)] == [2037, 895, 152]
    assert [frame["interpretations"].value_counts().get(level, 0) for level in (0, 1, 2)] == [1626, 114, 1344]
    assert [frame["explorations"].value_counts().get(level, 0) for level in (0, 1, 2)] == [2604, 104, 376]
