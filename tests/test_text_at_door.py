"""Text at the door: what every JSONL/JSON reader and the result store do with text they cannot
store or hash. A lone surrogate (``"\\ud800"`` escaped in JSON) and nesting past the bound are
refused with the file and line; a UTF-8 byte-order mark is accepted as in CSV and session files;
a damaged results file or adapter is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.bad_inputs import run_door
from therapy_align.errors import UserError
from therapy_align.files import MAX_JSON_DEPTH, InputFileError, read_json_file, read_jsonl
from therapy_align.scoring import read_pairs
from therapy_align.store import ResultStore, digest, read_results

FIELDS = {"id": (str, int), "text": str}
BOM = b"\xef\xbb\xbf"
LONE = '{"id": "m2", "text": "I feel \\ud800 alone"}\n'


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path / "m.jsonl", BOM + b'{"id": "m1", "text": "hello"}\n{"id": "m2", "text": "again"}\n')
    records, _ = read_jsonl(path, fields=FIELDS)
    assert [r["id"] for r in records] == ["m1", "m2"]
    assert read_json_file(write(tmp_path / "c.json", BOM + b'{"a": 1}')) == {"a": 1}


def test_a_byte_order_mark_inside_the_file_is_still_refused(tmp_path):
    path = write(tmp_path / "m.jsonl", b'{"id": "m1", "text": "hello"}\n' + BOM + b'{"id": "m2", "text": "x"}\n')
    with pytest.raises(InputFileError, match=r"m.jsonl:2: invalid JSON"):
        read_jsonl(path, fields=FIELDS)


@pytest.mark.parametrize("line, field", [
    (LONE, "text"),
    ('{"id": "m2", "text": "x", "meta": {"note": ["ok", "\\udfff"]}}\n', "meta.note[1]"),
    ('{"id": "\\ud83d", "text": "x"}\n', "id"),
])
def test_a_lone_surrogate_is_refused_with_file_line_and_field(tmp_path, line, field):
    path = write(tmp_path / "m.jsonl", '{"id": "m1", "text": "fine"}\n' + line)
    with pytest.raises(InputFileError) as caught:
        read_jsonl(path, fields=FIELDS)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: {field}: holds a lone surrogate U+"), message


def test_a_surrogate_pair_is_one_valid_character(tmp_path):
    path = write(tmp_path / "m.jsonl", '{"id": "m1", "text": "so tired \\ud83d\\ude2b"}\n')
    assert read_jsonl(path, fields=FIELDS)[0][0]["text"] == "so tired \U0001f62b"


def test_lenient_skips_and_counts_a_surrogate_line(tmp_path):
    path = write(tmp_path / "m.jsonl", '{"id": "m1", "text": "fine"}\n' + LONE)
    records, skipped = read_jsonl(path, fields=FIELDS, lenient=True)
    assert [r["id"] for r in records] == ["m1"] and len(skipped) == 1 and ":2:" in skipped[0]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 5, 200_000])
def test_deep_nesting_is_a_clear_error_not_a_recursion_error(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    path = write(tmp_path / "m.jsonl", f'{{"id": "m1", "text": "x", "extra": {nested}}}\n')
    with pytest.raises(InputFileError, match=r"m.jsonl:1: .*nested deeper than 64 levels"):
        read_jsonl(path, fields=FIELDS)
    with pytest.raises(InputFileError, match="nested deeper"):
        read_json_file(write(tmp_path / "c.json", nested))


def test_the_store_hash_never_fails_and_the_store_refuses_unstorable_text(tmp_path):
    assert len(digest("\ud800")) == 16 and digest({"a": "\udfff"}) != digest({"a": "x"})
    store = ResultStore(tmp_path / "r.jsonl", made_from={"model": "m"})
    with pytest.raises(UserError, match=r"id 'x1'.*lone surrogate"):
        store.start({"x1": {"seeker": "hi", "response": "\ud800"}})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content, what", [
    (b'{"id": "a"}\n\xff\xfe\n', "not UTF-8"),
    (b'{"id": "a"}\n{"id": "\\ud800"}\n', "lone surrogate"),
    (b'{"id": "a"}\n' + b"[" * 100_000 + b"\n", "nested deeper"),
])
def test_a_damaged_results_file_is_refused_by_line(tmp_path, content, what):
    path = write(tmp_path / "r.jsonl", content)
    with pytest.raises(UserError, match=rf"r.jsonl:2: not a result line \(.*{what}"):
        ResultStore(path, made_from={"model": "m"}).start({"a": "x"})
    with pytest.raises(UserError, match="r.jsonl:2"):
        read_results(path)
    assert path.read_bytes() == content


def test_pairs_reader_takes_a_bom_and_refuses_a_surrogate(tmp_path):
    good = write(tmp_path / "p.jsonl", BOM + b'{"id": 1, "seeker": "I cannot sleep.", "response": "That sounds hard."}\n')
    assert read_pairs(good)[0][0].id == "1"
    bad = write(tmp_path / "q.jsonl", '{"id": 1, "seeker": "I cannot sleep.", "response": "\\udc80"}\n')
    with pytest.raises(InputFileError, match=r"q.jsonl:1: response: holds a lone surrogate"):
        read_pairs(bad)


@pytest.mark.parametrize("content, names", [
    (LONE, ("m.jsonl:1", "text", "lone surrogate")),
    ('{"id": "m1", "text": "x", "extra": ' + "[" * 50_000 + "]" * 50_000 + "}\n", ("m.jsonl:1", "nested deeper")),
])
def test_safety_check_refuses_unstorable_text_in_one_line(tmp_path, capsys, content, names):
    write(tmp_path / "m.jsonl", content)
    capsys.readouterr()
    status = run_door("cli", ["safety", "check", "--no-semantic", "--no-learned", "--no-progress",
                              "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f.jsonl")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    line = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(line) == 1 and all(name in line[0] for name in names), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_safety_check_accepts_a_bom(tmp_path, capsys):
    write(tmp_path / "m.jsonl", BOM + b'{"id": "m1", "text": "I want to end my life tonight."}\n')
    status = run_door("cli", ["safety", "check", "--no-semantic", "--no-learned", "--no-progress",
                              "--in", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f.jsonl")])
    assert status == 0, capsys.readouterr().err
    assert [json.loads(line)["id"] for line in (tmp_path / "f.jsonl").read_text().splitlines()] == ["m1"]


# ---------------------------------------------------------------------------------------- corrupt weights


def test_a_truncated_adapter_is_one_line_naming_it(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from therapy_align.training.models import load_adapter

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    torch.manual_seed(0)
    peft_model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(UserError, match=r"adapter: --model: cannot load the LoRA adapter") as caught:
        load_adapter(LlamaForCausalLM(config), adapter)
    assert "\n" not in str(caught.value)


def test_a_truncated_crisis_detector_head_is_one_line_naming_it(tmp_path):
    from therapy_align.safety.learned import HEAD_FILE, SETTINGS_FILE, DetectorArtifactError, LearnedDetector

    default = Path(__file__).resolve().parents[1] / "artifacts" / "safety"
    if not (default / HEAD_FILE).is_file():
        pytest.skip("no trained crisis detector in artifacts/safety")
    art = tmp_path / "safety"
    art.mkdir()
    (art / SETTINGS_FILE).write_bytes((default / SETTINGS_FILE).read_bytes())
    (art / HEAD_FILE).write_bytes((default / HEAD_FILE).read_bytes()[:100])
    with pytest.raises(DetectorArtifactError, match=rf"{HEAD_FILE}: cannot load"):
        LearnedDetector(art)
