"""Seed ensembles and single-task training (two options tried for the evaluator): one split for several
initialisations, the ensemble read-out on the real EPITOME dev/test pairs, and a single-task loss
that trains only its own head."""

import json
import shutil

import numpy as np
import pytest

from empeval.mechanisms import MECHANISMS
from tests.conftest import REPO_ROOT
from tests.fixtures.tiny_evaluator import make_tiny_evaluator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    zero_er = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]  # ER keeps the argmax, as trained
    first = make_tiny_evaluator(root / "init0", split_seed=0, decision_offsets=zero_er, fit_gate=True)
    copy = root / "init0-copy"
    shutil.copytree(first, copy)
    other_split = make_tiny_evaluator(root / "split1", split_seed=1, init_seed=1, fit_gate=True)
    return first, copy, other_split


def test_a_member_alone_reads_as_its_published_scores_and_two_copies_change_nothing(members, tmp_path):
    import empeval
    from research.empeval.ensemble import main
    from empeval.epitome_data import load_epitome
    from research.empeval.epitome_protocol import batch_macro_f1
    from research.empeval.training_read_outs import seeker_shuffle_drop
    from empeval.training import macro_f1

    first, copy, _ = members
    report = main(["--members", str(first), str(copy), "--out", str(tmp_path / "out")])
    split = json.loads((first / "split.json").read_text())
    test = load_epitome().pipe(lambda f: f[f["rp_id"].isin(set(split["test"]))])
    published = empeval.load(first).score(test["seeker_post"].tolist(), test["response_post"].tolist())
    alone, ensemble = report["results"][str(first)], report["results"]["ensemble"]
    drop = seeker_shuffle_drop(empeval.load(first), test["seeker_post"].tolist(), test["response_post"].tolist(),
                               test["sp_id"].tolist(), seed=0)
    for m in MECHANISMS:
        assert alone[m]["macro_f1"] == pytest.approx(macro_f1(published.levels[m], test[m].to_numpy(copy=True)), abs=1e-6)
        assert alone[m]["shuffle_drop_percent"] == pytest.approx(drop[m]["drop_percent"], abs=1e-6)
        assert alone[m]["epitome_batch_macro_f1"] == pytest.approx(
            batch_macro_f1(published.levels[m], test[m].to_numpy(copy=True)), abs=1e-6)
    # The mean of two identical members is that member; ER has no tuned offsets on either side.
    for key in ("macro_f1", "epitome_batch_macro_f1", "f1_per_level", "level_1_auc", "shuffle_drop_percent"):
        assert ensemble["emotional_reactions"][key] == pytest.approx(alone["emotional_reactions"][key])
    assert report["n_test"] == len(split["test"]) and report["n_dev"] == len(split["dev"])
    assert 0.0 <= alone["interpretations"]["level_1_auc"] <= 1.0
    assert "**ensemble**" in (tmp_path / "out" / "ensemble.md").read_text()


def test_members_of_different_splits_are_refused_before_anything_is_written(members, tmp_path):
    import subprocess
    import sys

    first, _, other_split = members
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "research.empeval.ensemble", "--members", str(first), str(other_split),
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert "split.json" in message and "split_seed" in message and "Traceback" not in message
    assert not out.exists()


def test_split_seed_fixes_the_split_while_seed_sets_the_rest(data_dir):
    from empeval.config import TrainConfig
    from empeval.datamodule import EpitomeDataModule
    from empeval.epitome_data import load_epitome, split_by_seeker

    frame = load_epitome()
    data = EpitomeDataModule(TrainConfig(seed=3, split_seed=0, rationale_weight=0))
    data.setup("fit")
    for split, rows in split_by_seeker(frame["sp_id"], seed=0).items():
        np.testing.assert_array_equal(data.split_rows[split], rows)
    assert not np.array_equal(split_by_seeker(frame["sp_id"], seed=3)["test"], data.split_rows["test"])
    assert "split_seed" not in TrainConfig(seed=3).to_json()  # older artifacts still compare equal


def test_single_task_loss_trains_only_its_own_head_and_rationales(data_dir):
    import torch

    from empeval.config import TrainConfig
    from empeval.datamodule import EpitomeDataModule
    from empeval.model import EmpathyLightningModule

    config = TrainConfig(single_task="interpretations", batch_size=8)
    data = EpitomeDataModule(config)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    module = EmpathyLightningModule(config)
    module.log = lambda *args, **kwargs: None  # outside a Trainer
    module.model_step(batch, "train").backward()
    heads = module.model.heads
    assert heads["interpretations"].weight.grad.abs().sum() > 0
    for other in ("emotional_reactions", "explorations"):
        assert heads[other].weight.grad is None or heads[other].weight.grad.abs().sum() == 0
    rationale_grad = module.model.rationale_head.weight.grad
    trained_row = MECHANISMS.index("interpretations")
    assert rationale_grad[trained_row].abs().sum() > 0
    assert torch.all(rationale_grad[[i for i in range(len(MECHANISMS)) if i != trained_row]] == 0)
