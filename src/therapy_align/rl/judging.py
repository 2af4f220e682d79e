"""Held-out judging inside every RL run: a ``transformers.TrainerCallback``.

Every ``every_steps`` optimizer steps (and at the start and the end) the current policy answers the
same fixed held-out Reddit inputs (:func:`therapy_align.rl.prompts.judge_inputs`: evaluation inputs
the RL prompts never contain), greedily, and the replies are scored by

* the **reward** (:class:`~therapy_align.rl.reward.GuardedReward`: its total and EMP-EVAL term), and
* the **judge**: an independent EMP-EVAL artifact (``artifacts/empeval-judge``) that no reward
  sees, per-pair final with the paper's weights and argmax levels (Table 1's formula, [0, 2]);

with the guard measures (mean length, distinct-2, template rate, specificity, copy rate,
repetition, question rate) and the policy's latest logged KL to the SFT reference. Each judging
is one line of ``runs/<name>/judge.jsonl`` and goes to wandb as ``judge/*``. :func:`divergence`
flags a run whose held-out reward rose while its judge fell (the signature of reward hacking);
the model card shows the flag. Optional early stopping when the judge has not improved for
``early_stopping_patience`` judgings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.files import append_jsonl, atomic_write_jsonl
from therapy_align.overrides import check_range


@dataclass(frozen=True, kw_only=True)
class JudgeConfig:
    every_steps: int = 25  # choice: a judging every 25 optimizer steps
    n_inputs: int = 200  # choice: a fifth of the 1,000 evaluation inputs, spread evenly
    judge_path: str = "artifacts/empeval-judge"  # an EMP-EVAL trained with another seed, in no reward; missing: no judge
    system_prompt: str = "standard"  # §2.2.2: evaluation under the standard prompt
    # Greedy, 256 new tokens, as in evaluation (the tiny preset samples, seeded: the same draw each time).
    generation: GenerationSpec = field(default_factory=lambda: GenerationSpec(batch_size=16))
    early_stopping_patience: int = 0  # 0 = off; N = stop after N judgings without a better judge score

    def __post_init__(self) -> None:
        check_range(self, "every_steps", ge=1)
        check_range(self, "n_inputs", ge=1)
        check_range(self, "early_stopping_patience", ge=0)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def divergence(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``{"reward_change", "judge_change", "flagged"}`` from the first to the last judging, or None
    when there are fewer than two judgings with a judge score."""
    judged = [r for r in rows if r.get("judge_final") is not None]
    if len(judged) < 2:
        return None
    first, last = judged[0], judged[-1]
    reward_change = last["reward_total"] - first["reward_total"]
    judge_change = last["judge_final"] - first["judge_final"]
    return {"from_step": first["step"], "to_step": last["step"], "reward_change": round(reward_change, 4),
            "judge_change": round(judge_change, 4), "flagged": reward_change > 0 and judge_change < 0}


def ensure_judge(path: str, *, allow_quick: bool) -> tuple[str | None, str | None]:
    """``(judge artifact, note)``: ``path`` when it holds a trained EMP-EVAL; for smoke runs
    (``allow_quick``) a quick seed-1 one (flagged); else ``(None, note)``: the run goes on and says
    the judge was not measured."""
    from therapy_align.rl.reward import evaluator_or_quick

    found, note = evaluator_or_quick(path, quick_dir="artifacts/empeval-judge-quick", seed=1, allow_quick=allow_quick)
    if found is None:
        return None, f"no judge artifact at {path}: judge not measured (train it: therapy-align empeval train --seed 1 --out {path})"
    return found, note and f"the judge is a {note}"


