"""`therapy-align miti score` refuses bad input in one line (the harness: ``tests/fixtures/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.fixtures.bad_inputs import PAIRS3, TURNS, Case, assert_refused_in_one_line, case_ids

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- miti score ------------------------------------------------------------------------------
    Case("miti-model-missing", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--model", "{tmp}/noart",
                                "--no-progress"], ("noart", "--model"), files={"t.jsonl": TURNS}, out="mo"),
    Case("miti-in-empty", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--no-progress"],
         ("t.jsonl", "empty"), files={"t.jsonl": ""}, out="mo"),
    Case("miti-in-missing-field", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--no-progress"],
         ("t.jsonl:1", "client"), files={"t.jsonl": PAIRS3}, out="mo"),
    # --- miti score: never over an input, text it cannot store ---------------------------------------
    Case("miti-summary-is-input", ["miti", "score", "--in", "{tmp}/mo/summary.json", "--out", "{tmp}/mo",
                                   "--model", "{tmp}/noart", "--no-progress"], ("summary.json", "--out", "input"),
         files={"mo/summary.json": TURNS}),
    Case("miti-in-lone-surrogate", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--model",
                                    "{tmp}/noart", "--no-progress"], ("t.jsonl:1", "therapist", "lone surrogate"),
         files={"t.jsonl": '{"id": "t1", "client": "I drink too much.", "therapist": "\\ud800"}\n'}, out="mo"),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
