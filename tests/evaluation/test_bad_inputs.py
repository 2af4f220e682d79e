"""`therapy-align generate`, `sweep`, `recipes/eval_paper.py` and `recipes/eval_multiturn.py` refuse bad
input in one line (the harness: ``tests/fixtures/bad_inputs.py``); a killed generation resumes only
from what is still true."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.bad_inputs import gens  # noqa: F401 (a pytest fixture the stale-resume cases use)
from tests.fixtures.bad_inputs import (
    ENV, INPUTS3, INPUTS_1000, Case, assert_refused_in_one_line, case_ids, gen, kill_when, previous_gens, read_jsonl,
    rewrite_jsonl, run_door, sweep_yaml,
)

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- generate: inputs and options (all refused before a model loads) --------------------------
    Case("generate-limit-negative", gen("--limit", "-3"), ("limit", "-3"), files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-limit-zero", gen("--limit", "0"), ("limit",), files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-out-is-input", gen() + ["--out", "{tmp}/in.jsonl"], ("in.jsonl", "--out", "same path"),
         previous={"in.jsonl": INPUTS3}),
    Case("generate-out-is-directory", gen() + ["--out", "{tmp}/gdir"], ("gdir", "--out", "directory"),
         files={"in.jsonl": INPUTS3, "gdir/keep.txt": "x"}),
    Case("generate-out-parent-is-file", gen() + ["--out", "{tmp}/f/g.jsonl"], ("--out", "not a directory"),
         files={"in.jsonl": INPUTS3, "f": "a file"}),
    Case("generate-inputs-empty", gen(), ("in.jsonl", "empty"), files={"in.jsonl": ""}, out="g.jsonl"),
    Case("generate-inputs-not-utf8", gen(), ("in.jsonl:2", "UTF-8"),
         files={"in.jsonl": INPUTS3.encode().replace(b"day 1", b"d\xe9y 1")}, out="g.jsonl"),
    Case("generate-inputs-bad-json", gen(), ("in.jsonl:2", "JSON"),
         files={"in.jsonl": INPUTS3.replace('"id": "q1"', '"id": "q1', 1)}, out="g.jsonl"),
    Case("generate-inputs-missing-text", gen(), ("in.jsonl:1", "text"),
         files={"in.jsonl": INPUTS3.replace('"text"', '"body"', 1)}, out="g.jsonl"),
    Case("generate-inputs-duplicate-id", gen(), ("in.jsonl:2", "q0"),
         files={"in.jsonl": INPUTS3.replace('"q1"', '"q0"', 1)}, out="g.jsonl"),
    Case("generate-inputs-int-and-str-id", gen(), ("in.jsonl:2", "'1'", "repeats line 1"),
         files={"in.jsonl": '{"id": 1, "text": "I feel low."}\n{"id": "1", "text": "I feel lower."}\n'}, out="g.jsonl"),
    Case("generate-inputs-missing", gen() + ["--inputs", "{tmp}/nope.jsonl"], ("nope.jsonl",), out="g.jsonl"),
    Case("generate-inputs-directory", gen() + ["--inputs", "{tmp}/d"], ("d",), files={"d/x.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-model-missing", gen() + ["--model", "/nope/model"], ("/nope/model", "--model"),
         files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-model-not-a-model", gen() + ["--model", "{tmp}/m"], ("--model", "neither a model"),
         files={"in.jsonl": INPUTS3, "m/x.txt": "x"}, out="g.jsonl"),
    Case("generate-hub-model-offline", gen() + ["--model", "someone/no-such-model"], ("--model", "someone/no-such-model"),
         files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-prompt-unknown", gen("--prompt", "kindest"), ("prompt", "kindest"), files={"in.jsonl": INPUTS3},
         out="g.jsonl"),
    Case("generate-prompt-file-not-utf8", gen("--prompt", "{tmp}/p.txt"), ("p.txt", "UTF-8"),
         files={"in.jsonl": INPUTS3, "p.txt": b"Be \xff kind"}, out="g.jsonl"),
    Case("generate-max-new-tokens-0", gen("--max-new-tokens", "0"), ("max_new_tokens",), files={"in.jsonl": INPUTS3},
         out="g.jsonl"),
    Case("generate-batch-size-0", gen("--batch-size", "0"), ("batch_size",), files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-sampling-temperature-0", gen("--do-sample", "--temperature", "0"), ("generation", "temperature"),
         files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    Case("generate-sampling-top-p-1.5", gen("--do-sample", "--top-p", "1.5"), ("generation", "top_p"),
         files={"in.jsonl": INPUTS3}, out="g.jsonl"),
    # --- generate: stale resume (a finished file made from something else is refused, kept whole) -----
    Case("generate-stale-input-text", gen(), ("g.jsonl:2", "input", "'q1'", "--force"), needs=("gens",),
         setup=previous_gens(lambda text: text.replace("day 1.", "day 1, and worse."))),
    Case("generate-stale-model", gen() + ["--model", str(REPO_ROOT / "artifacts" / "tiny-llama-2")],
         ("g.jsonl:1", "model", "--force"), needs=("gens",), setup=previous_gens()),
    Case("generate-stale-settings", gen("--max-new-tokens", "5"), ("g.jsonl:1", "settings", "--force"), needs=("gens",),
         setup=previous_gens()),
    Case("generate-stale-sampling", gen("--do-sample"), ("g.jsonl:1", "settings"), needs=("gens",), setup=previous_gens()),
    Case("generate-stale-prompt", gen("--prompt", "new"), ("g.jsonl:1", "prompt"), needs=("gens",), setup=previous_gens()),
    # --- sweep ---------------------------------------------------------------------------------------------
    Case("sweep-yaml-broken", ["sweep", "{tmp}/sweep.yaml"], ("sweep.yaml", "YAML"),
         files=sweep_yaml("parameters:\n  prompt: {values: [standard, new]\n")),
    Case("sweep-yaml-not-utf8", ["sweep", "{tmp}/sweep.yaml"], ("sweep.yaml",),
         files=sweep_yaml(b"parameters:\n  prompt:\n    values: [st\xffndard]\n")),
    Case("sweep-yaml-no-parameters", ["sweep", "{tmp}/sweep.yaml"], ("sweep.yaml", "parameters"),
         files=sweep_yaml("method: grid\n")),
    Case("sweep-yaml-not-grid", ["sweep", "{tmp}/sweep.yaml"], ("method", "grid"),
         files=sweep_yaml("method: bayes\nparameters:\n  prompt: {values: [standard]}\n")),
    Case("sweep-yaml-missing", ["sweep", "{tmp}/nope.yaml"], ("nope.yaml",)),
    Case("sweep-unknown-key", ["sweep", "{tmp}/sweep.yaml"], ("unknown config key",),
         files=sweep_yaml("parameters:\n  promt: {values: [standard]}\n")),
    Case("sweep-limit-negative", ["sweep", "{tmp}/sweep.yaml", "--limit", "-5", "--model", "tiny-base", "--out", "{tmp}/sw"],
         ("--limit", "-5"), files=sweep_yaml("parameters:\n  prompt: {values: [standard]}\n"), out="sw"),
    Case("sweep-set-without-equals", ["sweep", "{tmp}/sweep.yaml", "--set", "limit"], ("--set",),
         files=sweep_yaml("parameters:\n  prompt: {values: [standard]}\n")),
    # --- recipes/eval_paper.py -------------------------------------------------------------------------
    Case("eval-limit-negative", ["--preset", "tiny", "--limit=-5", "--out={tmp}/ev"], ("limit", "-5"), surface="eval",
         out="ev"),
    Case("eval-unknown-key", ["--preset", "tiny", "--limt=5", "--out={tmp}/ev"], ("--limt", "did you mean --limit"),
         surface="eval", out="ev"),
    Case("eval-bad-preset", ["--preset", "huge"], ("--preset", "huge"), surface="eval"),
    Case("eval-unknown-model", ["--preset", "tiny", "--models=base,gpt", "--out={tmp}/ev", f"--inputs={INPUTS_1000}"],
         ("models", "gpt"),
         surface="eval", out="ev"),
    Case("eval-unknown-prompt", ["--preset", "tiny", "--prompts=standard,kindest", "--out={tmp}/ev",
                                 f"--inputs={INPUTS_1000}"], ("kindest",),
         surface="eval", out="ev"),
    Case("eval-inputs-missing", ["--preset", "tiny", "--inputs={tmp}/nope.jsonl", "--out={tmp}/ev"], ("nope.jsonl",),
         surface="eval", out="ev"),
    Case("eval-references-missing", ["--preset", "tiny", "--references=human={tmp}/nope.jsonl", "--out={tmp}/ev",
                                     f"--inputs={INPUTS_1000}"], ("nope.jsonl", "references"), surface="eval", out="ev"),
    Case("eval-extra-model-missing", ["--preset", "tiny", "--extra_models=grpo={tmp}/runs/grpo", "--out={tmp}/ev",
                                      f"--inputs={INPUTS_1000}"], ("runs/grpo", "does not exist"), surface="eval", out="ev"),
    Case("eval-references-bad-entry", ["--preset", "tiny", "--references=human=", "--out={tmp}/ev", f"--inputs={INPUTS_1000}"],
         ("references", "bad entry"), surface="eval", out="ev"),
    Case("eval-max-new-tokens-0", ["--preset", "tiny", "--generation.max_new_tokens=0", "--out={tmp}/ev"],
         ("max_new_tokens",), surface="eval", out="ev"),
    Case("eval-out-is-file", ["--preset", "tiny", "--out={tmp}/ev"], ("ev", "is a file"), surface="eval",
         previous={"ev": "a file"}),
    # --- recipes/eval_multiturn.py ------------------------------------------------------------------
    Case("multiturn-sessions-limit-negative", ["--preset", "tiny", "--out={tmp}/mt", "--sessions.limit=-1"],
         ("--sessions.limit",), surface="multiturn", out="mt"),
    Case("multiturn-window-too-small", ["--preset", "tiny", "--out={tmp}/mt", "--context.max_tokens=10"],
         ("--context.max_tokens",), surface="multiturn", out="mt"),
    Case("multiturn-opener-unknown", ["--preset", "tiny", "--out={tmp}/mt", "--context.opener_policy=x"],
         ("--context.opener_policy", "neutral_opener"), surface="multiturn", out="mt"),
    Case("multiturn-zero-turns", ["--preset", "tiny", "--out={tmp}/mt", "--simulation.n_turns=0"],
         ("n_turns",), surface="multiturn", out="mt"),
    # --- generate: never over an input, text it cannot store -----------------------------------------
    Case("gen-part-is-input-force", gen("--force") + ["--inputs", "{tmp}/g.jsonl.part"],
         ("g.jsonl.part", "--out", "input"), files={"g.jsonl.part": INPUTS3}, out="g.jsonl"),
    Case("gen-in-lone-surrogate", gen(), ("in.jsonl:1", "text", "lone surrogate"),
         files={"in.jsonl": '{"id": "m1", "text": "I feel \\ud800 alone"}\n'}, out="g.jsonl"),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------- stale resume after a kill


def test_killed_generation_with_changed_input_and_model_refuses_then_force_recomputes(tmp_path, capsys):
    from therapy_align.store import digest

    inputs, out = tmp_path / "in.jsonl", tmp_path / "g.jsonl"
    inputs.write_text("".join(INPUTS_1000.read_text().splitlines(keepends=True)[:10]))
    args = ["generate", "--inputs", str(inputs), "--out", str(out), "--max-new-tokens", "16"]
    proc = subprocess.Popen([sys.executable, "-m", "therapy_align.cli", *args, "--model", "tiny-base", "--batch-size", "1"],
                            cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out.with_name(out.name + ".part")
    kill_when(proc, part, 2)
    done = [row["id"] for row in read_jsonl(part)]
    assert 2 <= len(done) < 10 and not out.exists()
    killed_stamp = read_jsonl(part)[0]["_made_from"]

    changed = done[0]
    rewrite_jsonl(inputs, changed, "text", "I changed my post: I feel worse than before.")
    other_model = str(REPO_ROOT / "artifacts" / "tiny-llama-2")  # the same weights under another reference
    kept = part.read_bytes()
    capsys.readouterr()
    assert run_door("cli", [*args, "--model", "tiny-base"]) == 2
    assert "input" in capsys.readouterr().err and part.read_bytes() == kept
    assert run_door("cli", [*args, "--model", other_model]) == 2
    err = capsys.readouterr().err
    assert "model and input" in err and repr(done[0]) in err and part.read_bytes() == kept, err

    assert run_door("cli", [*args, "--model", other_model, "--force"]) == 0
    texts = {row["id"]: row["text"] for row in read_jsonl(inputs)}
    records = read_jsonl(out)
    assert sorted(row["id"] for row in records) == sorted(texts) and not part.exists()
    stamps = {(row["_made_from"]["model"], row["_made_from"]["settings"], row["_made_from"]["prompt"]) for row in records}
    assert len(stamps) == 1 and next(iter(stamps))[0] != killed_stamp["model"]
    for row in records:  # no stale record survives: every line was made from today's text and model
        assert row["_made_from"]["input"] == digest(texts[row["id"]])
        assert row["model"] == other_model and row["text"] == texts[row["id"]]


def test_an_input_longer_than_the_window_is_cut_from_the_left_and_counted(tmp_path, capsys):
    import json

    inputs, out = tmp_path / "in.jsonl", tmp_path / "g.jsonl"
    long_text = " ".join(f"word{i}" for i in range(6000)) + " THE-END"
    inputs.write_text(json.dumps({"id": "long", "text": long_text}) + "\n"
                      + json.dumps({"id": "short", "text": "I feel low."}) + "\n")
    capsys.readouterr()
    assert run_door("cli", ["generate", "--model", "tiny-base", "--inputs", str(inputs), "--out", str(out),
                            "--max-new-tokens", "2", "--batch-size", "1"]) == 0
    assert "1 inputs over the model's window cut from the left" in " ".join(capsys.readouterr().err.split())
    records = {row["id"]: row for row in read_jsonl(out)}
    assert records["long"]["input_tokens_cut"] > 0 and "input_tokens_cut" not in records["short"]
    assert records["long"]["text"] == long_text, "the record keeps the input as given"