class JudgeCallback(TrainerCallback):
    """Judges the policy on held-out inputs; see the module docstring."""

    def __init__(self, config: JudgeConfig, *, reward, tokenizer, out: str | Path, inputs: Sequence[Any] | None = None,
                 judge=None, step_offset: int = 0, allow_quick: bool = False) -> None:
        from therapy_align.data.system_prompts import get_system_prompt
        from therapy_align.rl.prompts import judge_inputs

        self.config, self.reward, self.tokenizer, self.out = config, reward, tokenizer, Path(out)
        self.inputs = list(inputs) if inputs is not None else judge_inputs(config.n_inputs)
        self.system = get_system_prompt(config.system_prompt)
        self._judge = judge
        self.judge_note = None
        if judge is None:
            path, self.judge_note = ensure_judge(config.judge_path, allow_quick=allow_quick)
            if path is not None:
                import empeval

                self._judge = empeval.load(path)
        self.step_offset = step_offset  # iterated DPO: steps of earlier rounds, so steps keep rising
        self.best: float | None = None
        self.since_best = 0

    # ---------------------------------------------------------------- hooks

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not args.should_save:  # main process only (judging generates; other ranks wait in the trainer)
            return control
        now = self.step_offset + state.global_step
        rows = [r for r in read_rows(self.out) if r["step"] <= now]  # resume: drop rows past the checkpoint
        if self.out.exists():
            atomic_write_jsonl(self.out, rows)
        for row in rows:
            self._track(row)
        if not any(r["step"] == now for r in rows):
            self.judge(model, state)
        return control

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if args.should_save and state.global_step % self.config.every_steps == 0:
            row = self.judge(model, state)
            if self._track(row):
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if args.should_save and not any(r["step"] == self.step_offset + state.global_step for r in read_rows(self.out)):
            self.judge(model, state)
        return control

    # ---------------------------------------------------------------- work

    def _track(self, row: dict[str, Any]) -> bool:
        """Early-stopping bookkeeping; True when training should stop."""
        score = row.get("judge_final")
        if score is None or self.config.early_stopping_patience <= 0:
            return False
        if self.best is None or score > self.best:
            self.best, self.since_best = score, 0
            return False
        self.since_best += 1
        return self.since_best >= self.config.early_stopping_patience

    def replies(self, model) -> tuple[list[str], list[int]]:
        from therapy_align.evaluation.generation import generate_batch, prompt_ids

        spec = self.config.generation
        encoded = [prompt_ids(self.tokenizer, self.system, record.text) for record in self.inputs]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        texts, counts = [""] * len(encoded), [0] * len(encoded)
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(order), spec.batch_size):
                chunk = order[start:start + spec.batch_size]
                results = generate_batch(model, self.tokenizer, [encoded[i] for i in chunk], spec, seed=spec.seed + start)
                for i, (text, count) in zip(chunk, results):
                    texts[i], counts[i] = text, count
        finally:
            if was_training:
                model.train()
        return texts, counts

    def judge(self, model, state) -> dict[str, Any]:
        from therapy_align.evaluation.guards import distinct_n

        seekers = [record.text for record in self.inputs]
        texts, counts = self.replies(model)
        scored = self.reward.score(seekers, texts, lengths=counts)
        n = len(scored)

        def mean(values) -> float:
            values = list(values)
            return round(sum(values) / max(len(values), 1), 4)

        row: dict[str, Any] = {
            "step": self.step_offset + state.global_step, "n": n,
            "reward_total": mean(s["total"] for s in scored),
            "reward_empeval": mean(s["terms"]["empeval"] for s in scored),
            "judge_final": None,
            "distinct_2": round(distinct_n(texts, 2), 4),
            **{key: mean(s["measures"][key] for s in scored)
               for key in ("len_tokens", "template_rate", "specificity", "copy_rate", "repetition", "question_rate")},
            "kl": next((h["kl"] for h in reversed(state.log_history) if "kl" in h), None),
            "train_reward": next((h["reward"] for h in reversed(state.log_history) if "reward" in h), None),
            "example": {"seeker": seekers[0][:300], "reply": texts[0][:300]},
        }
        if self._judge is not None:
            from empeval.mechanisms import PAPER_WEIGHTS

            row["judge_final"] = mean(self._judge.score(seekers, texts).final_scores(weights=PAPER_WEIGHTS))
        append_jsonl(self.out, [row])
        import wandb

        if wandb.run is not None:
            wandb.log({**{f"judge/{k}": v for k, v in row.items() if isinstance(v, int | float) and k != "step"},
                       "train/global_step": self.step_offset + state.global_step})
        return row
