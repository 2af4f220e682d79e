"""Reading evaluation inputs, the generation spec, decoding helpers and the prompt registry
(nothing but the package: no ../shared, no model)."""

from __future__ import annotations

import pytest

from therapy_align.data.system_prompts import (
    NEW,
    PROMPT_TARGETS,
    STANDARD,
    SYSTEM_PROMPTS,
    check_prompt,
    get_system_prompt,
)
from therapy_align.errors import UserError
from therapy_align.evaluation.generation import (
    GenerationSpec,
    InputFileError,
    batch_seed,
    cut_at_eos,
    left_pad,
    read_inputs,
)


def _write(tmp_path, lines):
    path = tmp_path / "inputs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_inputs_in_order_with_limit(tmp_path):
    path = _write(tmp_path, [f'{{"id": "i{n}", "text": "post {n}", "source": "r"}}' for n in range(5)])
    report = read_inputs(path, limit=3)
    assert [(r.id, r.text, r.source) for r in report.records] == [("i0", "post 0", "r"), ("i1", "post 1", "r"),
                                                                   ("i2", "post 2", "r")]
    with pytest.raises(UserError, match="limit"):
        read_inputs(path, limit=0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"id": "x9"}', "text: missing field"),
        ('{"id": "x9", "text": "   "}', "text: is blank"),
        ('{"text": "no id"}', "id: missing field"),
        ('{"id": " ", "text": "blank id"}', "id: is blank"),
        ('{"id": "a", "text": "again"}', "repeats line 1"),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path, bad, reason):
    path = _write(tmp_path, ['{"id": "a", "text": "hello"}', bad, '{"id": "b", "text": "there"}'])
    with pytest.raises(InputFileError) as err:
        read_inputs(path)
    assert f"{path}:2:" in str(err.value) and reason in str(err.value)


def test_lenient_skips_and_reports_bad_lines_blank_lines_are_ignored(tmp_path):
    path = _write(tmp_path, ['{"id": "a", "text": "hello"}', "", "{oops", '{"id": "b", "text": "x"}', '{"id": "c"}'])
    report = read_inputs(path, lenient=True)
    assert [r.id for r in report.records] == ["a", "b"]
    assert [message.split(":")[1] for message in report.skipped] == ["3", "5"]


def test_missing_and_empty_inputs_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_inputs(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputFileError, match="is empty"):
        read_inputs(tmp_path / "empty.jsonl")


def test_spec_is_validated_and_its_identity_holds_only_what_changes_replies():
    for bad in ({"batch_size": 0}, {"max_new_tokens": 0}, {"threads": -1}, {"do_sample": True, "temperature": 0}):
        with pytest.raises(UserError):
            GenerationSpec(**bad)
    base = GenerationSpec()
    assert GenerationSpec(batch_size=64, sort_by_length=False, threads=1, seed=5).identity() == base.identity()
    assert GenerationSpec(max_new_tokens=8).identity() != base.identity()
    sampled = GenerationSpec(do_sample=True, top_p=0.9)
    assert sampled.identity() != GenerationSpec(do_sample=True, top_p=0.8).identity()
    assert sampled.identity() != GenerationSpec(do_sample=True, top_p=0.9, seed=1).identity()


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
    with pytest.raises(UserError) as user_err:
        check_prompt("no-such-prompt")
    for name in ("standard", "new", "interpret_connect"):
        assert name in err.value.args[0] and name in str(user_err.value)


def test_prompt_from_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("Be kind.\n")
    assert get_system_prompt(str(path)) == check_prompt(str(path)) == "Be kind."


def test_a_reply_ends_at_any_of_the_models_stop_ids():
    """Gemma ends a turn with <end_of_turn> (its generation config) while its tokenizer's eos is <eos>."""
    from types import SimpleNamespace

    from therapy_align.evaluation.generation import stop_ids

    tokenizer = SimpleNamespace(eos_token_id=1)
    gemma_like = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[1, 106]))
    llama_like = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=1))
    assert stop_ids(gemma_like, tokenizer) == [1, 106] and stop_ids(llama_like, tokenizer) == [1]
    assert cut_at_eos([7, 8, 106, 9, 1], eos_id=[1, 106], pad_id=0) == [7, 8, 106]
    assert cut_at_eos([7, 0, 0], eos_id=[1, 106], pad_id=0) == [7]
