"""Train EMP-EVAL, the paper's empathy evaluator (§2.2.3), on EPITOME: one encoder, three heads.

    python recipes/empeval_train.py                                  # default: MiniLM, the full fit (CPU ok)
    python recipes/empeval_train.py --preset fast              # 1 epoch, lower layers frozen: ~1/6 the compute
    python recipes/empeval_train.py --preset smoke --out runs/empeval-smoke   # 1 epoch over a few batches
    python recipes/empeval_train.py --train.seed=1 --out=artifacts/empeval-judge   # the held-out judge
    therapy-align empeval train --preset fast                  # the same recipe, as a command
    ... --train.<field>=value overrides any field of empeval.config.TrainConfig (listed by --help);
    an interrupted run resumes from <out>.checkpoints (--restart discards them).

Paper §2.2.3: "EMP-EVAL" is the EPITOME classifier of Sharma et al. (2020) scoring emotional
reactions, interpretations and explorations (levels 0/1/2); the paper trains it on EPITOME's
Reddit pairs and does not give its settings, so every training choice (backbone, epochs, class
weights, ...) is ours and lives, with its reasons, in ``empeval.config.TrainConfig``, which this
recipe wraps whole: a new field there is a ``--train.*`` override here without an edit.
Logic: ``empeval.training.train`` (Lightning).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from empeval.config import TrainConfig, fast_config
from empeval.scoring import DEFAULT_ARTIFACT
from therapy_align.errors import exit_on_user_error
from therapy_align.overrides import apply_overrides, check_range, describe_keys, pop_option


@dataclass(frozen=True, kw_only=True)
class Recipe:
    preset: str = "default"
    out: str = DEFAULT_ARTIFACT  # where the evaluation harness looks for EMP-EVAL
    restart: bool = False  # discard the checkpoints of an interrupted run instead of resuming
    progress: bool = True
    threads: int = 0  # torch CPU threads, 0 = torch's default (1 is faster on a shared, busy machine)
    train: TrainConfig = field(default_factory=TrainConfig)  # paper silent on every training setting

    def __post_init__(self) -> None:
        check_range(self, "threads", ge=0)


DEFAULT = Recipe()
# empeval.config's fast recipe (1 epoch, embeddings and lowest 3 layers frozen): for a busy
# machine; docs/evaluator.md gives its cost in F1. (The Table-1 chain trains the default, ~5 min idle.)
FAST = replace(DEFAULT, preset="fast", train=fast_config())
# Smoke: one epoch over at most 8 batches per split; its scores are noise. Minutes on 2 CPU cores.
SMOKE = replace(DEFAULT, preset="smoke", train=replace(DEFAULT.train, max_epochs=1, limit_batches=8))
PRESETS = {"default": DEFAULT, "fast": FAST, "smoke": SMOKE}


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    import os

    preset, argv = pop_option(list(sys.argv[1:] if argv is None else argv), "preset", default="default",
                              choices=PRESETS)
    if "--help" in argv or "-h" in argv:
        print(__doc__ + "\nKeys (--key=value):\n" + describe_keys(PRESETS[preset]))
        return Path(PRESETS[preset].out)
    cfg = apply_overrides(PRESETS[preset], argv)  # a bad key or value: a UserError naming it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from empeval.training import train

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    train(cfg.train, out, restart=cfg.restart, progress=cfg.progress)
    print(f"wrote {out}\n{(out / 'metrics.json').read_text()}")
    return out


if __name__ == "__main__":
    main()
