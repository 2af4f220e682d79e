"""MI-behaviour classifier: AnnoMI's expert codes -> frozen MiniLM pair features + a Lightning head.

    .venv/bin/therapy-align miti train                                    # the default preset, as a command
    nice -n 10 .venv/bin/python recipes/miti_train.py --out artifacts/miti    # the same; ~5 CPU-min (features cached)
    .venv/bin/python recipes/miti_train.py --preset fast --out /tmp/miti-fast # a slice: the pipeline in a minute
    accelerate launch recipes/miti_train.py                                   # Lightning picks the GPU if any
    ... --dotted.key=value overrides any field of miti.config.TrainConfig (e.g. --train.max_epochs=60;
    --help lists them); --out DIR, --restart (discard the checkpoints of an interrupted run instead of
    resuming from <out>.checkpoints/), --progress=false.

(client turn, therapist turn) -> one of reflection_simple, reflection_complex, question_open,
question_closed, therapist_input, other. The paper scores single replies with EMP-EVAL only (§2.2.3);
this classifier gives the MITI 4.2.1 summary scores (R:Q, %CR, % open questions) of any set of
therapist turns, for the paper's "hold a full conversation" (§6). Labels, annotator-overlap
resolution and split: `miti.labels`; results: docs/miti.md.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from miti.config import DataConfig, FitConfig, ModelConfig, TrainConfig
from therapy_align.errors import exit_on_user_error
from therapy_align.overrides import apply_overrides, pop_option

# The paper trains no such classifier: every value is a choice (docs/miti.md has the comparisons).
DEFAULT = TrainConfig(
    data=DataConfig(
        split_seed=0,  # the annomi80 split's seed: its held-out 20% of high-quality transcripts is our test side
        dev_fraction=0.1,  # choice: 10% of the other transcripts select the checkpoint
    ),
    model=ModelConfig(
        # backbone: all-MiniLM-L6-v2, as EMP-EVAL, used frozen (choice: a fine-tuning step costs ~6 CPU-s
        # per batch of 32 on the shared 2-core box, so the full fit would take hours)
        max_length=96,  # choice: client + therapist tokens; 85% of pairs whole (medians 13 + 16)
        layers=(2, 4, 6),  # choice, among 4 head settings (docs/miti.md): hidden states mean-pooled per segment
        hidden=256,  # choice: the head's hidden width
        dropout=0.3,  # choice (docs/miti.md compares 0.1)
    ),
    train=FitConfig(
        seed=0,
        max_epochs=10,  # choice: dev macro-F1 peaks within 10 epochs; the best dev epoch is kept
        batch_size=64,
        learning_rate=1e-3,  # choice: a small head on fixed features
        weight_decay=0.01,
        warmup_fraction=0.05,
        class_weight_power=1.0,  # choice: fully inverse-frequency ("other" is 32%, closed Q 12%); 0.5 (EMP-EVAL's) under-predicts reflections
        threads=1,  # tiny steps run faster on one thread
    ),
)
# The whole pipeline on a slice, in well under a minute: 192 training turns, 64 dev/test turns. It is
# also what a smoke report fits when no classifier is trained (scorers.miti.quick_config).
FAST = replace(DEFAULT, data=replace(DEFAULT.data, max_train_turns=192, max_eval_turns=64),
               model=replace(DEFAULT.model, max_length=48), train=replace(DEFAULT.train, max_epochs=5))
PRESETS = {"default": DEFAULT, "fast": FAST}
OUT = {"default": "artifacts/miti", "fast": "artifacts/miti-fast"}


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    preset, argv = pop_option(argv, "preset", default="default", choices=PRESETS)
    out, argv = pop_option(argv, "out", default=OUT[preset])
    restart, argv = pop_option(argv, "restart", default=False, flag=True)
    progress, argv = pop_option(argv, "progress", default=True, flag=True)
    cfg = apply_overrides(PRESETS[preset], argv)  # unknown keys and bad values fail here, before anything loads
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from miti.training import train

    out = train(cfg, out, restart=restart, progress=progress)
    print(f"wrote {out}; results: {out}/metrics.json")
    return out


if __name__ == "__main__":
    main()
