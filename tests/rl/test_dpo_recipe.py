"""recipes/dpo_empathy.py --preset tiny on CPU, cut to seconds: pairs saved with every reward term
and obeying the pair rule, the `ref` adapter exists and equals the policy at step 1 (zero implicit
reward), judge.jsonl and model card, --resume of a finished round, and a generated reply from the adapter."""

from __future__ import annotations

import json
import math
import sys

import pytest

from tests.fixtures.rl_runs import REPO_ROOT, run, shared_root, sft_run, small_rl_args, tiny_evaluator

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two recipe runs (~50 s each on the idle box); the GRPO tests cover the shared parts
RECIPE = REPO_ROOT / "recipes" / "dpo_empathy.py"
FAST = ["--preset", "tiny", "--sampling.prompts_per_round=6", "--sampling.generation.max_new_tokens=10",
        "--dpo.max_steps=2", "--dpo.save_steps=1", "--dpo.per_device_train_batch_size=2", "--run.wandb=false",
        "--judge.every_steps=2", "--pairs.min_margin=0.01", "--pairs.max_length_ratio=3.0"]


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo")
    sft, evaluator = sft_run(), tiny_evaluator(shared_root())
    args = [sys.executable, str(RECIPE), *FAST, *small_rl_args(sft, evaluator, root, "dpo")]
    first = run([*args, "--rounds=1"])
    assert first.returncode == 0, first.stderr[-4000:]
    second = run([*args, "--rounds=2", "--resume"])  # round 1 is reused, round 2 runs
    assert second.returncode == 0, second.stderr[-4000:]
    return root / "dpo"


def test_pairs_keep_every_term_and_obey_the_rule(dpo_run):
    for k in (1, 2):
        pairs = [json.loads(line) for line in (dpo_run / f"round-{k}" / "pairs.jsonl").read_text().splitlines()]
        stats = json.loads((dpo_run / f"round-{k}" / "pairs_stats.json").read_text())
        assert pairs and stats["kept"] == len(pairs) and stats["prompts"] == 6
        for pair in pairs:
            assert pair["margin"] >= 0.01 and pair["chosen_total"] > pair["rejected_total"]
            ratio = max(pair["chosen_tokens"], pair["rejected_tokens"]) / min(pair["chosen_tokens"], pair["rejected_tokens"])
            assert ratio <= 3.0
            assert set(pair["chosen_terms"]) >= {"empeval", "specificity", "template", "copy", "length", "safety"}
        samples = (dpo_run / f"round-{k}" / "scored.jsonl").read_text().splitlines()
        assert len(samples) == 6 * 4


def test_ref_adapter_equals_the_policy_at_step_one(dpo_run):
    metrics = json.loads((dpo_run / "metrics.json").read_text())
    assert metrics["adapters"] == ["default", "ref"]
    first = json.loads((dpo_run / "round-1" / "checkpoint-1" / "trainer_state.json").read_text())["log_history"][0]
    assert first["step"] == 1 and first["rewards/chosen"] == 0.0 and first["rewards/rejected"] == 0.0
    assert not math.isnan(first["loss"])
    assert not (dpo_run / "adapter" / "ref").exists()
    assert metrics["resumed_from"] == "round-1"


def test_judging_model_card_and_generation(dpo_run, tmp_path):
    rows = [json.loads(line) for line in (dpo_run / "judge.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 2, 4]
    assert "not that the model became more empathetic" in (dpo_run / "README.md").read_text()
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"id": "a", "text": "I feel alone."}\n')
    proc = run([str(REPO_ROOT / ".venv" / "bin" / "therapy-align"), "generate", "--model", str(dpo_run),
                "--inputs", str(inputs), "--out", str(tmp_path / "gens.jsonl"), "--max-new-tokens", "4"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
