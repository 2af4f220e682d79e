"""The learned crisis detector: a small head on frozen sentence embeddings (all-mpnet-base-v2 by
default, or the rules' own all-MiniLM-L6-v2), beside the rules.

The head predicts a risk level (``levels.LEVELS``) for a normalised message; its crisis probability
is 1 - P(none). Rows whose level is unknown (a T-SID ``suicide_or_self_harm`` tweet, a CounselChat
self-harm question) teach only crisis against none; written rows teach the level too.

Layout of ``artifacts/safety/`` (written whole into a temporary directory, then renamed):
  head.safetensors   the head's weights
  detector.json      fingerprint, config, thresholds, encoder, levels
  metrics.json       dev-split figures and the training data's sizes

``therapy-align safety train`` skips the work when the artifact's fingerprint (config, training
data, encoder, code version) matches; the encoder's embeddings of the training texts are cached
beside the artifact, so an interrupted run resumes without re-embedding.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from therapy_align.errors import UserError
from therapy_align.safety.config import SafetyTrainConfig
from therapy_align.safety.levels import LEVELS
from therapy_align.store import digest

DEFAULT_ARTIFACT = Path("artifacts/safety")
HEAD_FILE = "head.safetensors"
SETTINGS_FILE = "detector.json"
METRICS_FILE = "metrics.json"
# The frozen sentence encoders a head may sit on (``SafetyTrainConfig.encoder``), by the name an artifact records.
ENCODERS = {"minilm": "all-MiniLM-L6-v2/mean-pool/128", "mpnet": "all-mpnet-base-v2/mean-pool/128"}
FORMAT = 1  # bump when the head or the features change meaning
UNKNOWN_LEVEL = -1  # a crisis of unknown level

# CounselChat topics read as weak labels: questions under these are not crises; the self-harm topic is.
COUNSELCHAT_NONE = ("relationships", "parenting", "intimacy", "family-conflict", "anxiety", "self-esteem",
                    "workplace-relationships", "marriage", "sleep-improvement", "social-relationships", "lgbtq",
                    "spirituality", "professional-ethics", "counseling-fundamentals", "behavioral-change",
                    "relationship-dissolution", "legal-regulatory", "stress", "human-sexuality", "diagnosis")
COUNSELCHAT_CRISIS = ("self-harm",)


class DetectorArtifactError(UserError):
    """A missing or broken learned-detector artifact."""


# ---------------------------------------------------------------------- training data


def written_rows(name: str = "crisis_train.jsonl") -> list[dict[str, Any]]:
    """A set written for this project, in the package (``safety/data/<name>``)."""
    text = resources.files("therapy_align.safety").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def training_rows(cfg: SafetyTrainConfig, data_dir=None, *, exclude: str | None = None) -> list[dict[str, Any]]:
    """``{"id", "text", "level" (index or UNKNOWN_LEVEL), "source"}`` from ``cfg.sources`` minus ``exclude``."""
    rows: list[dict[str, Any]] = []
    sources = [s for s in cfg.sources if s != exclude]
    if "tsid" in sources:
        from therapy_align.safety.evaluate import TSID_CRISIS_LABEL, load_tsid

        for r in load_tsid(data_dir):
            if r["split"] == "dev":
                level = UNKNOWN_LEVEL if r["label"] == TSID_CRISIS_LABEL else 0
                rows.append({"id": r["id"], "text": r["text"], "level": level, "source": "tsid"})
    if "written" in sources:
        for r in written_rows():
            rows.append({"id": r["id"], "text": r["text"], "level": LEVELS.index(r["level"]), "source": "written"})
    if "counselchat" in sources:
        rows += counselchat_rows(data_dir, cfg.max_counselchat, cfg.seed)
    return rows


def counselchat_rows(data_dir, limit: int, seed: int) -> list[dict[str, Any]]:
    """CounselChat train-split questions (title and text), weakly labelled by topic, unique by text."""
    from therapy_align.paths import data_file

    path = data_file("counsel_chat/counsel_chat.csv", data_dir)
    seen, crisis, other = set(), [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("split", "train") != "train":
                continue
            text = " ".join(f"{row['questionTitle']}. {row['questionText']}".split())[:600]
            if text in seen or row["topic"] not in COUNSELCHAT_NONE + COUNSELCHAT_CRISIS:
                continue
            seen.add(text)
            item = {"id": f"cc-{row['questionID']}", "text": text, "source": "counselchat"}
            if row["topic"] in COUNSELCHAT_CRISIS:
                crisis.append({**item, "level": UNKNOWN_LEVEL})
            else:
                other.append({**item, "level": 0})
    random.Random(seed).shuffle(other)
    return crisis + other[:max(0, limit - len(crisis))]


def dev_split(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of train and dev: a seeded ``fraction`` of each (source, crisis or not) group is dev."""
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r["source"], r["level"] != 0), []).append(i)
    train, dev = [], []
    for key in sorted(groups):
        members = groups[key][:]
        random.Random(f"{seed}-{key}").shuffle(members)
        cut = round(len(members) * fraction)
        dev += members[:cut]
        train += members[cut:]
    return sorted(train), sorted(dev)


