"""Lightning's half of :mod:`therapy_align.training_stops`: one callback and one ``fit`` wrapper.

    stops = TrainingStops(checkpoint_path=work / "last.ckpt")
    trainer = L.Trainer(callbacks=[checkpoint, stops, ...])
    fit_or_stop(trainer, stops, module, datamodule=data, ckpt_path=resume)   # raises or exits 143/130

Lightning catches SIGTERM itself (its signal connector): it raises ``SIGTERMException`` at the next
batch boundary, a ``SystemExit`` without a code, which a command would report as success (exit 0).
Ctrl+C becomes ``sys.exit(1)`` inside ``Trainer.fit``. :func:`fit_or_stop` turns both into
``128 + signal``, with the caller's publish step never reached. What a rerun resumes from is the
``last.ckpt`` that ``ModelCheckpoint`` wrote at the end of the last finished epoch: a mid-epoch
state would resume with the dataloader back at its first batch (Lightning's own warning: the epoch
would see some batches twice and others never), so the run would no longer match an uninterrupted
one of the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from therapy_align.training_stops import NonFiniteTraining, SignalRecorder, exit_interrupted, non_finite


def non_finite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of the trainable parameters holding a NaN or an infinity."""
    return [name for name, p in module.named_parameters()
            if p.requires_grad and not bool(torch.isfinite(p.detach()).all())]


class TrainingStops(pl.Callback):
    """Stops a fit whose loss or weights turn non-finite (:class:`NonFiniteTraining`, before a
    checkpoint of them is written), and turns SIGINT into a stop at the next batch boundary.
    ``checkpoint_path``: the epoch-end checkpoint a rerun resumes from, named in the interruption
    message (None: the fit takes seconds and simply reruns)."""

    def __init__(self, checkpoint_path: str | Path | None = None) -> None:
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.signals = SignalRecorder()
        self.interrupted_by: int | None = None

    def resume_point(self) -> str:
        """What a rerun resumes from, for the interruption message."""
        if self.checkpoint_path is None:
            return "no checkpoint is kept (the fit takes seconds)"
        if self.checkpoint_path.is_file():
            return f"the checkpoint of the last finished epoch is in {self.checkpoint_path}"
        return f"no epoch had finished, so {self.checkpoint_path.parent} holds no checkpoint yet"

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if non_finite(loss.detach()):
            raise NonFiniteTraining(f"the training loss is {float(loss.detach()):g} at epoch {trainer.current_epoch}, "
                                    f"step {trainer.global_step}", field="loss",
                                    fix="lower --train.learning_rate or check the data; nothing was published")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.signals.received is not None and not trainer.received_sigterm:
            raise KeyboardInterrupt  # at a batch boundary, where Lightning's own Ctrl+C handling takes over

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the epoch's checkpoint is written after validation: weights that went NaN (a huge learning
        # rate gives a finite loss on the step that ruins them) must not be saved as "best"
        if not trainer.sanity_checking:
            self._check_weights(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_weights(trainer, pl_module)  # a fit without validation checks here

    def _check_weights(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bad = non_finite_parameters(pl_module)
        if bad:
            raise NonFiniteTraining(f"weights became non-finite ({bad[0]}{' and more' if len(bad) > 1 else ''}) "
                                    f"at epoch {trainer.current_epoch}, step {trainer.global_step}", field="weights",
                                    fix="lower --train.learning_rate or check the data; nothing was published")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) or trainer.received_sigterm:
            import signal

            self.interrupted_by = signal.SIGTERM
        elif isinstance(exception, KeyboardInterrupt):
            import signal

            self.interrupted_by = self.signals.received or signal.SIGINT


def fit_or_stop(trainer: pl.Trainer, stops: TrainingStops, *args: Any,
                resume_hint: str = "rerun the same command to resume", **kwargs: Any) -> None:
    """``trainer.fit(*args, **kwargs)``; exits ``128 + signal`` when a signal stopped it, and
    raises :class:`NonFiniteTraining` as it came."""
    try:
        with stops.signals:
            trainer.fit(*args, **kwargs)
    except SystemExit:  # SIGTERMException, or Lightning's sys.exit(1) after a KeyboardInterrupt
        if stops.interrupted_by is None and not trainer.received_sigterm:
            raise
        import signal

        exit_interrupted(stops.interrupted_by or signal.SIGTERM, checkpoint=stops.resume_point(), resume=resume_hint)
    if trainer.received_sigterm or stops.signals.received is not None:  # a signal after the last batch
        import signal

        exit_interrupted(stops.signals.received or signal.SIGTERM, checkpoint=stops.resume_point(), resume=resume_hint)
