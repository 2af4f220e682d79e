"""Train EMP-EVAL, the paper's empathy evaluator (§2.2.3), on EPITOME: one encoder, three heads.

    python recipes/empeval_train.py                                  # default: MiniLM, the full fit (CPU ok)
    python recipes/empeval_train.py --preset fast              # 1 epoch, lower layers frozen: ~1/6 the compute
    python recipes/empeval_train.py --preset smoke --out runs/empeval-smoke   # 1 epoch over a few batches
    python recipes/empeval_train.py --train.seed=1 --out=artifacts/empeval-judge   # the held-out judge
    therapy-align empeval train --train.seed=1                 # the library's defaults, as a command
    ... --train.<field>=value overrides any field of empeval.config.TrainConfig (listed by --help);
    an interrupted run resumes from <out>.checkpoints (--restart discards them).

Paper §2.2.3: "EMP-EVAL" is the EPITOME classifier of Sharma et al. (2020) scoring emotional
reactions, interpretations and explorations (levels 0/1/2); the paper trains it on EPITOME's
Reddit pairs and does not give its settings, so every training choice (backbone, epochs, class
weights, ...) is ours and lives, with its reasons, in ``empeval.config.TrainConfig``; the presets
below are values of it. Beside the published headline, metrics.json gets the studies' read-outs
(read-out variants, EPITOME's per-batch F1, seeker-shuffle drops: research/empeval/training_read_outs.py).
Logic: ``empeval.training.train`` (Lightning).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # research/ beside recipes/: studies are not installed

from empeval.cli import run_train
from empeval.config import TrainConfig, TrainRun
from research.empeval.training_read_outs import READ_OUTS
from therapy_align.errors import exit_on_user_error
from therapy_align.overrides import pop_option

DEFAULT = TrainConfig()  # paper silent on every training setting: the library's defaults
# 1 epoch, embeddings and the lowest 3 of MiniLM's 6 layers frozen (no backward pass through them):
# about a sixth of the default's compute, for a busy machine; docs/evaluator.md gives its cost in F1.
FAST = replace(DEFAULT, max_epochs=1, freeze_layers=3)
# One epoch over at most 8 batches per split; its scores are noise. Minutes on 2 CPU cores.
SMOKE = replace(DEFAULT, max_epochs=1, limit_batches=8)
PRESETS = {"default": DEFAULT, "fast": FAST, "smoke": SMOKE}


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path | None:
    preset, argv = pop_option(list(sys.argv[1:] if argv is None else argv), "preset", default="default",
                              choices=PRESETS)
    return run_train(argv, TrainRun(train=PRESETS[preset]), read_outs=READ_OUTS, usage=__doc__)


if __name__ == "__main__":
    main()
