"""Reading evaluation inputs, the output file's resume helpers, and the prompt registry."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DATA_DIR
from therapy_align.evaluation.generation import (
    GenerationSettings,
    InputFileError,
    append_records,
    batch_seed,
    cut_at_eos,
    left_pad,
    read_inputs,
    read_outputs,
    repair_tail,
)
from therapy_align.data.system_prompts import NEW, PROMPT_TARGETS, STANDARD, SYSTEM_PROMPTS, get_system_prompt

INPUTS = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"


def _write(tmp_path, lines):
    path = tmp_path / "inputs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_the_real_inputs_in_order_with_limit():
    report = read_inputs(INPUTS, limit=5)
    assert [r.id for r in report.records] == [f"rmh-000{i}" for i in range(5)]
    assert all(r.text.strip() for r in report.records)
    assert len(read_inputs(INPUTS).records) == 1000


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "blank line"),
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"id": "x9"}', "missing 'text'"),
        ('{"id": "x9", "text": "   "}', "non-empty string"),
        ('{"text": "no id"}', "missing or empty 'id'"),
        ('{"id": "a", "text": "again"}', "duplicate id"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, bad, reason):
    path = _write(tmp_path, ['{"id": "a", "text": "hello"}', bad, '{"id": "b", "text": "there"}'])
    with pytest.raises(InputFileError) as err:
        read_inputs(path)
    assert f"{path}:2:" in str(err.value) and reason in str(err.value)


def test_lenient_skips_and_counts(tmp_path):
    path = _write(tmp_path, ['{"id": "a", "text": "hello"}', "", "{oops", '{"id": "b", "text": "x"}', '{"id": "c"}'])
    report = read_inputs(path, lenient=True)
    assert [r.id for r in report.records] == ["a", "b"]
    assert [n for n, _ in report.skipped] == [2, 3, 5]


def test_missing_inputs_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_inputs(tmp_path / "nope.jsonl")


def test_settings_are_validated():
    with pytest.raises(ValueError):
        GenerationSettings(batch_size=0)
    with pytest.raises(ValueError):
        GenerationSettings(do_sample=True, temperature=0)


def test_left_pad_puts_padding_on_the_left():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_cut_at_eos_keeps_eos_and_drops_padding():
    assert cut_at_eos([4, 5, 2, 0, 0], eos_id=2, pad_id=0) == [4, 5, 2]
    assert cut_at_eos([4, 5, 6], eos_id=2, pad_id=0) == [4, 5, 6]
    assert cut_at_eos([2, 2, 2], eos_id=2, pad_id=0) == [2]


def test_batch_seed_is_a_function_of_seed_and_ids():
    assert batch_seed(0, ["a", "b"]) == batch_seed(0, ["a", "b"])
    assert batch_seed(0, ["a", "b"]) != batch_seed(1, ["a", "b"])
    assert batch_seed(0, ["a", "b"]) != batch_seed(0, ["ab"])


def test_repair_tail_cuts_only_a_torn_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    append_records(path, [{"id": "a"}, {"id": "b"}])
    whole = path.read_bytes()
    assert repair_tail(path) == 0 and path.read_bytes() == whole
    with open(path, "ab") as handle:
        handle.write(b'{"id": "c", "resp')
    assert repair_tail(path) == len(b'{"id": "c", "resp')
    assert path.read_bytes() == whole
    assert [r["id"] for r in read_outputs(path)] == ["a", "b"]


def test_repair_tail_of_a_single_torn_line_empties_the_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a", "te')
    repair_tail(path)
    assert path.read_bytes() == b""


def test_corrupt_whole_line_is_an_error_not_silently_dropped(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(InputFileError, match=r":2:"):
        read_outputs(path)


def test_registry_keeps_the_papers_prompts_verbatim_and_has_ten_more_or_less():
    assert SYSTEM_PROMPTS["standard"] == STANDARD
    assert STANDARD.startswith("You are a helpful, respectful and honest assistant.")
    assert NEW.endswith("provide complete and well-thought-out responses without truncation.")
    assert NEW.startswith(STANDARD)
    assert len(SYSTEM_PROMPTS) >= 10
    assert set(PROMPT_TARGETS) == set(SYSTEM_PROMPTS)
    assert len(set(SYSTEM_PROMPTS.values())) == len(SYSTEM_PROMPTS)
    assert sum(target == "interpretations" for target, _ in PROMPT_TARGETS.values()) >= 3


def test_unknown_prompt_lists_the_known_ones():
    with pytest.raises(KeyError) as err:
        get_system_prompt("no-such-prompt")
    for name in ("standard", "new", "interpret_connect"):
        assert name in err.value.args[0]


def test_prompt_from_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("Be kind.\n")
    assert get_system_prompt(str(path)) == "Be kind."


def test_append_writes_whole_lines(tmp_path):
    path = tmp_path / "o.jsonl"
    append_records(path, [{"id": "x", "response": "line\nbreak"}])
    assert path.read_text().count("\n") == 1
    assert json.loads(path.read_text())["response"] == "line\nbreak"
