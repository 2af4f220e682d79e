"""The stops shared by every trainer, in-process and in seconds: a signal mid-fit exits 143/130 with a
checkpoint the fit resumes from; a non-finite loss or weight stops the fit with a clear error.
(The commands end to end: tests/empeval/test_signals.py, tests/training/test_sft_signals.py.)"""

from __future__ import annotations

import os
import signal

import pytest
import torch

from therapy_align.training_stops import NonFiniteTraining, TrainingInterrupted


def lightning_fit(tmp_path, *, signal_at: int | None = None, signum=signal.SIGTERM, nan_at: int | None = None,
                  poison_at: int | None = None, resume: bool = False, max_epochs: int = 3):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from therapy_align.lightning_stops import TrainingStops, fit_or_stop

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            return loss * float("nan") if self.global_step == nan_at else loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class SignalAt(pl.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            if trainer.global_step == signal_at:
                os.kill(os.getpid(), signum)
            if trainer.global_step == poison_at:  # as an update that overflowed would leave them
                with torch.no_grad():
                    module.layer.weight.fill_(float("inf"))

    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=4)
    stops = TrainingStops(checkpoint_path=tmp_path / "last.ckpt")
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[checkpoint, stops, SignalAt()])
    fit_or_stop(trainer, stops, Tiny(), data, ckpt_path="last" if resume else None)
    return trainer


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_fit_exits_128_plus_signal_with_a_checkpoint_that_resumes(tmp_path, capsys, signum, code):
    before = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted) as exit:
        lightning_fit(tmp_path, signal_at=6, signum=signum)  # epoch 1, its second batch
    assert exit.value.code == code
    assert signal.getsignal(signum) == before  # the handlers are put back
    err = " ".join(capsys.readouterr().err.split())
    assert f"interrupted by {signal.Signals(signum).name}: nothing was published" in err and str(tmp_path) in err
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 4  # the end of epoch 0: a mid-epoch state would resume into another data order

    resumed = lightning_fit(tmp_path, resume=True)  # no signal this time
    assert resumed.global_step == 12 and not resumed.interrupted  # 3 epochs x 4 batches, finished


def test_a_nan_loss_stops_the_fit_with_an_error_naming_it(tmp_path):
    with pytest.raises(NonFiniteTraining, match=r"loss: the training loss is nan at epoch 0, step 2"):
        lightning_fit(tmp_path, nan_at=2)


def test_weights_gone_non_finite_stop_before_a_checkpoint_of_them(tmp_path):
    with pytest.raises(NonFiniteTraining, match=r"weights: weights became non-finite \(layer\.weight\)") as err:
        lightning_fit(tmp_path, poison_at=4)  # the last batch of epoch 0: no later loss shows it
    assert "lower --train.learning_rate" in str(err.value)
    assert not list(tmp_path.glob("*.ckpt"))  # the epoch-end checkpoint of those weights was never written


def test_the_safety_head_fit_refuses_a_diverging_loss():
    import numpy as np

    from therapy_align.safety.config import SafetyTrainConfig
    from therapy_align.safety.learned import fit_head

    rng = np.random.default_rng(0)
    features = rng.normal(size=(32, 8)).astype("float32")
    config = SafetyTrainConfig(max_epochs=3, threads=1, learning_rate=1e30, batch_size=8)  # finite, yet it overflows
    with pytest.raises(NonFiniteTraining, match="the training loss is (nan|inf)|weights became non-finite"):
        fit_head(features, rng.integers(0, 3, 32), np.ones(32), config)


# -- the transformers/TRL callback -----------------------------------------------------------------


def trl_events():
    from transformers import TrainerControl, TrainerState

    from therapy_align.trl_stops import TrainingStops

    state = TrainerState()
    state.global_step = 7
    return TrainingStops(), state, TrainerControl()


def test_trl_stops_refuse_a_nan_loss_in_the_logs_without_saving():
    stops, state, control = trl_events()
    control.should_save = True  # save_steps fell on this step
    stops.on_log(None, state, control, logs={"loss": float("nan"), "grad_norm": 1.0})
    assert control.should_training_stop and not control.should_save
    with pytest.raises(NonFiniteTraining, match="loss: the training loss is nan at step 7; .*no adapter was saved"):
        stops.raise_if_stopped(resume_from="runs/x")


def test_trl_stops_refuse_non_finite_trainable_weights_after_a_step():
    stops, state, control = trl_events()
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))  # frozen: not this run's doing, not checked
    stops.on_step_end(None, state, control, model=model)
    assert not control.should_training_stop
    with torch.no_grad():
        model[1].bias.fill_(float("inf"))
    control.should_save = True
    stops.on_step_end(None, state, control, model=model)
    assert control.should_training_stop and not control.should_save
    with pytest.raises(NonFiniteTraining, match=r"weights: the trainable weight 1\.bias became non-finite at step 7"):
        stops.raise_if_stopped(resume_from="runs/x")


def test_trl_stops_save_and_stop_on_a_signal_then_exit_143(capsys):
    stops, state, control = trl_events()
    before = signal.getsignal(signal.SIGTERM)
    with stops.signals:
        os.kill(os.getpid(), signal.SIGTERM)
        stops.on_step_end(None, state, control, model=torch.nn.Linear(2, 2))
    assert signal.getsignal(signal.SIGTERM) == before
    assert control.should_save and control.should_training_stop
    with pytest.raises(TrainingInterrupted) as exit:
        stops.raise_if_stopped(resume_from="runs/x")
    assert exit.value.code == 143
    assert "interrupted by SIGTERM: nothing was published; the checkpoint is in runs/x; rerun the same command " \
           "with --resume to resume" in " ".join(capsys.readouterr().err.split())
