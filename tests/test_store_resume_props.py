"""Resume invariants of the results store that generation and scoring write through: whatever byte
a kill stops the file at, a rerun leaves every id exactly once, keeps only lines written whole,
and the finished file is in input order whatever the batching."""

from __future__ import annotations

import pytest
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_align.evaluation.generation import InputFileError, read_inputs
from therapy_align.store import ResultStore, read_results

pytestmark = pytest.mark.property

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
records = st.lists(st.tuples(st.uuids().map(str), texts), min_size=1, max_size=25, unique_by=lambda t: t[0])


def _batches(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


@settings(max_examples=150, deadline=None)
@given(records, st.integers(1, 6), st.floats(0, 1), st.randoms(use_true_random=False))
def test_kill_at_any_byte_then_resume_gives_each_id_once_in_input_order(items, batch_size, cut_fraction, rng):
    inputs = {rid: f"input {rid}" for rid, _ in items}
    lines = [{"id": rid, "response": text} for rid, text in items]
    order = list(lines)
    rng.shuffle(order)  # batches finish in any order (e.g. sorted by length)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "g.jsonl"
        store = ResultStore(out, made_from={"model": "m", "settings": {"n": 1}})
        store.start(inputs)
        for batch in _batches(order, batch_size):
            store.append(batch)
        part = store.part
        full = part.read_bytes()
        part.write_bytes(full[: int(len(full) * cut_fraction)])  # the process died here

        rerun = ResultStore(out, made_from={"model": "m", "settings": {"n": 1}})
        todo = rerun.start(inputs)
        assert full.startswith(part.read_bytes())  # a prefix of what was written, cut to whole lines
        survived = {r["id"] for r in rerun.records()}
        assert set(todo) == set(inputs) - survived and len(todo) == len(set(todo))
        by_id = {line["id"]: line for line in lines}
        rerun.append(by_id[rid] for rid in todo)
        rerun.finish()
        assert read_results(out) == lines  # each id once, input order, the values written
        assert not part.exists()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda i, t: json.dumps({"id": f"i{i}", "text": t}), st.integers(0, 10**6), st.text(min_size=1, max_size=10).filter(str.strip)),
    st.sampled_from(["", "   ", "{bad", "[1]", '{"id": "z"}', '{"text": "no id"}', '{"id": "q", "text": ""}']),
), min_size=1, max_size=20))
def test_lenient_reading_keeps_exactly_the_valid_unique_lines(raw_lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_text("\n".join(raw_lines) + "\n", encoding="utf-8")
        expected_ids, first_bad, bad = [], None, 0
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue  # blank lines are ignored, not errors
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            ok = isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip() and "id" in obj
            if ok and obj["id"] not in expected_ids:
                expected_ids.append(obj["id"])
                continue
            bad += 1
            first_bad = first_bad or number
        if not expected_ids:
            return  # a file with no valid line is refused as a whole (tested in unit tests)
        report = read_inputs(path, lenient=True)
        assert [r.id for r in report.records] == expected_ids
        assert len(report.skipped) == bad
        if first_bad is not None:
            try:
                read_inputs(path)
            except InputFileError as err:
                assert f"{path}:{first_bad}:" in str(err)
            else:
                raise AssertionError("a bad line was accepted")
