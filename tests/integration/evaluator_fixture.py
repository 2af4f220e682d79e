"""A small random-weight EMP-EVAL artifact (real empeval code and file layout, tiny encoder), so
the harness tests score real responses in seconds without the trained evaluator."""

from __future__ import annotations

from pathlib import Path


def make_tiny_evaluator(out: Path) -> Path:
    if (out / "empeval_model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, BertConfig

    from empeval.artifact import write_artifact_dir
    from empeval.config import TrainConfig, default_backbone
    from empeval.model import EmpathyClassifier

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    model = EmpathyClassifier.from_encoder_config(config)
    # Spread the head biases so that all three levels occur in the scores.
    with torch.no_grad():
        for head in model.heads.values():
            head.weight.normal_(0, 2.0)
    write_artifact_dir(out, model=model, tokenizer=tokenizer, config=TrainConfig(max_epochs=1),
                       class_weights=[[1.0, 1.0, 1.0]] * 3, split={"train": [], "dev": [], "test": []},
                       metrics={"note": "random tiny evaluator for tests"})
    return out
