"""`therapy-align safety check` refuses bad input in one line (the harness: ``tests/fixtures/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.fixtures.bad_inputs import MESSAGES, PAIRS3, Case, assert_refused_in_one_line, case_ids

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- safety check ----------------------------------------------------------------------------
    Case("safety-out-is-input", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/m.jsonl", "--no-progress"],
         ("m.jsonl", "--out", "same path"), previous={"m.jsonl": MESSAGES}),
    Case("safety-in-empty", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl", "empty"), files={"m.jsonl": ""}, out="o.jsonl"),
    Case("safety-in-missing-text", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl:1", "text"), files={"m.jsonl": PAIRS3}, out="o.jsonl"),
    Case("safety-out-is-directory", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/odir", "--no-progress"],
         ("odir", "--out", "directory"), files={"m.jsonl": MESSAGES, "odir/keep": "x"}),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
