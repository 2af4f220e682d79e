"""A small random-weight EMP-EVAL artifact (real empeval code and file layout, tiny encoder), so
the harness tests score real responses in seconds without the trained evaluator."""

from __future__ import annotations

from pathlib import Path


def make_tiny_evaluator(out: Path, *, split_seed: int | None = None, init_seed: int = 0, decision_offsets=None,
                        fit_gate: bool | str = False) -> Path:
    """`split_seed`: record the real EPITOME split of that seed (dev/test pairs for the probe and
    ensemble read-outs); None: an empty split. `fit_gate=True` gates by the (random) head."""
    if (out / "empeval_model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, BertConfig

    from empeval.artifact import write_artifact_dir
    from empeval.config import TrainConfig, default_backbone
    from empeval.model import EmpathyClassifier

    torch.manual_seed(init_seed)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    model = EmpathyClassifier.from_encoder_config(config)
    # Spread the head biases so that all three levels occur in the scores.
    with torch.no_grad():
        for head in model.heads.values():
            head.weight.normal_(0, 2.0)
    split = {"train": [], "dev": [], "test": []}
    if split_seed is not None:
        from empeval.epitome_data import load_epitome, split_by_seeker

        frame = load_epitome()
        split = {k: frame["rp_id"].iloc[v].tolist() for k, v in split_by_seeker(frame["sp_id"], seed=split_seed).items()}
    write_artifact_dir(out, model=model, tokenizer=tokenizer,
                       config=TrainConfig(max_epochs=1, seed=init_seed, split_seed=split_seed),
                       class_weights=[[1.0, 1.0, 1.0]] * 3, split=split,
                       metrics={"note": "random tiny evaluator for tests"},
                       decision_offsets=decision_offsets, fit_gate=fit_gate)
    return out
