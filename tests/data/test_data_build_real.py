"""The data build on the real AnnoMI files with the real Llama-2 tokenizer."""

from __future__ import annotations

import json
import re

import pytest
from datasets import load_from_disk
from typer.testing import CliRunner

from therapy_align.data.cleaning import is_backchannel
from therapy_align.data.dataset_build import BuildConfig, build_dataset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(tokenizer, data_dir):
    cache: dict = {}
    return {
        split: build_dataset(BuildConfig(split=split, data_dir=str(data_dir)), tokenizer=tokenizer, cache=cache)
        for split in ("annomi80", "full_plus")
    }


def test_full_plus_uses_all_110_high_quality_transcripts(built):
    dataset, stats = built["full_plus"]
    assert stats["transcripts_in"] == 133 and stats["transcripts_high_quality"] == 110
    assert stats["transcripts_used"] == 110
    assert len(set(dataset["train"]["conversation_id"])) == 110
    assert stats["annomi_duplicate_rows_removed"] == 13551 - 9699
    assert stats["utterances_with_asides_removed"] == 266
    assert stats["utterances_dropped"]["therapist_backchannel"] > 1000


def test_annomi80_is_80_percent_and_heldout_is_disjoint(built):
    dataset, stats = built["annomi80"]
    train_ids = set(dataset["train"]["conversation_id"])
    heldout_ids = set(dataset["heldout"]["conversation_id"])
    assert (len(train_ids), len(heldout_ids)) == (88, 22)
    assert not train_ids & heldout_ids


def test_chunks_fit_and_contain_no_asides_or_bare_backchannels(built, tokenizer):
    dataset, stats = built["full_plus"]
    assert max(dataset["train"]["num_tokens"]) <= 4096 == stats["max_tokens"]
    assert stats["max_chunk_tokens"] == max(dataset["train"]["num_tokens"])
    long_transcripts = [cid for cid in set(dataset["train"]["conversation_id"]) if cid]
    assert sum(1 for index in dataset["train"]["chunk_index"] if index > 0) >= 8, "the 8 long transcripts are split"
    for row in dataset["train"]:
        assert row["messages"][0]["role"] == "system"
        for message in row["messages"][1:]:
            assert not re.search(r"[\[\]]", message["content"]), message
            if message["role"] == "assistant":
                assert not is_backchannel(message["content"]), message
        assert len(row["input_ids"]) == len(row["labels"]) == row["num_tokens"]
    assert long_transcripts


def test_cli_build_writes_a_loadable_dataset_atomically(tmp_path, data_dir):
    from therapy_align.cli import app

    out = tmp_path / "full_plus"
    result = CliRunner().invoke(app, ["data", "build", "--split", "full_plus", "--out", str(out), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["transcripts_used"] == 110 and stats["max_chunk_tokens"] <= 4096
    split_ids = json.loads((out / "split.json").read_text())
    assert len(split_ids["train"]) == 110 and len(split_ids["heldout"]) == 22
    loaded = load_from_disk(str(out))
    assert set(loaded) == {"train", "heldout"}
    assert {"conversation_id", "chunk_index", "topic", "messages", "input_ids", "labels"} <= set(loaded["train"].column_names)
    assert [p.name for p in tmp_path.iterdir()] == ["full_plus"], "no temporary directory left behind"

    shown = CliRunner().invoke(app, ["data", "show", str(out), "--index", "1"])
    assert shown.exit_code == 0 and "supervised" in shown.output

    again = CliRunner().invoke(app, ["data", "build", "--split", "full_plus", "--out", str(out), "--data-dir", str(data_dir)])
    assert again.exit_code != 0 and "exists" in again.output


def test_failed_build_leaves_no_output(tmp_path, data_dir):
    from therapy_align.cli import app

    out = tmp_path / "bad"
    result = CliRunner().invoke(
        app, ["data", "build", "--split", "full_plus", "--out", str(out), "--data-dir", str(data_dir), "--extra", str(tmp_path / "missing.txt")]
    )
    assert result.exit_code == 2
    assert "missing.txt" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_extra_transcripts_and_counselchat_join_full_plus(tokenizer, data_dir):
    from importlib import resources

    example = str(resources.files("therapy_align.data").joinpath("examples/example_session.txt"))
    dataset, stats = build_dataset(
        BuildConfig(split="full_plus", data_dir=str(data_dir), extra_transcripts=(example,), include_counselchat=True),
        tokenizer=tokenizer,
    )
    sources = stats["conversations_by_source"]
    assert sources["annomi"] == 110 and sources["extra"] == 1 and sources["counselchat"] > 1000
    extra = [row for row in dataset["train"] if row["source"] == "extra"]
    assert extra[0]["messages"][1]["content"] == "Hi."  # the therapist opened: neutral opener
    assert "[sighs]" not in json.dumps(extra[0]["messages"])
