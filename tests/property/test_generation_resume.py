"""Resume invariants of generation output files: whatever byte a kill stops the file at, repair +
rerun leaves every id exactly once, and every surviving line is one that was written whole."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.evaluation.generation import InputFileError, append_records, read_inputs, read_outputs, repair_tail

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
records = st.lists(st.tuples(st.uuids().map(str), texts), min_size=1, max_size=25, unique_by=lambda t: t[0])


def _batches(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


@settings(max_examples=150, deadline=None)
@given(records, st.integers(1, 6), st.floats(0, 1))
def test_kill_at_any_byte_then_resume_gives_each_id_once(items, batch_size, cut_fraction):
    lines = [{"id": rid, "response": text} for rid, text in items]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.jsonl"
        for batch in _batches(lines, batch_size):
            append_records(path, batch)
        full = path.read_bytes()
        cut = int(len(full) * cut_fraction)
        path.write_bytes(full[:cut])  # the process died after writing `cut` bytes

        repair_tail(path)
        survived = read_outputs(path)
        assert full.startswith(path.read_bytes())  # a prefix of what was written...
        assert survived == lines[: len(survived)]  # ...made of whole lines, in order

        done = {r["id"] for r in survived}
        append_records(path, [line for line in lines if line["id"] not in done])  # the rerun
        final = read_outputs(path)
        assert sorted(r["id"] for r in final) == sorted(r["id"] for r in lines)
        assert {r["id"]: r["response"] for r in final} == {r["id"]: r["response"] for r in lines}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda i, t: json.dumps({"id": f"i{i}", "text": t}), st.integers(0, 10**6), st.text(min_size=1, max_size=10).filter(str.strip)),
    st.sampled_from(["", "   ", "{bad", "[1]", '{"id": "z"}', '{"text": "no id"}', '{"id": "q", "text": ""}']),
), min_size=1, max_size=20))
def test_lenient_reading_keeps_exactly_the_valid_unique_lines(raw_lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_text("\n".join(raw_lines) + "\n", encoding="utf-8")
        expected_ids, first_bad = [], None
        for number, raw in enumerate(raw_lines, start=1):
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            ok = isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip() and "id" in obj
            if ok and obj["id"] not in expected_ids:
                expected_ids.append(obj["id"])
            elif first_bad is None:
                first_bad = number
        report = read_inputs(path, lenient=True)
        assert [r.id for r in report.records] == expected_ids
        assert len(report.records) + len(report.skipped) == len(raw_lines)
        if first_bad is not None:
            try:
                read_inputs(path)
            except InputFileError as err:
                assert f"{path}:{first_bad}:" in str(err)
            else:
                raise AssertionError("a bad line was accepted")
