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
    # --- safety check: never over an input, text it cannot store ------------------------------------
    Case("safety-summary-is-input", ["safety", "check", "--in", "{tmp}/f.summary.json", "--out", "{tmp}/f.jsonl",
                                     "--no-progress"], ("f.summary.json", "--out", "input"),
         files={"f.summary.json": MESSAGES}, out="f.jsonl"),
    Case("safety-part-is-input-force", ["safety", "check", "--in", "{tmp}/f.jsonl.part", "--out", "{tmp}/f.jsonl",
                                        "--force", "--no-progress"], ("f.jsonl.part", "--out", "input"),
         files={"f.jsonl.part": MESSAGES}, out="f.jsonl"),
    Case("safety-out-is-device", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "/dev/null", "--no-progress"],
         ("/dev/null", "--out", "regular file"), files={"m.jsonl": MESSAGES}),
    Case("safety-summary-not-from-a-run", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl",
                                           "--no-progress"], ("o.summary.json", "--force"),
         files={"m.jsonl": MESSAGES}, previous={"o.summary.json": "my notes\n"}, out="o.jsonl"),
    Case("safety-in-lone-surrogate", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl:1", "text", "lone surrogate"), files={"m.jsonl": '{"id": "m1", "text": "I feel \\ud800 alone"}\n'}, out="o.jsonl"),
    Case("safety-in-too-deep", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl:1", "nested deeper"), files={"m.jsonl": '{"id": "m1", "text": "x", "extra": ' + "[" * 50_000 + "]" * 50_000 + "}\n"}, out="o.jsonl"),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
