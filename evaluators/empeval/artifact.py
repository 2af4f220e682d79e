"""The trained evaluator on disk: written whole into a temporary directory, then renamed.

Layout of `artifacts/empeval/`:
  config.json, tokenizer files   the encoder's transformers config and tokenizer
  empeval_model.safetensors      encoder + the three heads (EmpathyClassifier state dict)
  empeval_config.json            training configuration, max length, mechanisms, class weights
  split.json                     rp_ids of train / dev / test
  metrics.json                   accuracy and macro-F1 per mechanism on the test split
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from empeval.config import TrainConfig
from empeval.mechanisms import LEVELS, MECHANISMS

WEIGHTS_FILE = "empeval_model.safetensors"
CONFIG_FILE = "empeval_config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.json"


class ArtifactError(FileNotFoundError):
    pass


def publish_dir(tmp: Path, out: Path) -> None:
    """Replace `out` by the complete `tmp` with renames, so `out` is never half-written."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_artifact_dir(out: Path, *, model, tokenizer, config: TrainConfig, class_weights, split, metrics) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.encoder.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, tmp / WEIGHTS_FILE)
    (tmp / CONFIG_FILE).write_text(
        json.dumps(
            {
                "mechanisms": list(MECHANISMS),
                "levels": list(LEVELS),
                "max_length": config.max_length,
                "dropout": config.dropout,
                "class_weights": dict(zip(MECHANISMS, class_weights)),
                "train_config": config.to_json(),
            },
            indent=2,
        )
    )
    (tmp / SPLIT_FILE).write_text(json.dumps(split))
    (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    publish_dir(tmp, out)


def read_artifact(path: str | os.PathLike):
    """(EmpathyClassifier in eval mode, tokenizer, empeval_config dict) from an artifact dir."""
    from transformers import AutoConfig, AutoTokenizer

    from empeval.model import EmpathyClassifier

    path = Path(path)
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE, "config.json") if not (path / f).is_file()]
    if missing:
        raise ArtifactError(
            f"{path} is not a trained EMP-EVAL artifact (missing {', '.join(missing)}); "
            "create it with `therapy-align empeval train --out {path}`."
        )
    settings = json.loads((path / CONFIG_FILE).read_text())
    model = EmpathyClassifier.from_encoder_config(AutoConfig.from_pretrained(path), settings["dropout"])
    model.load_state_dict(load_file(path / WEIGHTS_FILE))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer, settings
