"""First use of the judge and MITI scorers: a missing artifact is trained into its default path, by
the real training code (its limits cut down so that it takes seconds), and appears only complete."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from therapy_align.errors import UserError
from therapy_align.evaluation.scorers import ScorerContext, make_scorers

pytestmark = pytest.mark.integration


def _publish_spy(monkeypatch, module, required):
    """Wrap the real publish_dir of ``module``: at the rename, the destination must not exist yet (or be
    the stale directory it replaces) while the temporary one already holds every file."""
    real = module.publish_dir
    calls = []

    def spy(tmp, out):
        assert all((Path(tmp) / name).is_file() for name in required), sorted(p.name for p in Path(tmp).iterdir())
        assert not Path(out).exists() or not any(Path(out).iterdir())
        calls.append(Path(out))
        real(tmp, out)

    monkeypatch.setattr(module, "publish_dir", spy)
    return calls


def test_judge_config_is_the_fast_recipe_on_another_seed():
    from empeval.config import TrainConfig

    from therapy_align.evaluation.scorers.empeval import judge_config

    assert judge_config() == replace(TrainConfig(), max_epochs=1, freeze_layers=3, seed=1)


def test_missing_judge_is_trained_into_its_default_path_and_reused(tmp_path, monkeypatch, data_dir):
    import empeval.artifact

    from therapy_align.evaluation.scorers import empeval as scorer_module

    real_config = scorer_module.judge_config
    # the judge's own recipe, cut to one batch of two pairs per split (the recipe's smoke limits)
    monkeypatch.setattr(scorer_module, "judge_config",
                        lambda: replace(real_config(), data_dir=str(data_dir), limit_batches=1, batch_size=2))
    calls = _publish_spy(monkeypatch, empeval.artifact, ("empeval_model.safetensors", "empeval_config.json"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifacts" / "empeval-judge").mkdir(parents=True)  # an empty directory is no artifact

    (judge,) = make_scorers(("judge",), ScorerContext(work_dir=tmp_path / "run", allow_quick=True))
    path = tmp_path / "artifacts" / "empeval-judge"
    assert calls == [Path("artifacts/empeval-judge")] and judge.artifact == Path("artifacts/empeval-judge")
    assert (path / "empeval_model.safetensors").is_file()
    assert not (tmp_path / "artifacts" / "empeval-judge.checkpoints").exists()
    assert not list((tmp_path / "artifacts").glob(".empeval-judge*"))  # no temporary directory left
    trained = json.loads((path / "empeval_config.json").read_text())["train_config"]
    assert (trained["seed"], trained["max_epochs"], trained["freeze_layers"]) == (1, 1, 3)
    (note,) = judge.notes
    assert "trained here on first use" in note and "seed 1" in note and "independent second evaluator" in note
    assert judge.columns() == ["judge_E", "judge_I", "judge_X", "judge_final"]

    stamp = (path / "empeval_model.safetensors").stat().st_mtime_ns
    (again,) = make_scorers(("judge",), ScorerContext(work_dir=tmp_path / "run", allow_quick=True))
    assert len(calls) == 1 and (path / "empeval_model.safetensors").stat().st_mtime_ns == stamp  # reused
    assert "trained here" not in again.notes[0] and "fast recipe" in again.notes[0]


def test_judge_is_never_trained_over_something_else_or_when_training_is_not_allowed(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a trained EMP-EVAL artifact") as error:
        make_scorers(("judge",), ScorerContext(artifacts={"judge": str(other)}, allow_quick=True))
    assert str(other) in str(error.value) and (other / "notes.txt").read_text() == "mine"
    missing = tmp_path / "missing"
    with pytest.raises(UserError, match="no trained EMP-EVAL judge") as error:
        make_scorers(("judge",), ScorerContext(artifacts={"judge": str(missing)}, allow_quick=False))
    assert str(missing) in str(error.value) and "--train.seed=1" in str(error.value) and not missing.exists()


def test_first_use_miti_recipe_is_the_default():
    from miti.config import TrainConfig

    from therapy_align.evaluation.scorers.miti import FIRST_USE, first_use_config

    assert FIRST_USE == "default" and first_use_config() == TrainConfig()


def test_missing_miti_is_trained_into_its_default_path(tmp_path, monkeypatch, data_dir):
    import miti.artifact

    from therapy_align.evaluation.scorers import miti as scorer_module

    real_config = scorer_module.first_use_config

    def limited():  # the first-use recipe on a slice, so that the test takes seconds
        cfg = real_config()
        return replace(cfg, data=replace(cfg.data, data_dir=str(data_dir), max_train_turns=96, max_eval_turns=48),
                       model=replace(cfg.model, max_length=32), train=replace(cfg.train, max_epochs=2))

    monkeypatch.setattr(scorer_module, "first_use_config", limited)
    calls = _publish_spy(monkeypatch, miti.artifact, miti.artifact.REQUIRED)
    monkeypatch.chdir(tmp_path)

    (scorer,) = make_scorers(("miti",), ScorerContext(work_dir=tmp_path / "run", allow_quick=True))
    path = tmp_path / "artifacts" / "miti"
    assert calls == [Path("artifacts/miti")] and all((path / name).is_file() for name in miti.artifact.REQUIRED)
    assert not (tmp_path / "artifacts" / "miti.checkpoints").exists()
    assert not list((tmp_path / "artifacts").glob(".miti.tmp*"))
    assert any("trained here on first use" in note for note in scorer.notes)
    assert any("QUICK MI CLASSIFIER" in note for note in scorer.notes)  # a slice: the report says so
    assert scorer.predictor.path == "artifacts/miti"

    (again,) = make_scorers(("miti",), ScorerContext(work_dir=tmp_path / "run", allow_quick=True))
    assert len(calls) == 1 and not any("trained here" in note for note in again.notes)


def test_miti_without_training_allowed_fails_naming_the_path(tmp_path):
    missing = tmp_path / "none"
    with pytest.raises(UserError) as error:
        make_scorers(("miti",), ScorerContext(artifacts={"miti": str(missing)}, allow_quick=False))
    assert str(missing) in str(error.value) and not missing.exists()


def test_empeval_first_use_recipes_are_the_default_and_the_fast_one_on_seed_0():
    from empeval.config import TrainConfig

    from therapy_align.evaluation.scorers.empeval import first_use_config

    assert first_use_config() == TrainConfig()
    assert first_use_config("fast") == replace(TrainConfig(), max_epochs=1, freeze_layers=3)
    with pytest.raises(UserError, match="empeval_first_use"):
        first_use_config("quick")


def test_missing_empeval_is_trained_with_the_chosen_recipe_and_the_report_says_which(tmp_path, monkeypatch, data_dir):
    import empeval.artifact

    from therapy_align.evaluation.scorers import empeval as scorer_module

    real_config = scorer_module.first_use_config
    monkeypatch.setattr(scorer_module, "first_use_config",  # the chosen recipe, cut to one batch per split
                        lambda recipe="default": replace(real_config(recipe), data_dir=str(data_dir), limit_batches=1,
                                                         batch_size=2))
    calls = _publish_spy(monkeypatch, empeval.artifact, ("empeval_model.safetensors", "empeval_config.json"))
    monkeypatch.chdir(tmp_path)
    context = ScorerContext(work_dir=tmp_path / "run", artifacts={"empeval": "artifacts/empeval-fast"},
                            allow_quick=True, empeval_first_use="fast")
    (scorer,) = make_scorers(("empeval",), context)
    assert calls == [Path("artifacts/empeval-fast")] and scorer.artifact == Path("artifacts/empeval-fast")
    trained = json.loads((tmp_path / "artifacts/empeval-fast/empeval_config.json").read_text())["train_config"]
    assert (trained["seed"], trained["max_epochs"], trained["freeze_layers"]) == (0, 1, 3)
    (note,) = scorer.notes
    assert "trained here on first use" in note and "fast recipe" in note and "judge" not in note
    assert not (tmp_path / "artifacts" / "empeval").exists()  # the paper's default path is left alone

    (again,) = make_scorers(("empeval",), context)
    assert len(calls) == 1 and "trained here" not in again.notes[0]


def test_table1_refuses_an_unknown_first_use_recipe():
    from therapy_align.evaluation.table1 import Table1Config

    with pytest.raises(UserError, match="empeval_first_use"):
        Table1Config(empeval_first_use="quick")
    with pytest.raises(UserError, match="reference_limit"):
        Table1Config(reference_limit=0)
