"""The supervised-positions head (run.supervised_logits_only) trains exactly what TRL's default head
trains: same loss (also under gradient accumulation's num_items_in_batch), same LoRA gradients,
same logged metrics, on a padded batch with a fully masked row, while projecting only the
supervised positions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from tests.conftest import load_recipe_module
from therapy_align.training.supervised_head import SupervisedHeadSFTTrainer
from therapy_align.training.tiny_model import materialize_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[2]
IGNORE = -100


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return materialize_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama-2")


def make_trainers(tiny_dir, tokenizer, tmp_path, modules_to_save):
    """The default trainer and the supervised-head one, on identical LoRA weights (non-zero B)."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    rows = Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[IGNORE, 2, 3]]})
    trainers = []
    for name, cls in (("default", SFTTrainer), ("supervised", SupervisedHeadSFTTrainer)):
        model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
        lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"],
                          modules_to_save=list(modules_to_save) or None, bias="none", task_type="CAUSAL_LM")
        args = SFTConfig(output_dir=str(tmp_path / name), report_to=[], use_cpu=True, bf16=False, max_length=None,
                         gradient_checkpointing=False, disable_tqdm=True)
        trainers.append(cls(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=lora))
    default, supervised = trainers
    torch.manual_seed(0)
    for name, param in default.model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    supervised.model.load_state_dict(default.model.state_dict())
    return default, supervised


def padded_batch(*, fully_masked_row: bool = True) -> dict[str, torch.Tensor]:
    """Three right-padded rows: a prompt then a supervised reply, a shorter one, and (optionally) a
    row with no supervised token at all."""
    gen = torch.Generator().manual_seed(1)
    lengths, supervised_from = [24, 15, 19], [9, 6, 19 if fully_masked_row else 12]
    width = max(lengths)
    ids = torch.zeros((3, width), dtype=torch.long)
    mask = torch.zeros((3, width), dtype=torch.long)
    labels = torch.full((3, width), IGNORE, dtype=torch.long)
    for row, (length, start) in enumerate(zip(lengths, supervised_from, strict=True)):
        ids[row, :length] = torch.randint(3, 32000, (length,), generator=gen)
        mask[row, :length] = 1
        labels[row, start:length] = ids[row, start:length]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def loss_and_grads(trainer, batch, num_items_in_batch=None):
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, {k: v.clone() for k, v in batch.items()}, num_items_in_batch=num_items_in_batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    metrics = {key: trainer._metrics["train"][key][-1] for key in ("entropy", "mean_token_accuracy")}
    return loss.detach(), grads, metrics


@pytest.mark.parametrize("modules_to_save", [(), ("lm_head", "norm")], ids=["lora", "lora+head+norm"])
@pytest.mark.parametrize("num_items", [None, 40], ids=["mean", "grad_accum"])
def test_same_loss_gradients_and_metrics_as_trl(tiny_dir, tokenizer, tmp_path, modules_to_save, num_items):
    default, supervised = make_trainers(tiny_dir, tokenizer, tmp_path, modules_to_save)
    batch = padded_batch()
    n = None if num_items is None else torch.tensor(num_items)
    loss_a, grads_a, metrics_a = loss_and_grads(default, batch, n)
    loss_b, grads_b, metrics_b = loss_and_grads(supervised, batch, n)
    assert loss_a.item() > 0
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    assert any("lora_A" in name for name in grads_a)
    if modules_to_save:
        assert any("modules_to_save" in name and "lm_head" in name for name in grads_a)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-6, msg=name)
    assert metrics_b == pytest.approx(metrics_a, rel=1e-5, abs=1e-6)


def test_projects_only_the_supervised_positions(tiny_dir, tokenizer, tmp_path, monkeypatch):
    from trl.kernels import ChunkedLogProbFunction

    rows_projected = []
    original = ChunkedLogProbFunction.apply

    def counting_apply(hidden, *rest):
        rows_projected.append(hidden.shape[0])
        return original(hidden, *rest)

    monkeypatch.setattr(ChunkedLogProbFunction, "apply", counting_apply)
    default, supervised = make_trainers(tiny_dir, tokenizer, tmp_path, ())
    batch = padded_batch()
    with torch.no_grad():
        default.compute_loss(default.model, dict(batch))
        supervised.compute_loss(supervised.model, dict(batch))
    supervised_targets = int((batch["labels"][:, 1:] != IGNORE).sum())
    every_position = batch["input_ids"].shape[0] * (batch["input_ids"].shape[1] - 1)
    assert rows_projected == [every_position, supervised_targets]  # TRL on the CPU, then ours


def test_a_batch_without_supervised_tokens_gives_a_zero_loss_that_backpropagates(tiny_dir, tokenizer, tmp_path):
    _, supervised = make_trainers(tiny_dir, tokenizer, tmp_path, ())
    batch = padded_batch()
    batch["labels"].fill_(IGNORE)
    loss, grads, metrics = loss_and_grads(supervised, batch)
    assert loss.item() == 0.0
    assert grads and all(torch.count_nonzero(g) == 0 for g in grads.values())
    assert metrics == {"entropy": 0.0, "mean_token_accuracy": 0.0}


def test_generation_is_unchanged(tiny_dir, tokenizer, tmp_path):
    default, supervised = make_trainers(tiny_dir, tokenizer, tmp_path, ())
    ids = padded_batch()["input_ids"][:1, :8]
    outs = []
    for trainer in (default, supervised):
        trainer.model.eval()
        with torch.no_grad():
            outs.append(trainer.model.generate(input_ids=ids, max_new_tokens=4, do_sample=False))
    assert torch.equal(outs[0], outs[1])


def test_the_small_preset_turns_it_on_and_make_trainer_uses_it():
    recipe = load_recipe_module(REPO_ROOT / "recipes" / "sft_paper.py", "sft_paper_recipe_head")
    assert recipe.SMALL.run.supervised_logits_only
    assert not recipe.PAPER.run.supervised_logits_only and not recipe.TINY.run.supervised_logits_only


@pytest.mark.integration
def test_make_trainer_builds_the_supervised_head_trainer(tmp_path):
    from therapy_align.training.sft_run import make_trainer

    recipe = load_recipe_module(REPO_ROOT / "recipes" / "sft_paper.py", "sft_paper_recipe_head")
    tiny = recipe.TINY
    cfg = replace(tiny, name="head", runs_dir=str(tmp_path), data=replace(tiny.data, max_train_rows=2, max_heldout_rows=1),
                  run=replace(tiny.run, wandb=False, supervised_logits_only=True))
    trainer, _ = make_trainer(cfg, tmp_path / cfg.name)
    assert isinstance(trainer, SupervisedHeadSFTTrainer)
