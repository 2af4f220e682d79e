"""The transformers/TRL half of :mod:`therapy_align.training_stops`: a ``TrainerCallback`` for
``SFTTrainer``, ``GRPOTrainer`` and ``DPOTrainer``.

    stops = TrainingStops()
    trainer = SFTTrainer(..., callbacks=[stops])
    with stops.signals:
        trainer.train(...)
    stops.raise_if_stopped(resume_from=run_dir)      # before the adapter is saved

The Trainer has no signal handling of its own: SIGTERM killed the process (no checkpoint of the
steps since the last ``save_steps``) and Ctrl+C raised wherever it landed. Here a signal asks the
Trainer, through its ``TrainerControl``, to save a checkpoint and stop at the end of the step;
:meth:`TrainingStops.raise_if_stopped` then exits ``128 + signal`` instead of saving the adapter.
A NaN or infinite loss or gradient norm (in the logs) or trainable weight (checked after every
optimiser step: with LoRA a few MB) stops the run without a checkpoint of it and raises
:class:`~therapy_align.training_stops.NonFiniteTraining`.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from therapy_align.training_stops import NonFiniteTraining, SignalRecorder, exit_interrupted, non_finite

WATCHED_LOGS = ("loss", "grad_norm")


class TrainingStops(TrainerCallback):
    def __init__(self) -> None:
        self.signals = SignalRecorder()
        self.problem: tuple[str, str] | None = None  # (field, what went non-finite at which step)

    def _stop_non_finite(self, control: Any, field: str, what: str) -> None:
        if self.problem is None:
            self.problem = (field, what)
        control.should_training_stop = True
        control.should_save = False  # a checkpoint of NaN weights would resume into the same NaN
        control.should_evaluate = False

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if model is not None:
            import torch

            for name, p in model.named_parameters():
                if p.requires_grad and not bool(torch.isfinite(p.detach()).all()):
                    self._stop_non_finite(control, "weights", f"the trainable weight {name} became non-finite at step "
                                                   f"{state.global_step}")
                    return control
        if self.signals.received is not None:
            control.should_save = True  # the Trainer saves it right after this step, then stops
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.problem is not None:  # the epoch-end save must not keep what on_step_end refused
            control.should_save = False
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> Any:
        for key in WATCHED_LOGS:
            if logs and key in logs and non_finite(logs[key]):
                self._stop_non_finite(control, key, f"the training {key} is {float(logs[key]):g} at step {state.global_step}")
        return control

    def raise_if_stopped(self, *, resume_from: Any, how: str = "rerun the same command with --resume to resume") -> None:
        """After ``trainer.train()``: raise :class:`NonFiniteTraining` or exit ``128 + signal`` if the
        run was stopped, so that no adapter of it is saved."""
        if self.problem is not None:
            field, what = self.problem
            raise NonFiniteTraining(what, field=field,
                                    fix="lower the learning rate or check the data; no adapter was saved")
        if self.signals.received is not None:
            exit_interrupted(self.signals.received, checkpoint=f"the checkpoint is in {resume_from}", resume=how)
