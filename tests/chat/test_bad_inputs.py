"""`therapy-align chat` refuses bad options in one line, before a model loads or a prompt is read (the
harness: ``tests/fixtures/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.fixtures.bad_inputs import Case, assert_refused_in_one_line, case_ids

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- chat (refused before a model loads or a prompt is read) ----------------------------------
    Case("chat-model-missing", ["chat", "--model", "/nope/model"], ("--model", "/nope/model")),
    Case("chat-prompt-unknown", ["chat", "--model", "tiny-base", "--prompt", "kindest"], ("--prompt", "kindest")),
    Case("chat-locale-unknown", ["chat", "--model", "tiny-base", "--locale", "XX"], ("--locale", "XX")),
    Case("chat-policy-not-json", ["chat", "--model", "tiny-base", "--policy", "{tmp}/pol.json"], ("pol.json:2", "--policy"),
         files={"pol.json": "{\n  oops\n"}),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
