"""The top of every training recipe's config: where its run goes and how it logs.

``recipes/sft_paper.py``, ``rl_empathy.py`` and ``dpo_empathy.py`` subclass :class:`RunRecipe` and add
their own sections (model, data, trainer...), so the run-directory and logging keys
(``--name``, ``--runs_dir``, ``--wandb_project``) are spelled once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RunRecipe:
    name: str  # outputs in <runs_dir>/<name>/; each recipe sets its default
    preset: str = "paper"
    runs_dir: str = "runs"
    wandb_project: str = "therapy_align"
