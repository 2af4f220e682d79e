"""The SFT trainer with the output head computed only at supervised positions, on every device.

    from therapy_align.training.supervised_head import SupervisedHeadSFTTrainer
    trainer = SupervisedHeadSFTTrainer(model=..., args=..., peft_config=...)   # as trl.SFTTrainer

TRL's ``SFTTrainer`` trains through its fused LM head (``trl.trainer.utils.add_fused_lm_head``):
``model(..., labels=..., fused_lm_head=True)`` returns per-token log-probabilities, projecting the
hidden states through the head in vocabulary tiles, never the whole ``(batch, seq, vocab)`` logits.
Which positions it projects depends on the device: on CUDA/XPU (Triton) only those whose
next-token label is supervised, elsewhere -- the CPU -- *every* position, so that the tile shapes
do not change from batch to batch (a recompilation on compiled backends). Our SFT data supervises
therapist tokens only, and with a 262k-token vocabulary (Gemma 3) the head is over half of the
forward FLOPs, so on the CPU most of a step projects client and system tokens whose result is
multiplied by zero.

:func:`add_supervised_lm_head` re-patches the model's forward so that ``fused_lm_head=True``
projects only the supervised positions everywhere, with TRL's own chunked kernel
(``trl.kernels.chunked_logprob.ChunkedLogProbFunction``) and the same output fields, zero where the
label is ``-100``. Everything above the forward is TRL's own: ``SFTTrainer.compute_loss`` (the
loss, its normalisation by ``num_items_in_batch`` under gradient accumulation, the ``entropy`` and
``mean_token_accuracy`` metrics) and the project's held-out loss read the same fields as before, so
the loss is the default trainer's up to float rounding of the head's matrix products.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch
from accelerate.utils import is_peft_model
from torch.distributed.tensor import DTensor
from trl import SFTTrainer

# The per-token fields SFTTrainer asks TRL's head for (``add_fused_lm_head(..., outputs=...)`` in
# SFTTrainer.__init__): the log-probabilities, plus entropy and top-1 for its logged metrics.
SFT_HEAD_OUTPUTS = ("log_probs", "entropy", "is_top1")
IGNORE_INDEX = -100


def _logit_scale(text_config) -> float:
    """The multiplier a model applies to its logits before any softcap, read off its config as
    ``add_fused_lm_head`` reads it (1.0 for Llama and Gemma)."""
    scale = getattr(text_config, "logit_scale", None)
    if scale is None:
        scale = getattr(text_config, "output_multiplier", None)
    if scale is None:
        scale = getattr(text_config, "lm_head_multiplier", None)
    if scale is None and getattr(text_config, "logits_scaling", None) is not None:
        scaling = text_config.logits_scaling
        scale = scaling if text_config.model_type == "hyperclovax" else 1 / scaling
    return 1.0 if scale is None else scale


def add_supervised_lm_head(model, *, outputs: tuple[str, ...] = SFT_HEAD_OUTPUTS) -> None:
    """Make ``model(..., labels=..., fused_lm_head=True)`` project only the positions whose
    next-token label is not ``-100`` (any device), returning TRL's ``FusedCausalLMOutput``.

    ``model`` is the causal LM itself (under PEFT: ``peft_model.get_base_model()``), already given
    TRL's fused head, whose forward still serves every other call (generation, plain logits, and
    MoE models, whose router auxiliary loss is left to TRL's head).
    """
    from trl.kernels import ChunkedLogProbFunction
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE, FusedCausalLMOutput, maybe_gather_lm_head_ctx

    fused_forward = model.forward
    text_config = model.config.get_text_config()
    softcap = getattr(text_config, "final_logit_softcapping", None)
    scale = _logit_scale(text_config)

    @functools.wraps(type(model).forward)  # generate() validates its kwargs against the signature
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or kwargs.get("output_router_logits") or getattr(text_config, "output_router_logits", False):
            return fused_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                                 num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        # Looked up on each call: PEFT (modules_to_save) and FSDP replace the backbone's and head's modules
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:  # position t predicts label t+1
            hidden, targets = hidden[:, :-1], labels[:, 1:]
        else:  # context/sequence parallelism passes the labels already shifted
            targets = shift_labels
        head = self.get_output_embeddings()
        weight, bias = head.weight, head.bias
        hidden, targets = hidden.to(weight.device), targets.to(weight.device)
        mask = targets != IGNORE_INDEX
        if isinstance(weight, DTensor):  # FSDP2 shards the head
            weight = weight.full_tensor()
            bias = bias.full_tensor() if bias is not None else None
        with maybe_gather_lm_head_ctx(weight, bias):  # DeepSpeed ZeRO-3 partitions it
            per_token = ChunkedLogProbFunction.apply(hidden[mask], weight, bias, targets[mask], 1.0,
                                                     _CHUNKED_LOGPROB_CHUNK_SIZE, softcap, scale, outputs)
        # masked_scatter keeps the result connected to the graph even when no position is supervised,
        # so a fully masked micro-batch backpropagates a zero instead of failing
        log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = (
            None if x is None else x.new_zeros(mask.shape).masked_scatter(mask, x) for x in per_token)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                                   log_sum_sq_probs=log_sum_sq_probs, mean_logits=mean_logits, is_top1=is_top1,
                                   label_mask=mask)

    model.forward = types.MethodType(forward, model)


class SupervisedHeadSFTTrainer(SFTTrainer):
    """``trl.SFTTrainer`` whose fused LM head projects only the supervised positions on every
    device (:func:`add_supervised_lm_head`); loss, normalisation and logged metrics are TRL's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_supervised_lm_head(self.model.get_base_model() if is_peft_model(self.model) else self.model)