# ---------------------------------------------------------------------- the model


def make_head(width: int, hidden: int, dropout: float, members: int = 1):
    """One head, or ``members`` heads whose level probabilities are averaged (its output is the log of
    the mean, so a softmax of it gives the mean): one head trained on a few hundred rows is
    overconfident on wording unlike its data, and heads of other seeds disagree there."""
    import torch
    import torch.nn as nn

    def one():
        return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, len(LEVELS)))

    if members == 1:
        return one()

    class MeanOfHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(one() for _ in range(members))

        def forward(self, x):
            return torch.log(torch.stack([torch.softmax(m(x), dim=-1) for m in self.members]).mean(dim=0))

    return MeanOfHeads()


def level_loss(logits, levels, positive_weight: float, row_weights=None):
    """Cross-entropy on known levels; for a crisis of unknown level, -log P(not none); weighted."""
    import torch

    log_probs = torch.log_softmax(logits, dim=-1)
    known = levels >= 0
    loss = torch.zeros(len(levels), dtype=log_probs.dtype)
    if known.any():
        loss[known] = -log_probs[known].gather(1, levels[known].unsqueeze(1)).squeeze(1)
    unknown = ~known
    if unknown.any():
        loss[unknown] = -torch.logsumexp(log_probs[unknown, 1:], dim=-1)
    weights = torch.where(levels != 0, positive_weight, 1.0)
    if row_weights is not None:
        weights = weights * row_weights
    return (loss * weights).sum() / weights.sum()


def fit_head(features: np.ndarray, levels: np.ndarray, row_weights: np.ndarray, cfg: SafetyTrainConfig):
    """Train the head with Lightning on CPU (seconds: the encoder is frozen, its embeddings precomputed)."""
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class HeadModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.head = make_head(features.shape[1], cfg.hidden, cfg.dropout)

        def training_step(self, batch, _):
            x, y, w = batch
            return level_loss(self.head(x), y, cfg.positive_weight, w)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):  # device and tip banners: noise here
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = TensorDataset(torch.tensor(features, dtype=torch.float32), torch.tensor(levels, dtype=torch.long),
                         torch.tensor(row_weights, dtype=torch.float32))
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed))
    from therapy_align.lightning_stops import TrainingStops, fit_or_stop

    module = HeadModule()
    # No checkpoint: the fit takes seconds, so an interrupted one simply reruns; the stops still
    # refuse a non-finite loss and make a signal exit 143/130 before anything is published.
    stops = TrainingStops()
    trainer = pl.Trainer(max_epochs=cfg.max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True, callbacks=[stops])
    fit_or_stop(trainer, stops, module, loader, resume_hint="rerun the same command to train again")
    return module.head.eval()


