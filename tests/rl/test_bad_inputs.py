"""`recipes/rl_empathy.py` (GRPO), `recipes/dpo_empathy.py` and `therapy-align reward score` refuse bad
input in one line, before anything loads (the harness: ``tests/fixtures/bad_inputs.py``)."""

from __future__ import annotations

import pytest

from tests.fixtures.bad_inputs import PAIRS3, RUN, Case, assert_refused_in_one_line, case_ids

pytestmark = pytest.mark.integration

CASES: list[Case] = [
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
    # --- reward score: never over an input, text it cannot store -------------------------------------
    Case("reward-part-is-input", ["reward", "score", "--in", "{tmp}/r.jsonl.part", "--out", "{tmp}/r.jsonl", "--force"],
         ("r.jsonl.part", "--out", "input"), files={"r.jsonl.part": PAIRS3}, out="r.jsonl"),
    Case("reward-in-lone-surrogate", ["reward", "score", "--in", "{tmp}/p.jsonl", "--out", "{tmp}/r.jsonl"],
         ("p.jsonl:1", "response", "lone surrogate"), files={"p.jsonl": '{"id": "p1", "seeker": "I cannot sleep.", "response": "\\udc80"}\n'}, out="r.jsonl"),
]


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path, request, capsys, monkeypatch):
    assert_refused_in_one_line(case, tmp_path, request, capsys, monkeypatch)
