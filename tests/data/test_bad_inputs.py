"""`therapy-align data build` and `data show` refuse bad input in one line (the harness:
``tests/fixtures/bad_inputs.py``); the corrections a build counts instead of refusing."""

from __future__ import annotations

import pytest

from tests.conftest import TOKENIZER_DIR
from tests.fixtures.bad_inputs import built  # noqa: F401 (a pytest fixture the `data show` cases use)
from tests.fixtures.bad_inputs import (
    HEADER, SESSION, Case, annomi_csv, assert_refused_in_one_line, build, case_ids, data_dir, run_door, write_files,
)

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- data build: settings ------------------------------------------------------------------
    Case("build-bad-split", build("--split", "annomi90", "--out", "{tmp}/o"), ("--split", "annomi90"), out="o"),
    Case("build-bad-opener", build("--opener-policy", "x", "--out", "{tmp}/o"), ("--opener-policy",), out="o"),
    Case("build-max-tokens-0", build("--max-tokens", "0", "--out", "{tmp}/o"), ("--max-tokens",), out="o"),
    Case("build-max-tokens-negative", build("--max-tokens", "-5", "--out", "{tmp}/o"), ("--max-tokens",), out="o"),
    Case("build-max-tokens-below-system-prompt", build("--max-tokens", "100", "--out", "{tmp}/o"),
         ("--max-tokens", "system prompt"), out="o"),
    Case("build-max-tokens-not-int", build("--max-tokens", "many", "--out", "{tmp}/o"), ("max-tokens",), out="o"),
    Case("build-seed-not-int", build("--seed", "abc", "--out", "{tmp}/o"), ("seed",), out="o"),
    Case("build-unknown-option", build("--bogus", "--out", "{tmp}/o"), ("--bogus",), out="o"),
    Case("build-unknown-system-prompt", build("--system-prompt", "nope", "--out", "{tmp}/o"), ("--system-prompt", "nope"), out="o"),
    Case("build-system-prompt-not-utf8", build("--system-prompt", "{tmp}/p.txt", "--out", "{tmp}/o"),
         ("p.txt", "--system-prompt", "UTF-8"), files={"p.txt": b"Be kind \xff\xfe"}, out="o"),
    Case("build-extra-on-annomi80", build("--extra", "{tmp}/s.txt", "--out", "{tmp}/o"), ("--extra", "full_plus"),
         files={"s.txt": SESSION}, out="o"),
    Case("build-counselchat-on-annomi80", build("--counselchat", "--out", "{tmp}/o"), ("--counselchat", "full_plus"), out="o"),
    # --- data build: paths ---------------------------------------------------------------------
    Case("build-tokenizer-missing", build("--out", "{tmp}/o") + ["--tokenizer", "/missing/tokenizer"],
         ("/missing/tokenizer", "--tokenizer"), out="o"),
    Case("build-tokenizer-empty-dir", build("--out", "{tmp}/o") + ["--tokenizer", "{tmp}/tok"],
         ("tok", "--tokenizer", "tokenizer.model"), files={"tok/readme.txt": "nothing"}, out="o"),
    Case("build-tokenizer-is-file", build("--out", "{tmp}/o") + ["--tokenizer", "{tmp}/tok.txt"],
         ("tok.txt", "--tokenizer"), files={"tok.txt": "x"}, out="o"),
    Case("build-tokenizer-hub-id-missing", build("--out", "{tmp}/o") + ["--tokenizer", "someone/not-a-tokenizer"],
         ("someone/not-a-tokenizer", "--tokenizer", "not a usable chat tokenizer"), out="o"),
    Case("build-tokenizer-not-causal", build("--out", "{tmp}/o") + ["--tokenizer", "{minilm}"],
         ("{minilm}", "--tokenizer", "not a usable chat tokenizer"), out="o"),
    Case("build-data-dir-missing", build("--out", "{tmp}/o", data="{tmp}/nodata"), ("nodata", "--data-dir"), out="o"),
    Case("build-data-dir-without-annomi", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "not found"),
         files={"d/readme.txt": "x"}, out="o"),
    Case("build-out-is-file", build("--out", "{tmp}/o.txt"), ("o.txt", "--out", "is a file"),
         previous={"o.txt": "keep me"}),
    Case("build-out-parent-is-file", build("--out", "{tmp}/f/o"), ("f/o", "--out", "not a directory"),
         previous={"f": "a file"}),
    Case("build-out-exists", build("--out", "{tmp}/o"), ("o", "--out", "--overwrite"),
         previous={"o/stats.json": "{}", "o/dataset_dict.json": "{}"}),
    Case("build-out-not-a-build", build("--out", "{tmp}/o", "--overwrite"), ("o", "--out", "not a directory written"),
         previous={"o/thesis.tex": "years of work"}),
    Case("build-out-holds-extra", build("--split", "full_plus", "--extra", "{tmp}/o/s.txt", "--out", "{tmp}/o", "--overwrite"),
         ("--out", "holds the input"), previous={"o/s.txt": SESSION, "o/stats.json": "{}"}),
    Case("build-out-is-data-dir", build("--out", "{data}", "--overwrite"), ("--out", "holds the input")),
    # --- data build: the AnnoMI CSV --------------------------------------------------------------
    Case("csv-zero-bytes", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "empty"),
         files=data_dir(""), out="o"),
    Case("csv-header-only", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "no data rows"),
         files=data_dir(HEADER), out="o"),
    Case("csv-missing-columns", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv:1", "header", "mi_quality"),
         files=data_dir("transcript_id,topic,utterance_id\n0,x,0\n"), out="o"),
    Case("csv-non-numeric-utterance-id", build("--out", "{tmp}/o", data="{tmp}/d"),
         ("AnnoMI-full.csv:4", "utterance_id", "'2b'"),
         files=data_dir(annomi_csv().replace("0,high,stress,2,", "0,high,stress,2b,", 1)), out="o"),
    Case("csv-non-numeric-transcript-id-full-plus", build("--split", "full_plus", "--out", "{tmp}/o", data="{tmp}/d"),
         ("AnnoMI-full.csv:2", "transcript_id", "'abc'"),
         files=data_dir(annomi_csv().replace("\n0,high", "\nabc,high", 1)), out="o"),
    Case("csv-unknown-interlocutor", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv:3", "interlocutor", "doctor"),
         files=data_dir(annomi_csv().replace("0,high,stress,1,therapist", "0,high,stress,1,doctor", 1)), out="o"),
    Case("csv-empty-utterance", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv:2", "utterance_text"),
         files=data_dir(HEADER + '0,high,x,0,client,""\n' + annomi_csv().split("\n", 1)[1]), out="o"),
    Case("csv-not-utf8", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv:2", "UTF-8", "byte offset"),
         files=data_dir(annomi_csv().encode().replace(b"feeling", b"f\xe9eling", 1)), out="o"),
    Case("csv-unclosed-quote", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "not a readable CSV"),
         files=data_dir(annomi_csv() + '5,high,x,0,client,"I never close this\n'), out="o"),
    Case("csv-no-high-quality", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "mi_quality", "low: 5"),
         files=data_dir(annomi_csv(quality="low")), out="o"),
    Case("csv-all-backchannels", build("--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv", "no training rows"),
         files=data_dir(HEADER + "".join(f"{t},high,x,{u},{'client' if u % 2 == 0 else 'therapist'},"
                                         f"{'I feel sad today.' if u % 2 == 0 else 'Mm-hmm.'}\n"
                                         for t in range(5) for u in range(4))), out="o"),
    Case("csv-lenient-all-rows-bad", build("--lenient", "--out", "{tmp}/o", data="{tmp}/d"), ("AnnoMI-full.csv",),
         files=data_dir(annomi_csv().replace(",client,", ",patient?,").replace(",therapist,", ",doctor,")), out="o"),
    # --- data build: the user's own sessions (--extra) -------------------------------------------
    Case("extra-mistyped-label", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:3", "speaker", "Clinet:", "Client"),
         files={"s.txt": "T: Hello, how are you today?\nC: Not great.\nClinet: I have been very sad lately.\nT: Tell me more.\n"},
         out="o"),
    Case("extra-label-like-continuation", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:3", "speaker", "Note:"),
         files={"s.txt": "T: Hello, how are you today?\nC: Not great.\nNote: the client cried.\nT: Tell me more.\n"}, out="o"),
    Case("extra-unlabelled-first-line", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:2", "speaker", "expected a speaker label"), files={"s.txt": "\nhello there\nT: Hi.\n"}, out="o"),
    Case("extra-empty-file", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "no utterances"), files={"s.txt": ""}, out="o"),
    Case("extra-only-comments", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "no utterances"), files={"s.txt": "# id: s1\n# topic: grief\n"}, out="o"),
    Case("extra-client-only", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "session 's'", "no therapist turns (2 client)"),
         files={"s.txt": "C: I have been very sad lately.\nC: Nobody listens.\n"}, out="o"),
    Case("extra-therapist-only", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "session 'solo'", "no client turns (2 therapist)"),
         files={"s.txt": "# id: solo\nT: How have you been sleeping lately?\nT: Tell me about your week.\n"}, out="o"),
    Case("extra-numbered-speakers", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:1", "speaker", "'Speaker 1:'", "# therapist: Speaker 1"),
         files={"s.txt": "Speaker 1: Hello, what brings you here today?\nSpeaker 2: I have not been sleeping well.\n"},
         out="o"),
    Case("extra-named-speaker", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:3", "speaker", "'Anna:'", "# client: Anna"),
         files={"s.txt": SESSION.replace("\nT: That", "\nAnna: It is hard.\nT: That")}, out="o"),
    Case("extra-emphasised-unknown-label", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:3", "speaker", "'Doctor:'"), files={"s.txt": SESSION.replace("\nT: That", "\n**Doctor:** That")},
         out="o"),
    Case("extra-full-width-colon-unknown-label", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:2", "speaker", "'Mum:'"), files={"s.txt": "T: Hello.\nMum\uff1a She is not sleeping.\nC: Hi.\n"}, out="o"),
    Case("extra-timestamped-unknown-label", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:2", "speaker", "'Nurse:'"),
         files={"s.txt": "[00:00:01] T: Hello.\n[00:00:09] Nurse: She is not sleeping.\n[00:00:15] C: Hi.\n"}, out="o"),
    Case("extra-duplicate-id-header", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:2", "id", "given twice"), files={"s.txt": "# id: s1\n# id: s2\n" + SESSION}, out="o"),
    Case("extra-empty-id-header", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:1", "id", "empty"), files={"s.txt": "# id:\n" + SESSION}, out="o"),
    Case("extra-two-sessions-in-one-file", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:5", "id", "after the first utterance"), files={"s.txt": "# id: a\n" + SESSION + "# id: b\n" + SESSION},
         out="o"),
    Case("extra-only-backchannels", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "no usable exchange", "backchannel"),
         files={"s.txt": "C: I have been very sad lately.\nT: Mm-hmm.\nC: Nobody listens.\nT: Okay.\n"}, out="o"),
    Case("extra-not-utf8", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt:2", "UTF-8"), files={"s.txt": b"T: Hello.\nC: caf\xe9 is closed\n"}, out="o"),
    Case("extra-missing", build("--split", "full_plus", "--extra", "{tmp}/nope.txt", "--out", "{tmp}/o"),
         ("nope.txt", "--extra", "no such"), out="o"),
    Case("extra-is-directory", build("--split", "full_plus", "--extra", "{tmp}/sessions", "--out", "{tmp}/o"),
         ("sessions", "--extra", "directory"), files={"sessions/a.txt": SESSION}, out="o"),
    Case("extra-twice", build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--extra", "{tmp}/s.txt", "--out", "{tmp}/o"),
         ("s.txt", "--extra", "twice"), files={"s.txt": SESSION}, out="o"),
    Case("extra-twice-other-spelling",
         build("--split", "full_plus", "--extra", "{tmp}/s.txt", "--extra", "{tmp}/sub/../s.txt", "--out", "{tmp}/o"),
         ("s.txt", "--extra", "twice"), files={"s.txt": SESSION, "sub/x": ""}, out="o"),
    Case("extra-same-id", build("--split", "full_plus", "--extra", "{tmp}/a.txt", "--extra", "{tmp}/b.txt", "--out", "{tmp}/o"),
         ("b.txt", "# id", "'s1'", "a.txt"), files={"a.txt": "# id: s1\n" + SESSION, "b.txt": "# id: s1\n" + SESSION}, out="o"),
    # --- data show -----------------------------------------------------------------------------
    Case("show-missing-dir", ["data", "show", "{tmp}/nope"], ("nope", "no such dataset directory")),
    Case("show-file", ["data", "show", "{tmp}/f.txt"], ("f.txt", "is a file"), files={"f.txt": "x"}),
    Case("show-not-a-dataset", ["data", "show", "{tmp}/dir"], ("dir", "dataset_dict.json"), files={"dir/a.txt": "x"}),
    Case("show-split-test", ["data", "show", "{built}", "--split", "test"], ("--split", "'test'", "train or heldout")),
    Case("show-index-too-large", ["data", "show", "{built}", "--index", "999"], ("--index", "999")),
    Case("show-index-negative", ["data", "show", "{built}", "--index", "-1"], ("--index", "-1")),
    Case("show-tokenizer-missing", ["data", "show", "{built}", "--tokenizer", "/missing/tok"], ("/missing/tok", "--tokenizer")),
    Case("show-max-chars-negative", ["data", "show", "{built}", "--max-chars", "-1"], ("--max-chars",)),
    Case("show-index-not-int", ["data", "show", "{built}", "--index", "first"], ("index",)),
    Case("data-unknown-command", ["data", "biuld"], ("biuld",)),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------- counted corrections


def test_a_transcript_without_usable_exchange_is_counted_not_listed_in_split_json(tmp_path):
    import json

    useless = "".join(f"99,high,x,{u},{'client' if u % 2 == 0 else 'therapist'},{'I feel sad.' if u % 2 == 0 else 'Mm-hmm.'}\n"
                      for u in range(4))
    write_files(tmp_path, data_dir(annomi_csv(8) + useless))
    out = tmp_path / "ds"
    assert run_door("cli", ["data", "build", "--split", "full_plus", "--data-dir", str(tmp_path / "d"), "--tokenizer",
                            str(TOKENIZER_DIR), "--max-tokens", "512", "--out", str(out)]) == 0
    split = json.loads((out / "split.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    assert "99" not in split["train"] + split["heldout"] and len(split["train"]) == 8
    assert stats["transcripts_without_usable_exchange"] == ["99"] and stats["transcripts_used"] == 8


def test_byte_order_marks_and_windows_line_ends_are_read_as_text(tmp_path):
    import json

    write_files(tmp_path, data_dir(b"\xef\xbb\xbf" + annomi_csv().replace("\n", "\r\n").encode()))
    write_files(tmp_path, {"s.txt": b"\xef\xbb\xbf" + SESSION.replace("\n", "\r\n").encode()})
    out = tmp_path / "ds"
    assert run_door("cli", ["data", "build", "--split", "full_plus", "--data-dir", str(tmp_path / "d"), "--extra",
                            str(tmp_path / "s.txt"), "--tokenizer", str(TOKENIZER_DIR), "--max-tokens", "512",
                            "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversations_by_source"] == {"annomi": 5, "extra": 1}


def test_a_session_in_another_label_style_builds_with_the_right_roles(tmp_path):
    import json

    from datasets import load_from_disk

    session = ("# id: styled\n# therapist: Speaker 1\n# client: Speaker 2\n"
               "[00:00:01] **Speaker 1:** Hello, what brings you here today?\n"
               "00:00:09 - Speaker 2\uff1a I have not been sleeping well.\n"
               "12:03 PM - *Terapeuta*: That sounds exhausting; tell me more.\n")
    write_files(tmp_path, data_dir(annomi_csv()))
    write_files(tmp_path, {"s.txt": session})
    out = tmp_path / "ds"
    assert run_door("cli", ["data", "build", "--split", "full_plus", "--data-dir", str(tmp_path / "d"), "--extra",
                            str(tmp_path / "s.txt"), "--tokenizer", str(TOKENIZER_DIR), "--max-tokens", "512",
                            "--out", str(out)]) == 0
    assert json.loads((out / "stats.json").read_text())["conversations_by_source"] == {"annomi": 5, "extra": 1}
    rows = [row["messages"] for row in load_from_disk(str(out))["train"]]
    styled = [m for m in rows if any("not been sleeping" in turn["content"] for turn in m)]
    assert styled and [(t["role"], t["content"]) for t in styled[0] if t["role"] != "system"] == [
        ("user", "Hi."), ("assistant", "Hello, what brings you here today?"),  # the neutral opener before the therapist
        ("user", "I have not been sleeping well."), ("assistant", "That sounds exhausting; tell me more.")]
