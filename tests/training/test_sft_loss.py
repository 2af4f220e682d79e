"""The SFT trainer (the recipe's tiny preset, built by the library's make_trainer) optimises exactly
the paper's §4 loss: mean cross-entropy over the therapist (supervised) tokens, with client and
system tokens contributing nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import load_recipe_module
from therapy_align.training.sft_run import make_trainer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_recipe():
    return load_recipe_module(REPO_ROOT / "recipes" / "sft_paper.py", "sft_paper_recipe")


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


def small_tiny(recipe, tmp_path, *, padding_free: bool):
    tiny = recipe.TINY
    return replace(
        tiny,
        name="loss-check",
        runs_dir=str(tmp_path),
        data=replace(tiny.data, max_train_rows=6, max_heldout_rows=2),
        train=tiny.train.replace(
            max_length=256, per_device_train_batch_size=3, padding_free=padding_free,
            train_sampling_strategy="random", max_steps=1,
        ),
        run=replace(tiny.run, wandb=False),
    )


@pytest.mark.parametrize("padding_free", [True, False], ids=["padding_free", "padded"])
def test_trainer_loss_is_mean_ce_over_therapist_tokens(recipe, tmp_path, padding_free):
    cfg = small_tiny(recipe, tmp_path, padding_free=padding_free)
    trainer, tokenizer = make_trainer(cfg, tmp_path / cfg.name)
    model = trainer.model
    model.eval()  # no LoRA dropout, so both computations see the same function
    # Make the adapter non-trivial so the check is not about the base model alone.
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)

    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    labels = batch["labels"]
    assert (labels != -100).any() and (labels == -100).any()

    with torch.no_grad():
        trainer_loss = trainer.compute_loss(model, dict(batch)).double()
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs, use_cache=False).logits.double()  # the plain (unfused) head
    targets = labels[:, 1:]
    per_position = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view(targets.shape)
    supervised = targets != -100
    by_hand = per_position[supervised].mean()
    assert torch.allclose(trainer_loss, by_hand, rtol=1e-4, atol=1e-4), (trainer_loss, by_hand)

    # Client/system positions contribute nothing: their cross-entropy is real and non-zero, and
    # adding it would change the loss.
    unsupervised_ce = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), batch["input_ids"][:, 1:].reshape(-1), reduction="none"
    ).view(targets.shape)
    pad = batch.get("attention_mask")
    real = torch.ones_like(supervised) if pad is None else pad[:, 1:].bool()
    context = real & ~supervised
    if "position_ids" in batch:  # padding-free: sequence starts are boundaries, not context
        context &= batch["position_ids"][:, 1:] != 0
    assert context.sum() > supervised.sum() // 4
    all_tokens = torch.cat([per_position[supervised], unsupervised_ce[context]]).mean()
    assert not torch.allclose(trainer_loss, all_tokens, atol=1e-3)

    # The supervised tokens are therapist replies: never the [INST]/<<SYS>> scaffolding, and every
    # supervised run ends with the end-of-reply </s>.
    ids = batch["input_ids"][0].tolist()
    row_labels = labels[0].tolist()
    runs, current = [], []
    for token, label in zip(ids, row_labels, strict=True):
        if label != -100:
            assert label == token
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    assert runs
    for run in runs:
        text = tokenizer.decode(run)
        assert "[INST]" not in text and "<<SYS>>" not in text and "[/INST]" not in text
    assert all(run[-1] == tokenizer.eos_token_id for run in runs[:-1])
