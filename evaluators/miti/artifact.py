"""The trained MI-behaviour classifier on disk, written whole into a temporary directory and
published with EMP-EVAL's rename (`empeval.artifact.publish_dir`).

Layout of `artifacts/miti/`:
  config.json, model.safetensors   the (frozen) encoder, a plain transformers model
  tokenizer files                  its tokenizer
  miti_head.safetensors            the head over LABELS (`miti.model.make_head`)
  miti_config.json                 labels, max_length, layers, head shape, class weights, the TrainConfig
  split.json                       transcript ids of train / dev / test
  metrics.json                     classifier and baselines: per-class F1, macro-F1; MITI check
  test_predictions.jsonl           one line per test turn: id, transcript_id, quality, label,
                                   prediction, probabilities, and each baseline's prediction
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from empeval.artifact import publish_dir, refuse_non_finite
from miti.labels import LABELS
from therapy_align.errors import UserError
from therapy_align.files import atomic_write_json, atomic_write_jsonl, jsonable

HEAD_FILE = "miti_head.safetensors"
CONFIG_FILE = "miti_config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.jsonl"
REQUIRED = ("config.json", "model.safetensors", HEAD_FILE, CONFIG_FILE)


class ArtifactError(UserError):
    """A missing or broken classifier artifact."""


class NonFiniteArtifact(ArtifactError):
    """Head weights or settings holding NaN or inf: refused when publishing and when loading."""


RETRAIN = "retrain with `therapy-align miti train`"


def write_artifact(out: str | os.PathLike, *, encoder, head, tokenizer, settings: dict, split: dict, metrics: dict,
                   predictions: list[dict]) -> Path:
    """Write every file into ``.<out>.tmp-<pid>`` and rename it to ``out``: never half-written."""
    from safetensors.torch import save_file

    out = Path(out)
    head_state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    # before anything is written: a run that diverged leaves the previous artifact in place
    refuse_non_finite(NonFiniteArtifact, state=head_state, settings=settings, weights_file=out / HEAD_FILE,
                      settings_file=out / CONFIG_FILE,
                      fix="training diverged: lower --train.learning_rate or check the data; nothing was published")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    encoder.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_file(head_state, tmp / HEAD_FILE)
    atomic_write_json(tmp / CONFIG_FILE, {"labels": list(LABELS), **settings})
    atomic_write_json(tmp / SPLIT_FILE, split)
    atomic_write_json(tmp / METRICS_FILE, metrics)
    atomic_write_jsonl(tmp / PREDICTIONS_FILE, predictions)
    publish_dir(tmp, out)
    return out


def read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"unreadable ({err})", file=path, fix="retrain with `therapy-align miti train`") from None
    if not isinstance(value, dict):
        raise ArtifactError("expected a JSON object", file=path, fix="retrain with `therapy-align miti train`")
    return value


def read_settings(path: str | os.PathLike) -> dict:
    """miti_config.json of an artifact, checked: its labels must be this code's LABELS."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError("no such artifact directory", file=path, field="--model",
                            fix=f"train one with `therapy-align miti train --out {path}`")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ArtifactError(f"not a trained MI classifier (missing {', '.join(missing)})", file=path,
                            field="--model", fix=f"train one with `therapy-align miti train --out {path}`")
    settings = read_json(path / CONFIG_FILE)
    for key in ("labels", "max_length", "layers", "in_features", "hidden", "dropout"):
        if key not in settings:
            raise ArtifactError("missing key", file=path / CONFIG_FILE, field=key, fix="retrain the artifact")
    if list(settings["labels"]) != list(LABELS):
        raise ArtifactError(f"labels {settings['labels']} differ from this code's {list(LABELS)}",
                            file=path / CONFIG_FILE, field="labels", fix="retrain the artifact")
    refuse_non_finite(NonFiniteArtifact, settings=settings, weights_file=path / HEAD_FILE,
                      settings_file=path / CONFIG_FILE, fix=RETRAIN)
    return settings


def read_artifact(path: str | os.PathLike):
    """(encoder, head, tokenizer, settings) from an artifact directory, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from miti.model import make_head

    path = Path(path)
    settings = read_settings(path)
    try:
        encoder = AutoModel.from_pretrained(path)
        head = make_head(int(settings["in_features"]), int(settings["hidden"]), float(settings["dropout"]))
        head_state = load_file(path / HEAD_FILE)
        head.load_state_dict(head_state)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise ArtifactError(f"cannot load the model ({str(err).splitlines()[0][:200]})", file=path,
                            field="--model", fix=RETRAIN) from None
    refuse_non_finite(NonFiniteArtifact, state=head_state, weights_file=path / HEAD_FILE,
                      settings_file=path / CONFIG_FILE, fix=RETRAIN)
    # the frozen encoder is the backbone's own, yet a damaged copy scores every turn alike
    refuse_non_finite(NonFiniteArtifact, state=encoder.state_dict(), weights_file=path / "model.safetensors",
                      settings_file=path / CONFIG_FILE, fix=RETRAIN)
    window = getattr(encoder.config, "max_position_embeddings", None)
    if window is not None and int(settings["max_length"]) > window:
        raise ArtifactError(f"{settings['max_length']} is over the encoder's {window} positions "
                            "(max_position_embeddings in config.json)", file=path / CONFIG_FILE, field="max_length",
                            fix=RETRAIN)
    encoder.eval()
    head.eval()
    return encoder, head, tokenizer, settings


def settings_of(cfg, class_weights: list[float], in_features: int) -> dict:
    """miti_config.json's content from the :class:`~miti.config.TrainConfig` trained (kept under ``recipe``)."""
    m = cfg.model
    return {"max_length": m.max_length, "layers": list(m.layers), "in_features": in_features, "hidden": m.hidden,
            "dropout": m.dropout, "class_weights": class_weights, "recipe": jsonable(cfg)}
