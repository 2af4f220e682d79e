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
import math
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


class NonFiniteArtifact(ArtifactError):
    """Weights or settings holding NaN or inf: refused when publishing and when loading."""


def non_finite_numbers(value, where: str = "") -> list[str]:
    """The dotted paths (``decision_offsets.interpretations[2]``) of NaN or infinite numbers in a
    JSON value. Python's json reads and writes NaN and Infinity, so a settings file can hold them."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_numbers(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite_numbers(v, f"{where}[{i}]")]
    return []


def non_finite_weights(state) -> list[str]:
    """The names of the tensors of a state dict holding a NaN or an infinity."""
    import torch

    return sorted(name for name, tensor in state.items()
                  if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()))


def refuse_non_finite(error: type[UserError], *, state=None, settings=None, weights_file, settings_file,
                      fix: str) -> None:
    """Raise ``error`` naming the file and the first field when weights or settings are not finite:
    a NaN weight or decision offset scores every reply alike (NaN probabilities, level 0) without
    failing, so such an artifact is neither published nor loaded."""
    bad = non_finite_weights(state) if state is not None else []
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise error(f"non-finite weights (NaN or inf) in {bad[0]}{more}", file=weights_file, field=bad[0], fix=fix)
    bad = non_finite_numbers(settings) if settings is not None else []
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise error(f"non-finite number (NaN or inf){more}", file=settings_file, field=bad[0], fix=fix)


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
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    settings = {
        "mechanisms": list(MECHANISMS),
        "levels": list(LEVELS),
        "max_length": config.max_length,
        "dropout": config.dropout,
        "class_weights": dict(zip(MECHANISMS, class_weights)),
        "decision_offsets": dict(zip(MECHANISMS, decision_offsets or [[0.0] * len(LEVELS)] * len(MECHANISMS))),
        "fit_gate": fit_gate,
        "fit_calibration": fit_calibration,
        "train_config": config.to_json(),
    }
    # before anything is written: a run that diverged leaves the previous artifact in place
    refuse_non_finite(NonFiniteArtifact, state=state, settings=settings, weights_file=out / WEIGHTS_FILE,
                      settings_file=out / CONFIG_FILE,
                      fix="training diverged: lower --train.learning_rate or check the data; nothing was published")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.encoder.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_file(state, tmp / WEIGHTS_FILE)
    settings["weights_sha256"] = file_sha256(tmp / WEIGHTS_FILE)
    atomic_write_json(tmp / CONFIG_FILE, settings)
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
    refuse_non_finite(NonFiniteArtifact, settings=settings, weights_file=path / WEIGHTS_FILE,
                      settings_file=path / CONFIG_FILE, fix=fix)
    if isinstance(settings["max_length"], bool) or not isinstance(settings["max_length"], int) \
            or settings["max_length"] < 1:
        raise ArtifactError(f"must be a whole number >= 1, got {settings['max_length']!r}", file=path / CONFIG_FILE,
                            field="max_length", fix=fix)
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
        encoder_config = AutoConfig.from_pretrained(path)
        model = EmpathyClassifier.from_encoder_config(encoder_config, settings["dropout"],
                                                      ordinal_mechanisms_of(settings))
        weights = load_file(path / WEIGHTS_FILE)
    except (OSError, ValueError, SafetensorError) as err:
        raise ArtifactError(f"cannot load ({str(err).splitlines()[0][:200]})", file=path, field="--model", fix=fix) from None
    window = getattr(encoder_config, "max_position_embeddings", None)
    if window is not None and settings["max_length"] > window:  # the encoder's position table would be indexed past its end
        raise ArtifactError(f"{settings['max_length']} is over the encoder's {window} positions "
                            "(max_position_embeddings in config.json)", file=path / CONFIG_FILE, field="max_length",
                            fix=fix)
    refuse_non_finite(NonFiniteArtifact, state=weights, weights_file=path / WEIGHTS_FILE,
                      settings_file=path / CONFIG_FILE, fix=fix)
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