def head_probabilities(head, features: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return torch.softmax(head(torch.tensor(features, dtype=torch.float32)), dim=-1).numpy()


def choose_threshold(probability: np.ndarray, rule_flags: np.ndarray, positive: np.ndarray, target_recall: float,
                     max_added_fpr: float = 1.0, groups: np.ndarray | None = None) -> float:
    """The threshold for (rules or probability >= threshold) on a dev split: the highest that keeps
    ``target_recall`` on the positives, among those that add at most ``max_added_fpr`` to the rules'
    own false-positive rate; when none keeps the target within that, the lowest that does (the most
    recall it allows). A negative probability marks a row the head may not flag (its gate).
    ``groups`` (a source per row): the cap holds on each group's negatives separately, so a minority
    of hard negatives (hand-written look-alikes) is not outvoted by many easy ones (tweets)."""
    candidates = sorted(set(np.round(probability[probability >= 0], 4).tolist()) | {1.0 + 1e-6}, reverse=True)
    negative = ~positive
    if groups is None:
        groups = np.zeros(len(positive), dtype=int)
    masks = [negative & (groups == g) for g in dict.fromkeys(groups.tolist())]
    caps = [(mask, rule_flags[mask].mean() + max_added_fpr) for mask in masks if mask.any()]
    feasible = []
    for t in candidates:
        flags = rule_flags | (probability >= t)
        if any(flags[mask].mean() > cap + 1e-9 for mask, cap in caps):
            break
        feasible.append(t)
        if not positive.any() or flags[positive].mean() >= target_recall:
            return float(min(t, 1.0))
    return float(min(feasible[-1], 1.0))


# ---------------------------------------------------------------------- using a trained detector


@dataclass(frozen=True)
class Prediction:
    probability: float  # of any crisis (1 - P(none))
    level: str  # the most likely level above none
    threshold: float
    discounted_threshold: float


class LearnedDetector:
    """A trained head, its thresholds and the shared sentence encoder."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        self.path = path
        missing = [n for n in (HEAD_FILE, SETTINGS_FILE) if not (path / n).is_file()]
        if missing:
            raise DetectorArtifactError(f"not a trained crisis detector (missing {', '.join(missing)})", file=path,
                                        fix=f"train one with `therapy-align safety train --out {path}`")
        try:
            self.settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DetectorArtifactError(f"unreadable ({err})", file=path / SETTINGS_FILE,
                                        fix="retrain with `therapy-align safety train`") from None
        if self.settings.get("format") != FORMAT or self.settings.get("encoder") not in ENCODERS.values():
            raise DetectorArtifactError("made by another version of the detector", file=path,
                                        fix="retrain with `therapy-align safety train`")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        cfg = self.settings["config"]
        self.head = make_head(self.settings["width"], cfg["hidden"], cfg["dropout"], cfg.get("members", 1))
        try:
            self.head.load_state_dict(load_file(str(path / HEAD_FILE)))
        except (OSError, RuntimeError, SafetensorError) as err:  # truncated, damaged, or another shape
            raise DetectorArtifactError(f"cannot load ({(str(err).strip().splitlines() or [''])[0][:200]})",
                                        file=path / HEAD_FILE, fix="retrain with `therapy-align safety train`") from None
        self.head.eval()
        self.threshold = float(self.settings["threshold"])
        self.discounted_threshold = float(self.settings["discounted_threshold"])
        self.fingerprint = self.settings["fingerprint"]
        self.encoder = cfg.get("encoder", "minilm")

    def probabilities(self, normalized: list[str]) -> np.ndarray:
        return head_probabilities(self.head, embed(normalized, self.encoder))

    def predict(self, normalized: list[str]) -> list[Prediction]:
        probs = self.probabilities(normalized)
        return [Prediction(float(1.0 - p[0]), LEVELS[1 + int(np.argmax(p[1:]))], self.threshold, self.discounted_threshold)
                for p in probs]


def embed(normalized: list[str], encoder: str = "minilm") -> np.ndarray:
    """Unit-vector embeddings of ``normalized`` by the named encoder; MiniLM is the one the semantic
    layer already holds, mpnet a second model loaded on first use (128 tokens, mean pooling)."""
    from therapy_align.safety.semantic import default_encoder

    if encoder == "minilm":
        return default_encoder().embed(normalized)
    from therapy_align.sentence_embedding import SentenceEncoder, mpnet_path

    return SentenceEncoder.shared(mpnet_path(), max_length=128).embed(normalized)


def load_if_present(path: str | os.PathLike | None = None) -> tuple[LearnedDetector | None, str]:
    """(the detector at ``path`` or ``artifacts/safety``, a line saying which decision is in use).
    A missing default artifact means rules only; a given path that is missing or broken is an error."""
    if path is None and not (DEFAULT_ARTIFACT / SETTINGS_FILE).is_file():
        return None, (f"crisis detection: rules only (no learned detector at {DEFAULT_ARTIFACT}; "
                      "train one with `therapy-align safety train`)")
    detector = LearnedDetector(path if path is not None else DEFAULT_ARTIFACT)
    return detector, f"crisis detection: rules + learned detector {detector.path} (threshold {detector.threshold:.3f})"


# ---------------------------------------------------------------------- training


def fit_on_dev_split(features: np.ndarray, rows: list[dict[str, Any]], cfg: SafetyTrainConfig, *,
                     log: Callable[[str], None] | None = None):
    """The head fitted on the seeded train part of ``rows`` (written rows weighted ``written_weight``,
    ``members`` heads on consecutive seeds), in eval mode; ``(head, levels, train, dev)``, the dev
    indices being where the threshold is then chosen."""
    levels = np.array([r["level"] for r in rows])
    train, dev = dev_split(rows, cfg.dev_fraction, cfg.seed)
    if log is not None:
        log(f"training on {len(train)} rows ({sum(levels[train] != 0)} crisis), choosing the threshold on {len(dev)}")
    row_weights = np.array([cfg.written_weight if r["source"] == "written" else 1.0 for r in rows])
    head = make_head(features.shape[1], cfg.hidden, cfg.dropout, cfg.members)
    for k in range(cfg.members):
        member = fit_head(features[train], levels[train], row_weights[train], replace(cfg, seed=cfg.seed + k))
        (head.members[k] if cfg.members > 1 else head).load_state_dict(member.state_dict())
    head.eval()
    return head, levels, train, dev


def train_detector(cfg: SafetyTrainConfig, out: str | os.PathLike = DEFAULT_ARTIFACT, *, data_dir=None,
                   force: bool = False, exclude: str | None = None, log=print) -> dict[str, Any]:
    """Train the head and publish ``out`` (skipped when an artifact of the same fingerprint is there).
    ``exclude``: leave one training source out (the leave-one-source-out protocol). Returns the metrics."""
    from therapy_align.files import atomic_write_json
    from therapy_align.safety.detector import DEFAULT_THRESHOLDS, detect_crisis_batch, head_gates, normalize
    from therapy_align.safety.fingerprint import detector_fingerprint

    out = Path(out)
    rows = training_rows(cfg, data_dir, exclude=exclude)
    if not rows:
        raise UserError("no training rows", field="--train.sources")
    encoder_id = ENCODERS[cfg.encoder]
    fingerprint = digest({"config": asdict(cfg), "exclude": exclude, "format": FORMAT, "encoder": encoder_id,
                          "rules": detector_fingerprint(DEFAULT_THRESHOLDS),
                          "rows": [(r["id"], r["text"], r["level"]) for r in rows]})
    settings_path = out / SETTINGS_FILE
    if not force and settings_path.is_file():
        try:
            if json.loads(settings_path.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
                log(f"{out}: up to date (fingerprint {fingerprint})")
                return json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            pass
    texts = [normalize(r["text"]) for r in rows]
    suffix = "" if cfg.encoder == "minilm" else f"-{cfg.encoder}"
    features = cached_embeddings(out.with_name(f".{out.name}.embeddings{suffix}.npz"), texts, cfg.encoder)
    head, levels, train, dev = fit_on_dev_split(features, rows, cfg, log=log)
    probs = head_probabilities(head, features[dev])
    probability = 1.0 - probs[:, 0]
    dev_texts = [rows[i]["text"] for i in dev]
    verdicts = detect_crisis_batch(dev_texts)
    rule_flags = np.array([v.crisis for v in verdicts])
    positive = levels[dev] != 0
    # The threshold is chosen on the decision as deployed: figurative, joking or fictional messages
    # need the floor too, and negated, resolved, medical or literal ones are the rules' alone.
    gates = np.array(head_gates(dev_texts))
    gated = np.where(gates == "settled", -1.0,
                     np.where((gates == "discounted") & (probability < cfg.discounted_threshold_floor), -1.0, probability))
    groups = np.array([rows[i]["source"] for i in dev]) if cfg.fpr_cap == "per_source" else None
    threshold = choose_threshold(gated, rule_flags, positive, cfg.target_recall, cfg.max_added_fpr, groups)
    discounted = max(threshold, cfg.discounted_threshold_floor)
    flags = rule_flags | (gated >= threshold)
    metrics = {
        "n_train": len(train), "n_dev": len(dev), "threshold": threshold, "discounted_threshold": discounted,
        "sources": {s: sum(r["source"] == s for r in rows) for s in sorted({r["source"] for r in rows})},
        "dev_recall": float(flags[positive].mean()) if positive.any() else None,
        "dev_fpr": float(flags[~positive].mean()) if (~positive).any() else None,
        "dev_by_source": {s: _rates(flags, positive, [rows[i]["source"] == s for i in dev])
                          for s in sorted({rows[i]["source"] for i in dev})},
    }
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(tmp / HEAD_FILE))
    atomic_write_json(tmp / SETTINGS_FILE, {"format": FORMAT, "encoder": encoder_id, "fingerprint": fingerprint,
                                            "width": int(features.shape[1]), "levels": list(LEVELS),
                                            "threshold": threshold, "discounted_threshold": discounted,
                                            "exclude": exclude, "config": asdict(cfg)})
    atomic_write_json(tmp / METRICS_FILE, metrics)
    _replace_dir(tmp, out)
    log(f"{out}: threshold {threshold:.3f}; dev recall {metrics['dev_recall']:.3f}, FPR {metrics['dev_fpr']:.3f}")
    return metrics


def _rates(flags: np.ndarray, positive: np.ndarray, mask) -> dict[str, float | None]:
    mask = np.asarray(mask, dtype=bool)
    pos, neg = positive & mask, ~positive & mask
    return {"recall": float(flags[pos].mean()) if pos.any() else None, "fpr": float(flags[neg].mean()) if neg.any() else None}


def cached_embeddings(path: Path, texts: list[str], encoder: str = "minilm") -> np.ndarray:
    """Embeddings of ``texts``, reusing those stored at ``path`` by text (written atomically)."""
    stored: dict[str, np.ndarray] = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            stored = {}
    missing = [t for t in dict.fromkeys(texts) if t not in stored]
    if missing:
        stored.update(zip(missing, embed(missing, encoder), strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}.npz")
        np.savez(tmp, texts=np.array(list(stored)), vectors=np.stack(list(stored.values())))
        os.replace(tmp, path)
    return np.stack([stored[t] for t in texts])


def _replace_dir(tmp: Path, out: Path) -> None:
    """Swap the finished ``tmp`` in for ``out``; readers see the old artifact or the new, never a mix."""
    trash = out.with_name(f".{out.name}.trash-{os.getpid()}")
    if out.exists():
        os.replace(out, trash)
    os.replace(tmp, out)
    shutil.rmtree(trash, ignore_errors=True)
