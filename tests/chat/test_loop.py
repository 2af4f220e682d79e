"""The chat loop survives what a person types: every line is screened first (commands and "/" lines
included), bytes that are not UTF-8, `/save` onto a directory or an existing file, and a model that
raises. The loop runs in-process on the real tiny model; the model is swapped for one that fails if
used wherever a line must be withheld."""

from __future__ import annotations

import io
import json

import pytest

from tests.chat.test_chat import ModelThatMustNotBeCalled, forced
from therapy_align.chat.cli import run_loop
from therapy_align.chat.session import ChatSession
from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.safety.safe_reply import SafeResponsePolicy

pytestmark = pytest.mark.integration

REPLY = "That sounds hard. Tell me more."


@pytest.fixture(scope="module")
def tiny_model():
    import tempfile

    from transformers import AutoModelForCausalLM

    from therapy_align.training.tiny_model import materialize_tiny_model

    path = materialize_tiny_model(tempfile.mkdtemp(prefix="tiny-loop-") + "/tiny-llama-2")
    return AutoModelForCausalLM.from_pretrained(path).eval()


def session_with(model, tokenizer, **kwargs) -> ChatSession:
    return ChatSession(model, tokenizer, "You are a counsellor.", SafeResponsePolicy("US"),
                       generation=GenerationSpec(max_new_tokens=16), generate_kwargs=forced(tokenizer, REPLY), **kwargs)


def chat(session, stdin: str | bytes) -> str:
    """Run the loop on ``stdin`` (bytes go through a strict UTF-8 text stream, as sys.stdin would)."""
    if isinstance(stdin, bytes):
        stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    else:
        stream = io.StringIO(stdin)
    out = io.StringIO()
    run_loop(session, stream, out)
    return out.getvalue()


@pytest.mark.parametrize("line", [
    "/kill myself tonight, I've decided",
    "/save I'm going to kill myself tonight",
    "/quit I'm going to kill myself tonight",
    "/ I have the pills and I'm taking them all now",
])
def test_a_crisis_line_starting_with_slash_is_screened_and_never_reaches_the_model(tokenizer, line):
    session = session_with(ModelThatMustNotBeCalled(), tokenizer, context_window=4096)
    out = chat(session, line + "\n")
    assert "988" in out and "goodbye" in out and session.counters.model_calls == 0
    assert session.counters.inputs_flagged == 1 and session.turns[0].content == line
    assert "is not a command" not in out  # a withheld line is not discussed as a command


def test_an_unknown_slash_line_is_a_message_to_the_model(tiny_model, tokenizer):
    session = session_with(tiny_model, tokenizer)
    out = chat(session, "/shrug I don't know what to say\n/help\n")
    assert "/shrug is not a command" in out and REPLY in out and session.counters.model_calls == 1
    assert session.turns[0].content == "/shrug I don't know what to say"
    assert "/save FILE --force" in out  # /help


def test_a_windows_1252_byte_on_stdin_is_replaced_not_fatal(tiny_model, tokenizer):
    session = session_with(tiny_model, tokenizer)
    out = chat(session, "I don\x92t sleep well\nsecond line\n".encode("latin-1"))
    assert out.count(REPLY) == 2 and "goodbye" in out
    assert [t.content for t in session.turns[0::2]] == ["I don\ufffdt sleep well", "second line"]


def test_save_onto_a_directory_is_refused_in_one_line(tiny_model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = session_with(tiny_model, tokenizer)
    out = chat(session, f"hello\n/save .\n/save {tmp_path}\n/save sub/\n/save\nstill here\n")
    assert out.count("is a directory") == 2 and "names a directory" in out and "usage: /save FILE" in out
    assert out.count(REPLY) == 2 and "error:" not in out and list(tmp_path.iterdir()) == []


def test_save_onto_an_existing_file_needs_force(tiny_model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_bytes(b"my own notes \xff\n")
    session = session_with(tiny_model, tokenizer)
    out = chat(session, "hello\n/save notes.json\n/SAVE notes.json\n")
    assert out.count("exists; not replaced") == 2 and "--force" in out
    assert (tmp_path / "notes.json").read_bytes() == b"my own notes \xff\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]  # no temporary file left
    for command in ("/save notes.json --force", "/save! notes.json", "/save --force notes.json"):
        out = chat(session, command + "\n")
        assert "saved 2 turns" in out, out
        assert json.loads((tmp_path / "notes.json").read_text())["turns"][0]["content"] == "hello"


class RaisingModel:
    """A model whose generate() fails halfway (out of memory, a bad adapter, ...)."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **kwargs):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")


def test_an_exception_in_generation_does_not_end_the_session(tiny_model, tokenizer, tmp_path):
    session = session_with(RaisingModel(tiny_model), tokenizer)
    out = chat(session, "hello\nI cut myself again last night\n")
    assert out.count("no reply: the model failed: RuntimeError: CUDA out of memory.") == 2 and "goodbye" in out
    assert "Tried to allocate" not in out  # one line
    assert "988" in out  # the resources a moderate message is owed come without the model
    assert session.counters.generation_errors == 2
    session.model = tiny_model
    out = chat(session, f"are you there?\n/save {tmp_path / 's.json'}\n")
    assert REPLY in out and "saved 6 turns" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert [t.get("safety", {}).get("source") for t in saved["turns"][1::2]] == ["error", "error", None]
    assert saved["safety_events"]["generation_errors"] == 2
    # the failed exchanges are in the transcript, not in what the model is shown
    assert [m["content"] for m in session.model_messages("next") if m["role"] == "user"] == ["are you there?", "next"]


def test_any_other_exception_on_a_line_is_one_line_and_the_loop_goes_on(tiny_model, tokenizer):
    session = session_with(tiny_model, tokenizer)

    def broken_reset():
        raise ValueError("state is broken")

    session.reset = broken_reset
    out = chat(session, "/reset\nhello\n")
    assert "(error: ValueError: state is broken; the conversation goes on)" in out and REPLY in out
