"""The SFT run: :func:`train` takes an :class:`~therapy_align.training.config.SftConfig` and leaves a
run directory (adapter, tokenizer, metrics, model card) that every later stage loads.

    from therapy_align.training.sft_run import train
    run_dir = train(cfg, resume=False)     # cfg: a preset of recipes/sft_paper.py, with overrides

Around TRL's ``SFTTrainer`` (no training loop here): the data (built once, cached), the trainer
arguments (the config's ``train`` section passed through whole), held-out loss, supervised-token
counting, metrics and the model card. Run-directory layout: see :mod:`therapy_align.training.models`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from therapy_align.data.dataset_build import BuildConfig
from therapy_align.data.masking import IGNORE_INDEX
from therapy_align.errors import UserError
from therapy_align.files import atomic_write_json, atomic_write_text, canonical_json, jsonable
from therapy_align.training.models import RUN_SCHEMA, TINY_BASE_DIR, stored_base

if TYPE_CHECKING:  # pragma: no cover
    from therapy_align.training.config import SftConfig

DATA_CACHE_DIR = Path("artifacts/sft-data")
BUILD_SUMMARY = "build_summary.json"  # in each cached dataset: the build's statistics
DATA_SUMMARY = "data_summary.json"  # in each run directory: the same, for the data it trained on


# --------------------------------------------------------------------------- data


def sft_dataset(data: BuildConfig, *, tokenizer, max_length: int | None, cache_dir: str | os.PathLike | None = DATA_CACHE_DIR,
                summary_out: str | os.PathLike | None = None):
    """``DatasetDict(train, heldout)`` with ``input_ids``/``labels`` only, truncated to ``max_length``.

    ``data`` is the config's data section: a :class:`~therapy_align.data.dataset_build.BuildConfig`
    (every build knob) plus ``max_train_rows``/``max_heldout_rows``. Chunks are built to
    ``data.max_tokens`` (the paper's "fit the context" chunking), so truncation only bites when
    ``max_length`` is smaller. Built datasets are cached under ``cache_dir`` keyed by the build
    config and tokenizer, so a second process (DDP rank, resumed run) loads instead of
    rebuilding; the build's statistics (opener policy, counts, ...) go to ``summary_out``.
    """
    from datasets import DatasetDict, load_from_disk

    from therapy_align.data.dataset_build import build_dataset

    build = BuildConfig(**{f.name: getattr(data, f.name) for f in dataclasses.fields(BuildConfig)})
    key_src = canonical_json({"build": build, "tokenizer": tokenizer.name_or_path, "vocab": len(tokenizer),
                              "code": _pipeline_code_hash()})
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{build.split}-{key}" if cache_dir is not None else None
    if path is not None and (path / "dataset_dict.json").is_file() and (path / BUILD_SUMMARY).is_file():
        dsd = load_from_disk(str(path))
        summary = json.loads((path / BUILD_SUMMARY).read_text(encoding="utf-8"))
    else:
        dsd, summary = build_dataset(build, tokenizer=tokenizer)
        dsd = DatasetDict({name: ds.select_columns(["input_ids", "labels"]) for name, ds in dsd.items()})
        if path is not None:
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            dsd.save_to_disk(str(tmp))
            atomic_write_json(tmp / BUILD_SUMMARY, summary)
            try:
                shutil.rmtree(path, ignore_errors=True)  # an older cache entry without its summary
                tmp.rename(path)
            except OSError:  # another process won the race
                shutil.rmtree(tmp, ignore_errors=True)
            dsd = load_from_disk(str(path))
    if summary_out is not None:
        atomic_write_json(summary_out, summary)
    limits = {"train": getattr(data, "max_train_rows", None), "heldout": getattr(data, "max_heldout_rows", None)}
    out = {}
    for name, ds in dsd.items():
        if limits.get(name) is not None and limits[name] < len(ds):
            # Evenly spaced rows: a sample across transcripts, not the first few transcripts.
            step = len(ds) / limits[name]
            ds = ds.select([int(i * step) for i in range(limits[name])])
        if max_length is not None:
            ds = ds.map(lambda ex: {"input_ids": ex["input_ids"][:max_length], "labels": ex["labels"][:max_length]})
            ds = ds.filter(lambda ex: any(label != IGNORE_INDEX for label in ex["labels"][1:]))
        out[name] = ds
    return DatasetDict(out)


def _pipeline_code_hash() -> str:
    """Hash of the data pipeline's source, so a change to cleaning, chunking or masking never
    trains on a stale cached dataset."""
    from importlib import resources

    package = resources.files("therapy_align.data")
    digest = hashlib.sha256()
    names = ["transcripts.py", "cleaning.py", "chat_format.py", "chunking.py", "masking.py", "splits.py",
             "dataset_build.py", "system_prompts.py"]
    names += sorted(f"templates/{t.name}" for t in package.joinpath("templates").iterdir() if t.name.endswith(".jinja"))
    for name in names:
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def supervised_count(labels) -> int:
    """Tokens that carry loss in one row (the first label is never predicted)."""
    return sum(1 for label in list(labels)[1:] if label != IGNORE_INDEX)


# --------------------------------------------------------------------------- run directory


def write_run_config(run_dir: Path, config: Any, *, base_model_ref: str, quantization: str | None) -> dict:
    """``runs/<name>/config.json``: the resolved run config plus the keys :mod:`models` reads."""
    body = {
        "schema": RUN_SCHEMA,
        "base_model": stored_base(base_model_ref),
        "base_model_ref": base_model_ref,
        "quantization": None if quantization in (None, "none") else quantization,
        **jsonable(config),
    }
    atomic_write_json(run_dir / "config.json", body)
    return body


def configure_wandb(run_dir: Path, *, project: str, name: str) -> None:
    """wandb logs every run; offline unless the user chose a mode; files under ``runs/<name>/``
    (never the repo's ``wandb/`` folder, which holds sweep configs)."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_PROJECT", project)
    os.environ.setdefault("WANDB_NAME", name)
    os.environ.setdefault("WANDB_DIR", str(run_dir.resolve()))
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def wandb_run_settings(run_dir: Path, *, project: str, name: str) -> Iterator[None]:
    """:func:`configure_wandb` for the duration of one run, the environment restored after it, so a
    second run in the same process (``recipes/eval_paper.py`` trains two) logs under its own name."""
    keys = ("WANDB_MODE", "WANDB_PROJECT", "WANDB_NAME", "WANDB_DIR", "WANDB_SILENT")
    before = {key: os.environ.get(key) for key in keys}
    configure_wandb(run_dir, project=project, name=name)
    try:
        yield
    finally:
        wandb = sys.modules.get("wandb")
        if wandb is not None:  # a wandb session reads the environment once: end it with the run
            wandb.teardown()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The newest *complete* ``checkpoint-<step>`` in ``run_dir`` (a process killed while saving
    leaves a partial one, without ``trainer_state.json``, which is skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    found = []
    for path in run_dir.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if path.is_dir() and suffix.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


# --------------------------------------------------------------------------- measurement


class SupervisedTokenCounter:
    """Counts the supervised next-token targets the model trains on (``labels[:, 1:] != -100``),
    from a forward pre-hook on the trained module: it observes batches, changes nothing."""

    def __init__(self, module) -> None:
        self.count = 0
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        labels = kwargs.get("labels")
        if module.training and labels is not None:
            self.count += int((labels[:, 1:] != IGNORE_INDEX).sum())

    def remove(self) -> None:
        self._handle.remove()


def heldout_loss(trainer, dataset=None) -> dict[str, float]:
    """Token-weighted mean cross-entropy over the supervised (therapist) tokens of ``dataset``
    (default: the trainer's eval dataset), summed over all processes: ``{"loss", "tokens"}``.

    Uses TRL's fused LM head (``fused_lm_head=True``), the same loss the trainer optimises, on
    the trainer's distributed eval dataloader (with ``run.supervised_logits_only``, the head
    projects only the supervised positions here too).
    """
    import torch

    loader = trainer.get_eval_dataloader(dataset)
    model = trainer.model_wrapped if trainer.model_wrapped is not None else trainer.model
    was_training = model.training
    model.eval()
    device = trainer.accelerator.device
    nll = torch.zeros((), dtype=torch.float64, device=device)
    tokens = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for batch in loader:
            batch = trainer._prepare_inputs(batch)
            with trainer.compute_loss_context_manager():
                out = model(**batch, use_cache=False, fused_lm_head=True)
            nll += (-out.log_probs).sum().double()
            tokens += out.label_mask.sum().double()
    nll = trainer.accelerator.reduce(nll, reduction="sum")
    tokens = trainer.accelerator.reduce(tokens, reduction="sum")
    if was_training:
        model.train()
    return {"loss": float(nll / tokens.clamp(min=1)), "tokens": int(tokens)}


def train_losses(log_history: list[dict]) -> list[tuple[int, float]]:
    return [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]


def write_metrics(run_dir: Path, metrics: dict) -> None:
    atomic_write_json(run_dir / "metrics.json", metrics)


def write_model_card(run_dir: Path, *, config: dict, metrics: dict, command: str) -> None:
    """``runs/<name>/README.md``: what was trained, how, and how well (held-out loss)."""
    train, lora, data = config.get("train", {}), config.get("lora", {}), config.get("data", {})
    held = metrics.get("heldout_loss") or {}
    lines = [
        f"# {config.get('name', run_dir.name)}",
        "",
        f"LoRA adapter for `{config['base_model']}` trained with masked-loss SFT (paper "
        "*Therapist AI: Fine tuning Llama 2*, §4): cross-entropy on therapist tokens only "
        "(client and system tokens labelled -100).",
        "",
        "## Load",
        "",
        "```python",
        "from therapy_align.training.models import load_model_for_inference",
        f'model, tokenizer = load_model_for_inference("{run_dir}")',
        "```",
        "",
        "## Training",
        "",
        f"- data split: `{data.get('split')}` (system prompt `{data.get('system_prompt')}`, chunks ≤ {data.get('max_tokens')} tokens)",
        f"- base: `{config['base_model']}` (quantization: {config.get('quantization') or 'none'})",
        f"- LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, targets={lora.get('target_modules')}",
        f"- steps={train.get('max_steps')}, grad_accum={train.get('gradient_accumulation_steps')}, "
        f"lr={train.get('learning_rate')}, batch/device={train.get('per_device_train_batch_size')}, max_length={train.get('max_length')}",
        f"- processes: {metrics.get('num_processes')}, device: {metrics.get('device')}",
        f"- command: `{command}`",
        "",
        "## Results",
        "",
        "| metric | value |",
        "|---|---|",
        f"| held-out loss, step 0 | {held.get('step0')} |",
        f"| held-out loss, end | {held.get('end')} |",
        f"| final train loss | {metrics.get('train_loss_last')} |",
        f"| supervised tokens seen | {metrics.get('supervised_tokens_seen')} |",
        f"| supervised tokens/s | {metrics.get('supervised_tokens_per_s')} |",
        "",
        "Held-out = the seeded 20% of high-quality AnnoMI transcripts outside `annomi80` "
        "(for `full_plus` they are also in training, so its held-out loss is not a generalisation measure).",
        "",
        "Research artefact: not a medical device and not a substitute for a therapist.",
        "",
    ]
    atomic_write_text(run_dir / "README.md", "\n".join(lines))


# --------------------------------------------------------------------------- the run


def train_and_save(trainer, config: Any, run_dir: Path, tokenizer, *, resume: bool, heldout: bool = True) -> Path:
    """Held-out loss at step 0, ``trainer.train`` (from the newest checkpoint with ``resume``),
    held-out loss at the end, then adapter, tokenizer, metrics and model card in ``run_dir``."""
    import torch

    acc = trainer.accelerator
    main = acc.is_main_process
    step0_path = run_dir / "heldout_step0.json"
    checkpoint = newest_checkpoint(run_dir) if resume else None
    step0 = None
    if heldout:
        if checkpoint is not None and step0_path.is_file():
            step0 = json.loads(step0_path.read_text())
        else:
            step0 = heldout_loss(trainer)
            if main:
                atomic_write_json(step0_path, step0)
    from therapy_align.trl_stops import TrainingStops

    counter = SupervisedTokenCounter(trainer.model)
    stops = TrainingStops()
    trainer.add_callback(stops)
    with stops.signals:
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    counter.remove()
    # a diverged or interrupted run leaves its checkpoints and no adapter, so it never looks finished
    stops.raise_if_stopped(resume_from=run_dir)
    end = heldout_loss(trainer) if heldout else None
    seen = acc.reduce(torch.tensor(counter.count, device=acc.device, dtype=torch.float64), reduction="sum")
    seen = int(seen.item())
    runtime = float(output.metrics.get("train_runtime", 0.0))
    losses = train_losses(trainer.state.log_history)
    if heldout:
        trainer.log({"heldout_loss_step0": step0["loss"], "heldout_loss": end["loss"]})
    trainer.save_model(str(run_dir / "adapter"))
    acc.wait_for_everyone()
    if main:
        tokenizer.save_pretrained(str(run_dir / "tokenizer"))
        metrics = {
            "global_step": trainer.state.global_step,
            "resumed_from": checkpoint.name if checkpoint is not None else None,
            "train_loss_last": losses[-1][1] if losses else None,
            "train_loss_mean": output.training_loss,
            "train_losses": losses,
            "heldout_loss": None
            if not heldout
            else {"step0": step0["loss"], "end": end["loss"], "tokens": end["tokens"]},
            "supervised_tokens_seen": seen,
            "supervised_tokens_per_s": seen / runtime if runtime else None,
            "train_runtime_s": runtime,
            "num_processes": acc.num_processes,
            "distributed": f"{acc.distributed_type.value} ({acc.state.backend or 'none'})",
            "device": str(acc.device),
            "note": "supervised tokens and runtime cover this session only (after --resume: the resumed part)",
        }
        write_metrics(run_dir, metrics)
        config_body = json.loads((run_dir / "config.json").read_text())
        write_model_card(run_dir, config=config_body, metrics=metrics, command="accelerate launch " + " ".join(sys.argv))
    acc.wait_for_everyone()
    finish_wandb()
    return run_dir


def finish_wandb() -> None:
    """Close this process's wandb run, if any (trainers leave it open)."""
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    if wandb.run is not None:
        wandb.finish()


# --------------------------------------------------------------------------- the stage


def check_before_loading(cfg: SftConfig) -> None:
    """Everything about ``cfg`` that can fail without loading a model: k-bit loading without CUDA,
    a missing model or tokenizer (or an uncached hub id offline), a missing or malformed session file."""
    from therapy_align.data.transcripts import load_plain_transcript
    from therapy_align.paths import check_tokenizer_ref
    from therapy_align.training.models import check_hub_reachable, check_quantization

    check_quantization(cfg.model.quantization)
    if cfg.model.name_or_path not in ("tiny-base", TINY_BASE_DIR):  # the tiny base is made on demand
        check_hub_reachable(cfg.model.name_or_path, field="--model.name_or_path")
    if cfg.model.tokenizer is not None:
        check_tokenizer_ref(cfg.model.tokenizer, field="--model.tokenizer")
    for path in cfg.data.extra_transcripts:
        load_plain_transcript(path)


def trainer_args(cfg: SftConfig, run_dir: Path):
    """``trl.SFTConfig``: the ``train`` section whole, plus what follows from the run and the model."""
    train = cfg.train
    if "per_device_eval_batch_size" not in train and "per_device_train_batch_size" in train:
        # the held-out loss batches like training unless the config says otherwise
        train = train.replace(per_device_eval_batch_size=train["per_device_train_batch_size"])
    if "data_seed" not in train and "seed" in train:  # the data order follows the seed unless set apart
        train = train.replace(data_seed=train["seed"])
    if train.get("padding_free"):  # TRL refuses max_length with padding_free: sft_dataset truncates instead
        train = train.replace(max_length=None)
    m = cfg.model
    return train.build(output_dir=str(run_dir), run_name=cfg.name, report_to=["wandb"] if cfg.run.wandb else [],
                       bf16=m.resolved_dtype() == "bfloat16", fp16=m.resolved_dtype() == "float16",
                       gradient_checkpointing=m.gradient_checkpointing,
                       use_cpu=m.quantization == "none" and _cpu_only())


def _cpu_only() -> bool:  # no CUDA, or ACCELERATE_USE_CPU=true (multi-process CPU runs use gloo)
    import torch

    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")


def make_trainer(cfg: SftConfig, run_dir: Path):
    """``(SFTTrainer, tokenizer)`` for ``cfg``, writing ``run_dir/config.json`` and the data summary."""
    from peft import LoraConfig
    from trl import SFTTrainer

    from therapy_align.data.chat_format import load_tokenizer
    from therapy_align.training.models import default_tokenizer, load_causal_lm

    m = cfg.model
    args = trainer_args(cfg, run_dir)
    tokenizer = load_tokenizer(m.tokenizer or default_tokenizer(m.name_or_path))
    with args.main_process_first(desc="build SFT data"):
        data = sft_dataset(cfg.data, tokenizer=tokenizer, max_length=cfg.train.get("max_length", args.max_length),
                           summary_out=run_dir / DATA_SUMMARY if args.process_index == 0 else None)
    if args.process_index == 0:
        write_run_config(run_dir, cfg, base_model_ref=m.name_or_path, quantization=m.quantization)
    model = load_causal_lm(m.name_or_path, quantization=None if m.quantization == "none" else m.quantization,
                           dtype=m.resolved_dtype())
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), modules_to_save=list(cfg.lora.modules_to_save) or None,
                      bias="none", task_type="CAUSAL_LM")
    trainer_cls = SFTTrainer
    if cfg.run.supervised_logits_only:
        from therapy_align.training.supervised_head import SupervisedHeadSFTTrainer

        trainer_cls = SupervisedHeadSFTTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=data["train"], eval_dataset=data["heldout"],
                          processing_class=tokenizer, peft_config=lora)
    return trainer, tokenizer


def train(cfg: SftConfig, *, resume: bool = False) -> Path:
    """Train ``cfg`` into ``<runs_dir>/<name>/`` (from its newest checkpoint with ``resume``) and
    return the run directory. Under ``accelerate launch`` every process calls it (DDP, FSDP, ZeRO-3)."""
    check_before_loading(cfg)
    run_dir = Path(cfg.runs_dir) / cfg.name
    if not resume and newest_checkpoint(run_dir) is not None:
        raise UserError("already has checkpoints", file=run_dir, fix="pass --resume, or pick another --name")
    with wandb_run_settings(run_dir, project=cfg.wandb_project, name=cfg.name):
        trainer, tokenizer = make_trainer(cfg, run_dir)
        train_and_save(trainer, cfg, run_dir, tokenizer, resume=resume, heldout=cfg.run.heldout_eval)
    del trainer  # what runs next in this process (evaluation loads its own models) gets the memory back
    _release_memory()
    return run_dir


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
