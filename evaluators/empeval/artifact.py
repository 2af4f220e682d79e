"""The trained evaluator on disk: written whole into a temporary directory, then renamed.

Layout of `artifacts/empeval/`:
  config.json, tokenizer files   the encoder's transformers config and tokenizer
  empeval_model.safetensors      encoder + the three heads (EmpathyClassifier state dict)
  empeval_config.json            training configuration, max length, mechanisms, class weights
  split.json                     rp_ids of train / dev / test
  metrics.json                   accuracy and macro-F1 per mechanism on the test split
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from therapy_align.errors import UserError
from therapy_align.files import atomic_write_json

from empeval.config import TrainConfig
from empeval.mechanisms import LEVELS, MECHANISMS

WEIGHTS_FILE = "empeval_model.safetensors"
CONFIG_FILE = "empeval_config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.json"


REQUIRED_FILES = (WEIGHTS_FILE, CONFIG_FILE, "config.json", "tokenizer_config.json")
TOKENIZER_VOCAB = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
REQUIRED_KEYS = ("mechanisms", "levels", "max_length", "dropout")
TRAIN_FIX = "train one with `therapy-align empeval train --out {path}`"


class ArtifactError(UserError):
    """A missing or broken EMP-EVAL artifact; the message names the directory or file."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_dir(tmp: Path, out: Path) -> None:
    """Replace `out` by the complete `tmp` with renames, so `out` is never half-written."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_artifact_dir(
    out: Path, *, model, tokenizer, config: TrainConfig, class_weights, split, metrics, decision_offsets=None,
    fit_gate: bool | str = False,
    fit_calibration: dict | None = None,
) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.encoder.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, tmp / WEIGHTS_FILE)
    weights_sha256 = file_sha256(tmp / WEIGHTS_FILE)
    atomic_write_json(
        tmp / CONFIG_FILE,
        {
                "mechanisms": list(MECHANISMS),
                "levels": list(LEVELS),
                "max_length": config.max_length,
                "dropout": config.dropout,
                "class_weights": dict(zip(MECHANISMS, class_weights)),
                "decision_offsets": dict(zip(MECHANISMS, decision_offsets or [[0.0] * len(LEVELS)] * len(MECHANISMS))),
                "fit_gate": fit_gate,
                "fit_calibration": fit_calibration,
                "weights_sha256": weights_sha256,
                "train_config": config.to_json(),
        },
    )
    atomic_write_json(tmp / SPLIT_FILE, split, indent=None)
    atomic_write_json(tmp / METRICS_FILE, metrics)
    publish_dir(tmp, out)


def read_settings(path: str | os.PathLike) -> dict:
    """empeval_config.json of an artifact, after checking that every file is there and that the
    config has the keys and the mechanisms/levels of this code."""
    path = Path(path)
    fix = TRAIN_FIX.format(path=path)
    if not path.is_dir():
        raise ArtifactError("no such EMP-EVAL artifact directory", file=path, field="--model", fix=fix)
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if not any((path / f).is_file() for f in TOKENIZER_VOCAB):
        missing.append("tokenizer vocabulary (" + " / ".join(TOKENIZER_VOCAB[:2]) + ")")
    if missing:
        raise ArtifactError(f"not a trained EMP-EVAL artifact (missing {', '.join(missing)})", file=path,
                            field="--model", fix=fix)
    try:
        settings = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"unreadable ({err})", file=path / CONFIG_FILE, fix=fix) from None
    if not isinstance(settings, dict):
        raise ArtifactError("expected a JSON object", file=path / CONFIG_FILE, fix=fix)
    for key in REQUIRED_KEYS:
        if key not in settings:
            raise ArtifactError("missing key", file=path / CONFIG_FILE, field=key, fix=fix)
    if list(settings["mechanisms"]) != list(MECHANISMS) or list(settings["levels"]) != list(LEVELS):
        raise ArtifactError(f"mechanisms/levels {settings['mechanisms']}/{settings['levels']} differ from this "
                            f"code's {list(MECHANISMS)}/{list(LEVELS)}", file=path / CONFIG_FILE, fix=fix)
    if settings.get("fit_gate") == "cosine":
        calibration = settings.get("fit_calibration")
        if not isinstance(calibration, dict) or not {"slope", "intercept"} <= set(calibration):
            raise ArtifactError("the cosine gate needs {slope, intercept}", file=path / CONFIG_FILE,
                                field="fit_calibration", fix=fix)
    offsets = settings.get("decision_offsets") or {}
    for mechanism, values in offsets.items():
        if mechanism not in MECHANISMS or len(values) != len(LEVELS):
            raise ArtifactError(f"bad entry {mechanism!r}: {values!r}", file=path / CONFIG_FILE,
                                field="decision_offsets", fix=fix)
    return settings


def ordinal_mechanisms_of(settings: dict) -> tuple[str, ...]:
    """The mechanisms with an ordinal level head (none in artifacts from before the choice)."""
    train_config = settings.get("train_config")
    return tuple(train_config.get("ordinal_mechanisms", ())) if isinstance(train_config, dict) else ()


def read_artifact(path: str | os.PathLike):
    """(EmpathyClassifier in eval mode, tokenizer, empeval_config dict) from an artifact dir,
    checked whole: files, config keys, every weight present with its shape, the tokenizer."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoTokenizer

    from empeval.model import EmpathyClassifier

    path = Path(path)
    settings = read_settings(path)
    fix = TRAIN_FIX.format(path=path)
    recorded = settings.get("weights_sha256")
    if recorded and file_sha256(path / WEIGHTS_FILE) != recorded:
        raise ArtifactError("weights differ from the hash recorded at training (weights_sha256): the file was "
                            "changed or damaged", file=path / WEIGHTS_FILE, fix=fix)
    try:
        model = EmpathyClassifier.from_encoder_config(AutoConfig.from_pretrained(path), settings["dropout"],
                                                      ordinal_mechanisms_of(settings))
        weights = load_file(path / WEIGHTS_FILE)
    except (OSError, ValueError, SafetensorError) as err:
        raise ArtifactError(f"cannot load ({str(err).splitlines()[0][:200]})", file=path, field="--model", fix=fix) from None
    expected = model.state_dict()
    absent = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape))
    if absent or extra or wrong:
        problem = "; ".join(
            f"{label} {names[:3]}{' ...' if len(names) > 3 else ''}"
            for label, names in (("missing", absent), ("unexpected", extra), ("wrong shape", wrong)) if names
        )
        raise ArtifactError(f"weights do not match the model ({problem})", file=path / WEIGHTS_FILE, fix=fix)
    model.load_state_dict(weights)
    model.eval()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot load the tokenizer ({str(err).splitlines()[0][:200]})", file=path, fix=fix) from None
    return model, tokenizer, settings
