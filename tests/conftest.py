"""Shared fixtures: the real Llama-2 tokenizer and the real data from ../shared."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("THERAPY_ALIGN_SHARED", REPO_ROOT.parent / "shared"))
DATA_DIR = SHARED / "data"
TOKENIZER_DIR = SHARED / "tokenizers" / "llama-2"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_recipe_module(path: Path, name: str):
    """A recipe script imported as a module (recipes are scripts, not a package)."""
    import importlib.util
    import sys

    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:  # as `python recipes/x.py` does: a recipe may import its sibling's presets
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def llama_tokenizer():
    """Loaded once per session (a few seconds): usable from hypothesis tests, which take no
    function-scoped fixtures."""
    from therapy_align.data.chat_format import load_tokenizer

    return load_tokenizer(str(TOKENIZER_DIR))


@pytest.fixture(scope="session")
def tokenizer():
    return llama_tokenizer()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "annomi" / "AnnoMI-full.csv").is_file():
        pytest.fail(f"the real data is expected at {DATA_DIR} (../shared beside the checkout)")
    return DATA_DIR
