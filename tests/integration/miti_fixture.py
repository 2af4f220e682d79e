"""A small random-weight MI classifier artifact (real miti code and file layout, a 1-layer encoder),
so scoring and multi-turn tests run in seconds without the trained classifier."""

from __future__ import annotations

from pathlib import Path


def make_tiny_miti(out: Path, seed: int = 0) -> Path:
    if (out / "miti_config.json").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from empeval.config import default_backbone
    from miti.artifact import write_artifact
    from miti.model import make_head

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    encoder = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=64, max_position_embeddings=512))
    head = make_head(64, 16, 0.1)
    with torch.no_grad():  # spread the logits so that several labels occur
        head[-1].weight.normal_(0, 3.0)
    settings = {"max_length": 64, "layers": [1], "in_features": 64, "hidden": 16, "dropout": 0.1,
                "class_weights": [1.0] * 6, "recipe": {"note": f"random tiny classifier for tests (seed {seed})"}}
    return write_artifact(out, encoder=encoder, head=head, tokenizer=tokenizer, settings=settings,
                          split={"train": [], "dev": [], "test": []}, metrics={"note": "random"}, predictions=[])
