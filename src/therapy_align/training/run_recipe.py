"""The top of every training stage's config: where its run goes and how it logs.

The SFT config (:class:`therapy_align.training.config.SftConfig`) and the RL configs subclass
:class:`RunRecipe` and add their own sections (model, data, trainer...), so the run-directory and
logging keys (``--name``, ``--runs_dir``, ``--wandb_project``) are spelled once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RunRecipe:
    name: str  # outputs in <runs_dir>/<name>/; each stage sets its default
    preset: str = "paper"
    runs_dir: str = "runs"
    wandb_project: str = "therapy_align"
