"""`therapy-align empeval score`, `empeval probe` and `recipes/empeval_train.py` refuse bad input in one
line (the harness: ``tests/fixtures/bad_inputs.py``); a killed scoring resumes only from what is still
true."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.bad_inputs import artifact, scores  # noqa: F401 (pytest fixtures the cases use)
from tests.fixtures.bad_inputs import (
    ENV, PAIRS3, Case, assert_refused_in_one_line, case_ids, copy_artifact, json_edit, kill_when, perturb_weights,
    previous_scores, read_jsonl, rewrite_jsonl, run_door, score,
)

pytestmark = pytest.mark.integration

CASES: list[Case] = [
    # --- empeval score: pairs and outputs ------------------------------------------------------------
    Case("score-out-is-input", score() + ["--out", "{tmp}/pairs.jsonl"], ("pairs.jsonl", "--out", "same path"),
         previous={"pairs.jsonl": PAIRS3}),
    Case("score-out-is-directory", score() + ["--out", "{tmp}/sdir"], ("sdir", "--out", "directory"),
         files={"pairs.jsonl": PAIRS3, "sdir/keep": "x"}),
    Case("score-in-empty", score(), ("pairs.jsonl", "empty"), files={"pairs.jsonl": ""}, out="s.jsonl"),
    Case("score-in-missing", score() + ["--in", "{tmp}/nope.jsonl"], ("nope.jsonl",), out="s.jsonl"),
    Case("score-in-not-utf8", score(), ("pairs.jsonl:3", "UTF-8"),
         files={"pairs.jsonl": PAIRS3.encode().replace(b"night 2", b"n\xefght 2")}, out="s.jsonl"),
    Case("score-in-missing-response", score(), ("pairs.jsonl:2", "response"),
         files={"pairs.jsonl": PAIRS3.replace('"response"', '"reply"').replace('"reply"', '"response"', 1)}, out="s.jsonl"),
    Case("score-in-response-not-text", score(), ("pairs.jsonl:1", "response"),
         files={"pairs.jsonl": PAIRS3.replace('"response": "That sounds hard; what keeps you up?"', '"response": 3', 1)},
         out="s.jsonl"),
    Case("score-batch-size-0", score("--batch-size", "0"), ("batch-size",), files={"pairs.jsonl": PAIRS3}, out="s.jsonl"),
    # --- empeval score: the artifact, checked whole on load ---------------------------------------
    Case("artifact-missing", score(model="{tmp}/noart"), ("noart", "--model", "empeval train"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl"),
    Case("artifact-without-tokenizer", score(model="{tmp}/art"), ("art", "tokenizer"), files={"pairs.jsonl": PAIRS3},
         out="s.jsonl", needs=("artifact",), setup=copy_artifact(lambda art: [
             (art / name).unlink() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
             if (art / name).exists()])),
    Case("artifact-config-not-json", score(model="{tmp}/art"), ("empeval_config.json",), files={"pairs.jsonl": PAIRS3},
         out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(lambda art: (art / "empeval_config.json").write_text('{"mechanisms": ['))),
    Case("artifact-config-missing-key", score(model="{tmp}/art"), ("empeval_config.json", "max_length"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(json_edit("empeval_config.json", lambda body: body.pop("max_length")))),
    Case("artifact-config-other-mechanisms", score(model="{tmp}/art"), ("empeval_config.json", "mechanisms"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(json_edit("empeval_config.json", lambda body: body["mechanisms"].pop()))),
    Case("artifact-weights-missing", score(model="{tmp}/art"), ("art", "empeval_model.safetensors"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(lambda art: (art / "empeval_model.safetensors").unlink())),
    Case("artifact-weights-truncated", score(model="{tmp}/art"), ("art", "empeval_model.safetensors"), files={"pairs.jsonl": PAIRS3},
         out="s.jsonl", needs=("artifact",), setup=copy_artifact(lambda art: (art / "empeval_model.safetensors").write_bytes(
             (art / "empeval_model.safetensors").read_bytes()[:5000]))),
    Case("artifact-weights-random-bytes", score(model="{tmp}/art"), ("art", "empeval_model.safetensors"), files={"pairs.jsonl": PAIRS3},
         out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(lambda art: (art / "empeval_model.safetensors").write_bytes(os.urandom(4096)))),
    Case("artifact-weights-changed-after-training", score(model="{tmp}/art"), ("empeval_model.safetensors", "weights_sha256"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl", needs=("artifact",), setup=copy_artifact(lambda art: (
             art / "empeval_model.safetensors").write_bytes((art / "empeval_model.safetensors").read_bytes()[:-4] + b"    "))),
    Case("artifact-encoder-config-broken", score(model="{tmp}/art"), ("art",), files={"pairs.jsonl": PAIRS3},
         out="s.jsonl", needs=("artifact",), setup=copy_artifact(lambda art: (art / "config.json").write_text("{"))),
    # --- empeval score: stale resume -------------------------------------------------------------------
    Case("score-stale-response", score(), ("s.jsonl:2", "input", "--force"), needs=("scores",),
         setup=previous_scores(lambda text: text.replace("night 1.", "night 1!"))),
    Case("score-stale-artifact", score(model="{tmp}/art"), ("s.jsonl:1", "artifact", "--force"), needs=("scores", "artifact"),
         setup=lambda tmp, env: (previous_scores()(tmp, env), copy_artifact(perturb_weights)(tmp, env))),
    # --- recipes/empeval_train.py ---------------------------------------------------------------------
    Case("empeval-train-learning-rate-negative", ["--out={tmp}/art", "--train.learning_rate=-1"],
         ("--train.learning_rate",), surface="empeval", out="art"),
    Case("empeval-train-zero-epochs", ["--out={tmp}/art", "--train.max_epochs=0"], ("--train.max_epochs",),
         surface="empeval", out="art"),
    Case("empeval-train-dropout-1.5", ["--out={tmp}/art", "--train.dropout=1.5"], ("--train.dropout",),
         surface="empeval", out="art"),
    Case("empeval-train-batch-size-0", ["--out={tmp}/art", "--train.batch_size=0"], ("--train.batch_size",),
         surface="empeval", out="art"),
    # --- empeval probe ---------------------------------------------------------------------------
    Case("probe-model-missing", ["empeval", "probe", "--model", "{tmp}/noart"], ("noart", "--model")),
    Case("probe-limit-negative", ["empeval", "probe", "--limit", "-1"], ("--limit",)),
    # --- empeval score: never over an input, text it cannot store ------------------------------------
    Case("score-part-is-input-force", score("--force", model="{tmp}/noart") + ["--in", "{tmp}/s.jsonl.part"],
         ("s.jsonl.part", "--out", "input"), files={"s.jsonl.part": PAIRS3}, out="s.jsonl"),
    Case("score-summary-is-input", score(model="{tmp}/noart") + ["--in", "{tmp}/s.summary.json"],
         ("s.summary.json", "--out", "input"), files={"s.summary.json": PAIRS3}, out="s.jsonl"),
    Case("score-in-lone-surrogate", score(model="{tmp}/noart"), ("pairs.jsonl:1", "response", "lone surrogate"),
         files={"pairs.jsonl": '{"id": "p1", "seeker": "I cannot sleep.", "response": "\\udc80"}\n'}, out="s.jsonl"),
    Case("probe-out-is-a-file", ["empeval", "probe", "--model", "{tmp}/noart", "--out", "{tmp}/p.txt"],
         ("p.txt", "--out", "a file"), previous={"p.txt": "notes"}),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)


# ---------------------------------------------------------------------------------------- stale resume after a kill


def test_killed_scoring_with_changed_pair_and_artifact_refuses_then_force_recomputes(tmp_path, artifact, capsys):
    import json
    import shutil

    from therapy_align.evaluation.scorers.empeval import artifact_identity
    from therapy_align.scoring import Pair, pair_input
    from therapy_align.store import digest

    pairs_path, out = tmp_path / "pairs.jsonl", tmp_path / "s.jsonl"
    pairs_path.write_text("".join(json.dumps({"id": f"p{i}", "seeker": f"I cannot sleep, night {i}.",
                                              "response": "That sounds hard; what keeps you up at night?"}) + "\n"
                                  for i in range(1200)))
    args = ["empeval", "score", "--in", str(pairs_path), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "therapy_align.cli", *args, "--model", str(artifact), "--batch-size", "1"],
                            cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out.with_name(out.name + ".part")
    kill_when(proc, part, 1)
    done = [row["id"] for row in read_jsonl(part)]
    assert 1 <= len(done) < 1200 and not out.exists()
    killed_stamp = read_jsonl(part)[0]["_made_from"]["artifact"]

    rewrite_jsonl(pairs_path, done[0], "response", "Have you tried just sleeping more?")
    retrained = tmp_path / "art"
    shutil.copytree(artifact, retrained)
    perturb_weights(retrained)
    kept = part.read_bytes()
    capsys.readouterr()
    assert run_door("cli", [*args, "--model", str(artifact)]) == 2
    assert "input" in capsys.readouterr().err and part.read_bytes() == kept
    assert run_door("cli", [*args, "--model", str(retrained)]) == 2
    err = capsys.readouterr().err
    assert "artifact and input" in err and part.read_bytes() == kept, err

    assert run_door("cli", [*args, "--model", str(retrained), "--force"]) == 0
    pairs = {row["id"]: Pair(id=row["id"], seeker=row["seeker"], response=row["response"]) for row in read_jsonl(pairs_path)}
    records = read_jsonl(out)
    assert len(records) == 1200 and {row["id"] for row in records} == set(pairs) and not part.exists()
    assert {row["_made_from"]["artifact"] for row in records} == {digest(artifact_identity(retrained))} != {killed_stamp}
    for row in records:  # no stale record survives
        assert row["_made_from"]["input"] == digest(pair_input(pairs[row["id"]]))


def test_two_score_outputs_in_one_directory_keep_their_own_summaries(tmp_path, artifact):
    import json

    (tmp_path / "a.jsonl").write_text(PAIRS3)
    (tmp_path / "b.jsonl").write_text(PAIRS3.splitlines(keepends=True)[0])
    for name in ("a", "b"):
        assert run_door("cli", ["empeval", "score", "--model", str(artifact), "--in", str(tmp_path / f"{name}.jsonl"),
                                "--out", str(tmp_path / "out" / f"{name}.scores.jsonl"), "--no-progress"]) == 0
    summaries = {name: json.loads((tmp_path / "out" / f"{name}.scores.summary.json").read_text()) for name in "ab"}
    assert summaries["a"]["input"].endswith("a.jsonl") and summaries["b"]["input"].endswith("b.jsonl")
    assert summaries["a"] != summaries["b"]
