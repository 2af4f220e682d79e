"""The policy of an RL run and its run directory: the SFT adapter loaded as a *trainable* PEFT
model (TRL keeps a frozen copy of it, the ``ref`` adapter, as the KL reference), saved back with
only the trained adapter, in the run layout :mod:`therapy_align.training.models` loads (so
``therapy-align generate`` and the Table-1 harness load RL runs like SFT runs).

Run directory (``runs/<name>/``): ``config.json`` (the run's config + ``base_model``,
``sft_run``), ``adapter/`` (``default`` only), ``tokenizer/``, ``checkpoint-*/``, ``judge.jsonl``,
``metrics.json``, ``README.md`` (model card, with the reward-vs-judge flag), ``wandb/``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from therapy_align.errors import UserError
from therapy_align.training.models import is_run_dir, load_causal_lm, load_tokenizer_for, read_run_config, run_base_model


@dataclass(frozen=True, kw_only=True)
class PolicyModel:
    """The ``model`` section of both RL stages: which SFT run to continue from, and how to load it."""

    sft_run: str = "runs/sft-annomi80"  # §6: RL continues from the fine-tuned model (the 80% one, §2.2.1)
    quantization: Literal["4bit", "8bit", "none"] = "4bit"  # as the SFT recipe (§4 bitsandbytes, NF4)
    # also the trainer's mixed precision; "auto": bfloat16 where CUDA is visible, float32 on the CPU
    dtype: Literal["bfloat16", "float16", "float32", "auto"] = "bfloat16"
    gradient_checkpointing: bool = True

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        import torch

        return "bfloat16" if torch.cuda.is_available() else "float32"


def check_sft_run(sft_run: str, *, make: str) -> None:
    """Fail before loading anything when the SFT run to start from is missing."""
    if not is_run_dir(sft_run):
        raise UserError("no SFT run here (config.json + adapter/ expected)", file=sft_run, field="model.sft_run",
                        fix=f"train it first: {make}")


def load_policy(config: PolicyModel):
    """``(PeftModel with the SFT adapter trainable, tokenizer, base model path)``."""
    from peft import PeftModel

    from therapy_align.evaluation.generation import end_replies_at_turn_end

    quantization = None if config.quantization == "none" else config.quantization
    base = run_base_model(read_run_config(config.sft_run))
    model = load_causal_lm(base, quantization=quantization, dtype=config.resolved_dtype())
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    model = PeftModel.from_pretrained(model, str(Path(config.sft_run) / "adapter"), is_trainable=True)
    tokenizer = load_tokenizer_for(str(Path(config.sft_run) / "tokenizer"))
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
    end_replies_at_turn_end(model, tokenizer)  # the DPO sampling and the judging stop there
    return model, tokenizer, base


def write_config(run_dir: Path, config: Any, *, base_model: str) -> None:
    """``run_dir/config.json``: the run's config (an RL stage config) and what the run loads."""
    from therapy_align.files import atomic_write_json, jsonable
    from therapy_align.training.models import RUN_SCHEMA

    m = config.model
    atomic_write_json(run_dir / "config.json", {
        "schema": RUN_SCHEMA, "base_model": base_model, "base_model_ref": base_model, "sft_run": m.sft_run,
        "quantization": None if m.quantization == "none" else m.quantization, **jsonable(config)})


def save_policy(model, tokenizer, run_dir: Path) -> None:
    """The trained ``default`` adapter only (not TRL's ``ref`` copy) and the tokenizer."""
    model.save_pretrained(str(run_dir / "adapter"), selected_adapters=["default"])
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))


def reward_words(name: str) -> str:
    return {"guarded": "the guarded EMP-EVAL reward",
            "empeval-only": "the unguarded paper reward (EMP-EVAL alone, no guards)"}.get(name, f"the reward {name!r}")


