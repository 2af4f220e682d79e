"""A tiny Llama-2-architecture model (random init) for tests, demos and CPU presets.

Same architecture class and vocabulary as Llama-2-7b-chat (so the real tokenizer, chat template,
LoRA target modules and PEFT adapters all apply), a few million parameters instead of 7B.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

LLAMA2_VOCAB_SIZE = 32000
DEFAULT_TINY_DIR = Path("artifacts/tiny-llama-2")


def tiny_llama_config(
    *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4, max_positions: int = 4096
) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=LLAMA2_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 8 // 3,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )


def build_tiny_model(seed: int = 0, **config_kwargs) -> LlamaForCausalLM:
    """A randomly initialised tiny Llama-2; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_llama_config(**config_kwargs))


def materialize_tiny_model(path: str | Path = DEFAULT_TINY_DIR, seed: int = 0) -> Path:
    """Save the tiny model (and nothing else) at ``path`` once, so every later stage loads the
    same base weights with ``from_pretrained(path)``, as it would a hub checkpoint."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    tmp = path.with_name(path.name + ".tmp")
    build_tiny_model(seed).save_pretrained(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(path)
    return path
