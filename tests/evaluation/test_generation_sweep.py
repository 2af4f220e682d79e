"""The offline prompt sweep: the YAML's grid run locally, every prompt logged to wandb offline,
the table sorted by final score."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import DATA_DIR, REPO_ROOT
from tests.fixtures.tiny_evaluator import make_tiny_evaluator
from therapy_align.evaluation.sweep import SweepError, config_from_params, expand_grid, load_sweep_yaml
from therapy_align.data.system_prompts import SYSTEM_PROMPTS

pytestmark = pytest.mark.integration

SWEEP_YAML = REPO_ROOT / "wandb" / "sweep_prompts.yaml"
INPUTS = DATA_DIR / "eval_inputs" / "reddit_mental_health_1000.jsonl"


def test_sweep_yaml_is_a_wandb_grid_over_registered_prompts():
    spec = load_sweep_yaml(SWEEP_YAML)
    assert spec["method"] == "grid" and spec["metric"] == {"name": "final_score", "goal": "maximize"}
    assert spec["program"] == "recipes/prompts.py" and (REPO_ROOT / spec["program"]).is_file()
    assert "${args}" in spec["command"]
    prompts = spec["parameters"]["prompt"]["values"]
    assert len(prompts) >= 10 and set(prompts) <= set(SYSTEM_PROMPTS) and {"standard", "new"} <= set(prompts)
    combos = expand_grid(spec)
    assert len(combos) == len(prompts)
    config = config_from_params(combos[3])  # exactly what `${args}` hands the recipe
    assert config.prompt == prompts[3] and config.limit == 1000 and config.model == "base"
    assert config.generation.max_new_tokens == spec["parameters"]["generation.max_new_tokens"]["value"]


def test_grid_expansion_rejects_what_it_cannot_run():
    with pytest.raises(SweepError, match="grid"):
        expand_grid({"method": "bayes", "parameters": {"prompt": {"values": ["new"]}}})
    with pytest.raises(SweepError, match="values"):
        expand_grid({"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 1.0}}})
    with pytest.raises(SweepError, match="unknown config key"):
        config_from_params({"promt": "new"})


def test_offline_sweep_runs_every_prompt_and_ranks_them(tmp_path):
    evaluator = make_tiny_evaluator(tmp_path / "evaluator")
    out = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "therapy_align.cli", "sweep", str(SWEEP_YAML), "--model", "tiny-base",
         "--limit", "2", "--set", "generation.max_new_tokens=6", "--out", str(out), "--empeval", str(evaluator)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    prompts = yaml.safe_load(SWEEP_YAML.read_text())["parameters"]["prompt"]["values"]
    rows = list(csv.DictReader((out / "sweep_table.csv").open()))
    assert sorted(r["prompt"] for r in rows) == sorted(prompts)
    finals = [float(r["final"]) for r in rows]
    assert finals == sorted(finals, reverse=True)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["n"] == "2" for r in rows)
    assert (out / "sweep.png").stat().st_size > 1000
    assert "best final score first" in (out / "sweep_table.md").read_text()
    assert len(list((out / "wandb").glob("offline-run-*"))) == len(prompts)
    assert "Prompt sweep on tiny-base" in result.stdout
    assert "TINY MODEL" in (out / "sweep_table.md").read_text()
    for prompt in prompts:
        assert (out / prompt / "generations.jsonl").read_text().count("\n") == 2
        assert (out / prompt / "scores-empeval.jsonl").read_text().count("\n") == 2
