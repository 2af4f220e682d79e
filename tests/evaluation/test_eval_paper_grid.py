"""recipes/eval_paper.py: the Table-1 grid end to end (real generation, real EMP-EVAL code)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, load_recipe_module
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration

RECIPE = REPO_ROOT / "recipes" / "eval_paper.py"


def load_recipe():
    if str(RECIPE.parent) not in sys.path:  # as `python recipes/eval_paper.py` has it: the SFT presets are a sibling's
        sys.path.insert(0, str(RECIPE.parent))
    return load_recipe_module(RECIPE, "eval_paper_recipe")


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    return make_tiny_evaluator(tmp_path_factory.mktemp("evaluator") / "empeval")


def test_base_model_cells_report_and_reuse(tmp_path, evaluator, capsys):
    recipe = load_recipe()
    out = tmp_path / "eval"
    argv = ["--preset", "tiny", f"--out={out}", "--models=base", "--limit=3", "--generation.max_new_tokens=6",
            f"--empeval={evaluator}", "--examples_per_cell=2", "--references="]
    results = recipe.main(argv)
    assert [(r["row"], r["prompt"]) for r in results["rows"]] == [("base", "standard"), ("base", "new")]
    assert results["model_refs"] == {"base": "tiny-base"} and not any("QUICK" in n for n in results["notes"])
    report = out / "report"
    rows = list(csv.DictReader((report / "table.csv").open()))
    assert [r["model"] for r in rows] == ["Base Model", "Base Model"]
    assert [r["paper_final"] for r in rows] == ["232.4", "358.4"]
    for row, result in zip(rows, results["rows"], strict=True):
        assert float(row["final"]) == pytest.approx(0.2 * float(row["E"]) + 0.4 * float(row["I"]) + 0.4 * float(row["X"]))
        assert result["n"] == 3
    table = (report / "table.md").read_text()
    assert "| Base Model | Standard | 3 |" in table and "TINY MODEL" in table and "machinery" in table
    assert (report / "table1.png").read_bytes()[:4] == b"\x89PNG"
    examples = (report / "examples.md").read_text()
    assert examples.count("**rmh-0000**") == 2 and "EMP-EVAL levels" in examples
    cell = out / "cells" / "base__new"
    assert (cell / "generations.jsonl").read_text().count("\n") == 3
    assert (cell / "scores-empeval.jsonl").read_text().count("\n") == 3
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["n"] == 3 and {"E", "I", "X", "final", "harm_unsafe_per_1000"} <= set(summary["metrics"])

    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*") if p.is_file()}
    capsys.readouterr()
    again = recipe.main(argv)
    assert "reused" in capsys.readouterr().out
    assert again["rows"] == results["rows"]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing regenerated or rescored


def test_reference_and_extra_rows_go_through_the_same_scorers(tmp_path, evaluator):
    """A pairs file of given replies (e.g. human therapists) and an extra model row join the
    table with the same columns; a changed setting is refused unless --force."""
    recipe = load_recipe()
    pairs = tmp_path / "human.jsonl"
    pairs.write_text("".join(json.dumps({"id": f"h{i}", "seeker": f"I feel low {i}.", "response": r}) + "\n"
                             for i, r in enumerate(["That sounds hard. What happened?", "You feel alone."])))
    out = tmp_path / "eval"
    argv = ["--preset", "tiny", f"--out={out}", "--models=base", "--prompts=new", "--limit=2",
            "--generation.max_new_tokens=4", f"--empeval={evaluator}", "--extra_models=again=tiny-base",
            f"--references=human={pairs}"]
    results = recipe.main(argv)
    assert [r["row"] for r in results["rows"]] == ["base", "again", "human"]
    assert all({"E", "I", "X", "final"} <= set(r) for r in results["rows"])
    assert results["rows"][0]["final"] == results["rows"][1]["final"]  # same model, same replies
    human = json.loads((out / "cells" / "human" / "summary.json").read_text())
    assert human["n"] == 2 and human["generation"] is None
    assert not (out / "cells" / "human" / "generations.jsonl").exists()
    table = (out / "report" / "table.md").read_text()
    assert "| human | (given replies) | 2 |" in table

    with pytest.raises(SystemExit):
        recipe.main(argv + ["--generation.max_new_tokens=5"])
    redone = recipe.main(argv + ["--generation.max_new_tokens=5", "--force"])
    assert [r["n"] for r in redone["rows"]] == [2, 2, 2]


def test_missing_variants_train_in_this_process_with_the_nested_sft_config(tmp_path, evaluator, monkeypatch):
    """The ``sft`` section is the SFT stage's own config: its overrides reach both runs, each run logs
    to wandb under its own directory, and the environment is as before once they are done."""
    recipe = load_recipe()
    monkeypatch.delenv("WANDB_DIR", raising=False)
    out = tmp_path / "eval"
    argv = ["--preset", "tiny", f"--out={out}", "--models=annomi80,full_plus", "--prompts=new", "--limit=2",
            "--generation.max_new_tokens=4", f"--empeval={evaluator}", "--references=", "--scorers=empeval",
            "--sft.train.max_steps=1", "--sft.train.max_length=256", "--sft.data.max_train_rows=4",
            "--sft.run.heldout_eval=false"]
    results = recipe.main(argv)
    assert results["model_refs"] == {key: str(out / "sft" / key) for key in ("annomi80", "full_plus")}
    for key in ("annomi80", "full_plus"):
        run = out / "sft" / key
        config = json.loads((run / "config.json").read_text())
        assert config["name"] == key and config["data"]["split"] == key and config["train"]["max_steps"] == 1
        assert json.loads((run / "metrics.json").read_text())["global_step"] == 1
        assert list((run / "wandb").glob("offline-run-*")), f"wandb logs under {run}"
    assert "WANDB_DIR" not in os.environ
    again = recipe.main(argv)  # complete runs are reused, not retrained
    assert again["rows"] == results["rows"]


def test_bad_model_reference_fails_before_any_work(tmp_path, evaluator):
    (tmp_path / "not-a-run").mkdir()
    result = subprocess.run(
        [sys.executable, str(RECIPE), "--preset", "tiny", f"--out={tmp_path / 'eval'}",
         f"--refs.annomi80={tmp_path / 'not-a-run'}", f"--empeval={evaluator}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode != 0
    assert "neither a model" in result.stderr and "adapter missing" in result.stderr
    assert not (tmp_path / "eval" / "cells").exists()


def test_unknown_prompt_is_refused_with_the_known_names(tmp_path, evaluator, capsys):
    recipe = load_recipe()
    with pytest.raises(SystemExit) as exit_info:
        recipe.main(["--preset", "tiny", f"--out={tmp_path}", "--models=base", "--prompts=standard,nope",
                     f"--empeval={evaluator}"])
    assert exit_info.value.code == 2 and "interpret_connect" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_preset_full_chain(tmp_path):
    """data -> SFT of both variants (subprocess) -> EMP-EVAL -> generation -> scores -> report."""
    out = tmp_path / "eval-tiny"
    result = subprocess.run([sys.executable, str(RECIPE), "--preset", "tiny", f"--out={out}"], cwd=REPO_ROOT,
                            env={**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}, timeout=3600)
    assert result.returncode == 0
    rows = list(csv.DictReader((out / "report" / "table.csv").open()))
    models = [r for r in rows if not r["model"].startswith("Human")]
    assert len(models) == 6 and all(r["n"] == "32" for r in models)
    assert {r["model_ref"] for r in models} == {"tiny-base", str(out / "sft" / "annomi80"), str(out / "sft" / "full_plus")}
    assert [r["model"] for r in rows[6:]] == ["Human: AnnoMI high-quality", "Human: AnnoMI low-quality", "Human: CounselChat"]
    assert all(r["harm_unsafe_per_1000"] != "" and r["final"] != "" for r in rows)
    assert (out / "report" / "table1.png").is_file() and (out / "report" / "table.md").is_file()
    assert (out / "report" / "examples.md").read_text().count("EMP-EVAL levels") >= 9
    for cell in out.glob("cells/*__*"):
        assert (cell / "generations.jsonl").read_text().count("\n") == 32
        assert (cell / "scores-empeval.jsonl").read_text().count("\n") == 32