def write_model_card(run_dir: Path, *, method: str, config: dict, metrics: dict, judge_rows: list[dict],
                     divergence: dict | None, judge_note: str | None, tiny: bool, small: bool = False) -> None:
    """``runs/<name>/README.md``: what was trained from what, the reward, the held-out judge curve
    and, in bold, a reward-up/judge-down flag."""
    lines = [f"# {config.get('name', run_dir.name)}", "",
             f"{method} LoRA adapter for `{config['base_model']}`, continued from the SFT run `{config['sft_run']}` "
             f"with {reward_words(config.get('reward', {}).get('name', 'guarded'))} (`therapy_align.rl.reward`, weights below); "
             "paper §6's proposed follow-up.", ""]
    if tiny:
        lines += ["**Tiny preset: a random-init 4M-parameter model. These numbers show that the machinery runs, "
                  "not that the model became more empathetic.**", ""]
    if small:
        lines += ["**Small preset: Gemma 3 270M with a few CPU-sized steps. These numbers show that the machinery "
                  "runs on a real model, not that the model became more empathetic.**", ""]
    if divergence is not None and divergence["flagged"]:
        lines += [f"**FLAG: the held-out reward rose ({divergence['reward_change']:+.4f}) while the independent "
                  f"judge fell ({divergence['judge_change']:+.4f}) from step {divergence['from_step']} to "
                  f"{divergence['to_step']}: likely reward hacking; inspect judge.jsonl before using this model.**", ""]
    elif divergence is not None:
        lines += [f"Reward vs judge (step {divergence['from_step']} -> {divergence['to_step']}): reward "
                  f"{divergence['reward_change']:+.4f}, judge {divergence['judge_change']:+.4f}: not flagged.", ""]
    if judge_note:
        lines += [f"**{judge_note}.**", ""]
    if str(config.get("reward", {}).get("empeval_path", "")).endswith("empeval-quick"):
        from therapy_align.rl.reward import QUICK_NOTE

        lines += [f"**The reward's EMP-EVAL is a {QUICK_NOTE}.**", ""]
    lines += ["## Load", "", "```python", "from therapy_align.training.models import load_model_for_inference",
              f'model, tokenizer = load_model_for_inference("{run_dir}")', "```", "",
              "## Reward weights", "", "```json", json.dumps(config.get("reward", {}).get("weights", {}), indent=1), "```", "",
              "## Held-out judging (judge.jsonl)", "",
              "| step | reward total | reward EMP-EVAL | judge final | len tokens | distinct-2 | template | specificity | KL |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in judge_rows:
        lines.append("| " + " | ".join(str(row.get(k)) for k in ("step", "reward_total", "reward_empeval", "judge_final",
                                                                  "len_tokens", "distinct_2", "template_rate",
                                                                  "specificity", "kl")) + " |")
    lines += ["", "## Run", "", f"- metrics: `{json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)})}`",
              f"- command: `accelerate launch {' '.join(sys.argv)}`", "",
              "Research artefact: not a medical device and not a substitute for a therapist.", ""]
    (run_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")


def finish_run(trainer, *, run_dir: Path, tokenizer, judge, method: str, tiny: bool, resumed_from: str | None,
               small: bool = False) -> Path:
    """After ``trainer.train``: adapter + tokenizer, ``metrics.json`` (the trainer's per-step log:
    rewards per term, KL, lengths), the model card with the reward-vs-judge check; wandb closed."""
    from therapy_align.files import atomic_write_json
    from therapy_align.rl.judging import divergence, read_rows

    if trainer.accelerator.is_main_process:
        save_policy(trainer.model, tokenizer, run_dir)
        rows = read_rows(run_dir / "judge.jsonl")
        check = divergence(rows)
        metrics = {"method": method, "global_step": trainer.state.global_step, "resumed_from": resumed_from,
                   "adapters": sorted(getattr(trainer.model, "peft_config", {})), "divergence": check,
                   "log_history": trainer.state.log_history}
        atomic_write_json(run_dir / "metrics.json", metrics)
        config = json.loads((run_dir / "config.json").read_text())
        write_model_card(run_dir, method=method, config=config, metrics=metrics, judge_rows=rows, divergence=check,
                         judge_note=getattr(judge, "judge_note", None), tiny=tiny, small=small)
    trainer.accelerator.wait_for_everyone()
    from therapy_align.training.sft_run import finish_wandb

    finish_wandb()
    return run_dir
