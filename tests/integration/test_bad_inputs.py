"""The bad-input suite (issue 14): every door refuses bad or edge input in one line, exit status 2.

Each :class:`Case` is a command line (``therapy-align ...``, or a recipe script's arguments) run on
files it sets up in ``tmp_path``, and asserts that

* the exit status is 2;
* stderr holds one ``error:`` line (no traceback) naming the file, line or field (``names``);
* no output is left, or the complete previous output is left exactly as it was (``out``).

Most cases run in-process (``therapy_align.cli.main`` / ``exit_on_user_error(recipe.main)``, which
is exactly what the console script and ``python recipes/x.py`` run); a few real subprocesses
prove that nothing prints a traceback and that ``--debug`` brings it back. The table is also
the inventory behind ``docs/reliability.md``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT, TOKENIZER_DIR, load_recipe_module
from therapy_align.errors import exit_on_user_error

HEADER = "transcript_id,mi_quality,topic,utterance_id,interlocutor,utterance_text\n"


def annomi_csv(transcripts: int = 5, *, quality: str = "high", first_id: int = 0) -> str:
    """A small AnnoMI-shaped CSV: alternating client/therapist turns with real (non-backchannel) replies."""
    rows = []
    for t in range(first_id, first_id + transcripts):
        for u in range(6):
            speaker = "client" if u % 2 == 0 else "therapist"
            text = (f"I have been feeling low since the move, part {u}." if speaker == "client"
                    else f"It sounds like the move took a lot from you; what has been hardest, part {u}?")
            rows.append(f"{t},{quality},stress,{u},{speaker},\"{text}\"\n")
    return HEADER + "".join(rows)


SESSION = "T: Hello, what brings you here today?\nC: I have not been sleeping well.\nT: That sounds exhausting; tell me more.\n"


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    names: tuple[str, ...]  # substrings the error line must contain: file, line, field
    files: dict[str, str | bytes] = field(default_factory=dict)  # tmp files (relative path -> content)
    surface: str = "cli"  # "cli": therapy-align; "sft": recipes/sft_paper.py
    out: str | None = None  # an output path (relative to tmp) that must not appear, or stay as it was
    previous: dict[str, str] = field(default_factory=dict)  # a complete previous output to keep intact
    setup: Callable[[Path], None] | None = None
    skip: str | None = None


def build(*args: str, data: str = "{data}") -> list[str]:
    return ["data", "build", "--data-dir", data, "--tokenizer", "{tok}", *args]


def sft(*args: str) -> list[str]:
    return ["--preset", "tiny", "--runs_dir", "{tmp}/runs", *args]


def data_dir(csv: str | bytes) -> dict[str, str | bytes]:
    return {"d/annomi/AnnoMI-full.csv": csv}


CPU_ONLY = "needs a machine without CUDA"

# ---------------------------------------------------------------------------------------- the table
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
         ("s.txt", "--extra", "no usable exchange", "0 therapist"),
         files={"s.txt": "C: I have been very sad lately.\nC: Nobody listens.\n"}, out="o"),
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
    Case("show-index-not-int", ["data", "show", "{built}", "--index", "first"], ("index",)),
    # --- the root command ------------------------------------------------------------------------
    Case("root-unknown-command", ["trian"], ("trian",)),
    Case("data-unknown-command", ["data", "biuld"], ("biuld",)),
    # --- the SFT recipe: overrides (one clean line, never 50 lines of keys) ------------------------
    Case("sft-unknown-key", sft("--train.lr=1"), ("--train.lr", "did you mean --train.learning_rate"), surface="sft"),
    Case("sft-unknown-section", sft("--optimizer.lr=1"), ("--optimizer.lr", "valid keys start with"), surface="sft"),
    Case("sft-misspelt-key", sft("--lora.rank=4"), ("--lora.rank", "--lora.r"), surface="sft"),
    Case("sft-wrong-type-int", sft("--lora.r=abc"), ("--lora.r", "int"), surface="sft"),
    Case("sft-wrong-type-float", sft("--train.learning_rate=fast"), ("--train.learning_rate", "float"), surface="sft"),
    Case("sft-wrong-type-bool", sft("--train.wandb=maybe"), ("--train.wandb", "bool"), surface="sft"),
    Case("sft-quantization-3bit", sft("--model.quantization=3bit"), ("--model.quantization", "'3bit'"), surface="sft"),
    Case("sft-dtype-unknown", sft("--model.dtype=float8"), ("--model.dtype", "float8"), surface="sft"),
    Case("sft-data-split-unknown", sft("--data.split=all"), ("--data.split", "'all'"), surface="sft"),
    Case("sft-bad-preset", ["--preset", "huge"], ("--preset", "huge"), surface="sft"),
    Case("sft-bad-variant", sft("--variant=annomi70"), ("--variant", "annomi70"), surface="sft"),
    Case("sft-bare-key", sft("train.max_steps=2"), ("train.max_steps=2", "did you mean --train.max_steps=2"), surface="sft"),
    Case("sft-dangling-key", sft("--lora.r"), ("--lora.r", "needs a value"), surface="sft"),
    Case("sft-dangling-preset", ["--preset"], ("--preset", "needs a value"), surface="sft"),
    Case("sft-bad-resume-flag", sft("--resume=maybe"), ("--resume",), surface="sft"),
    Case("sft-paper-preset-on-cpu", ["--runs_dir", "{tmp}/runs"], ("CUDA", "--preset tiny"), surface="sft",
         skip=CPU_ONLY),
    # --- the SFT recipe: ranges, checked in __post_init__ before anything loads ------------------
    Case("sft-max-steps-minus-1", sft("--train.max_steps=-1"), ("--train.max_steps", ">= 1", "-1"), surface="sft"),
    Case("sft-max-steps-0", sft("--train.max_steps=0"), ("--train.max_steps",), surface="sft"),
    Case("sft-learning-rate-negative", sft("--train.learning_rate=-1"), ("--train.learning_rate", "> 0"), surface="sft"),
    Case("sft-learning-rate-0", sft("--train.learning_rate=0"), ("--train.learning_rate",), surface="sft"),
    Case("sft-batch-size-0", sft("--train.per_device_train_batch_size=0"), ("--train.per_device_train_batch_size",), surface="sft"),
    Case("sft-accumulation-0", sft("--train.gradient_accumulation_steps=0"), ("--train.gradient_accumulation_steps",),
         surface="sft"),
    Case("sft-max-length-0", sft("--train.max_length=0"), ("--train.max_length",), surface="sft"),
    Case("sft-warmup-negative", sft("--train.warmup_steps=-3"), ("--train.warmup_steps",), surface="sft"),
    Case("sft-grad-norm-0", sft("--train.max_grad_norm=0"), ("--train.max_grad_norm",), surface="sft"),
    Case("sft-save-steps-0", sft("--train.save_steps=0"), ("--train.save_steps",), surface="sft"),
    Case("sft-save-total-limit-0", sft("--train.save_total_limit=0"), ("--train.save_total_limit",), surface="sft"),
    Case("sft-max-train-rows-0", sft("--data.max_train_rows=0"), ("--data.max_train_rows",), surface="sft"),
    Case("sft-max-heldout-rows-negative", sft("--data.max_heldout_rows=-2"), ("--data.max_heldout_rows",), surface="sft"),
    Case("sft-max-tokens-50", sft("--data.max_tokens=50"), ("max_tokens", "50"), surface="sft"),
    Case("sft-lora-r-0", sft("--lora.r=0"), ("--lora.r", ">= 1"), surface="sft"),
    Case("sft-lora-alpha-0", sft("--lora.alpha=0"), ("--lora.alpha",), surface="sft"),
    Case("sft-lora-dropout-1.5", sft("--lora.dropout=1.5"), ("--lora.dropout", "< 1"), surface="sft"),
    Case("sft-lora-dropout-negative", sft("--lora.dropout=-0.1"), ("--lora.dropout",), surface="sft"),
    Case("sft-lora-no-targets", sft("--lora.target_modules=[]"), ("--lora.target_modules", "empty"), surface="sft"),
    Case("sft-bad-run-name", sft("--name=../elsewhere"), ("--name",), surface="sft"),
    Case("sft-model-path-missing", sft("--model.name_or_path=/nope/model"), ("/nope/model", "does not exist"), surface="sft"),
    Case("sft-model-path-not-a-model", sft("--model.name_or_path={tmp}/m"), ("neither a model",), surface="sft",
         files={"m/notes.txt": "x"}),
    Case("sft-tokenizer-missing", sft("--model.tokenizer=/nope/tok"), ("/nope/tok", "--model.tokenizer"), surface="sft"),
    Case("sft-existing-checkpoints", sft("--name=r1"), ("runs/r1", "--resume"), surface="sft",
         previous={"runs/r1/checkpoint-2/trainer_state.json": "{}"}),
]


# ---------------------------------------------------------------------------------------- running


def _fill(text: str, env: dict[str, str]) -> str:
    for key, value in env.items():
        text = text.replace("{" + key + "}", value)
    return text


def _snapshot(root: Path) -> dict[str, str]:
    if root.is_file():
        return {"": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


_RECIPES: dict[str, object] = {}


def _recipe(name: str):
    if name not in _RECIPES:
        _RECIPES[name] = load_recipe_module(REPO_ROOT / "recipes" / f"{name}.py", f"bad_inputs_{name}")
    return _RECIPES[name]


def run_door(surface: str, argv: list[str]) -> int:
    """Run one door in-process as its console script / ``__main__`` does; the exit status."""
    try:
        if surface == "cli":
            from therapy_align.cli import main

            main(argv)
        else:
            exit_on_user_error(_recipe({"sft": "sft_paper"}[surface]).main)(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return 0


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A small dataset written by `data build` (for the `data show` cases)."""
    root = tmp_path_factory.mktemp("built")
    _write(root, data_dir(annomi_csv()))
    out = root / "ds"
    assert run_door("cli", ["data", "build", "--data-dir", str(root / "d"), "--tokenizer", str(TOKENIZER_DIR),
                            "--max-tokens", "512", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    if case.skip == CPU_ONLY:
        import torch

        if torch.cuda.is_available():
            pytest.skip(CPU_ONLY)
    monkeypatch.chdir(tmp_path)
    env = {"tmp": str(tmp_path), "data": str(DATA_DIR), "tok": str(TOKENIZER_DIR)}
    if any("{built}" in arg for arg in case.argv):
        env["built"] = str(request.getfixturevalue("built"))
    _write(tmp_path, case.files)
    _write(tmp_path, case.previous)
    if case.setup:
        case.setup(tmp_path)
    before = _snapshot(tmp_path)
    capsys.readouterr()

    status = run_door(case.surface, [_fill(arg, env) for arg in case.argv])

    captured = capsys.readouterr()
    assert status == 2, f"exit status {status}\n{captured.out}\n{captured.err}"
    assert "Traceback" not in captured.err + captured.out
    if case.surface == "cli" and "error:" not in captured.err:  # typer's own usage error (a box)
        message = " ".join(captured.err.split())
    else:
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) <= 2 and lines[0].startswith("error: "), captured.err
        message = " ".join(lines)
    for name in case.names:
        assert _fill(name, env) in message, f"{name!r} not in {message!r}"
    after = _snapshot(tmp_path)
    assert after == before, "the refused command changed files (new, removed or rewritten)"
    if case.out is not None:
        assert not (tmp_path / case.out).exists()
    assert not list(tmp_path.glob("**/.*tmp*")), "a temporary file was left behind"
