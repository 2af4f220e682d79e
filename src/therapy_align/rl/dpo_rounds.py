"""Iterated best-vs-worst DPO, one round at a time: sample N replies per prompt from the current
policy, score them with the guarded reward, keep one (chosen, rejected) pair per prompt when the
margin and the length rule allow, train DPO on the pairs. :mod:`therapy_align.rl.dpo` drives it.

Round directory ``runs/<name>/round-<k>/``:

* ``samples.jsonl``: one line per sampled reply (``<prompt id>#<j>``), through
  :class:`~therapy_align.store.ResultStore` stamped with the policy's weights and the sampling
  settings, so a killed round resumes and a changed policy refuses stale samples;
* ``scored.jsonl``: every reward term, the guard measures and the total of each sample (store
  stamped with the reward's identity);
* ``pairs.jsonl`` + ``pairs_stats.json``: the kept pairs, each with both replies' terms (audit);
* ``checkpoint-*`` (DPOTrainer) and ``adapter/`` (written last: the round is done).

Pair rule (:func:`select_pair`): among the prompt's replies whose token lengths are within
``max_length_ratio`` of each other, the pair with the largest reward margin, kept when the margin
is at least ``min_margin``. Comparing only length-matched replies keeps DPO from learning "write
longer": EMP-EVAL's score rises with a reply's length (docs/rl.md).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.evaluation.generation import GenerationSpec
from therapy_align.files import atomic_write_json, atomic_write_jsonl
from therapy_align.overrides import check_finite_numbers, check_range
from therapy_align.store import ResultStore


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """How each round samples from the current policy."""

    n_per_prompt: int = 4  # choice: N replies per prompt
    prompts_per_round: int = 256  # choice: fresh prompts each round (rounds take disjoint slices)
    generation: GenerationSpec = field(default_factory=lambda: GenerationSpec(
        do_sample=True, temperature=1.0, top_p=0.95, max_new_tokens=256, batch_size=8))  # 256 = evaluation's budget

    def __post_init__(self) -> None:
        check_finite_numbers(self)
        check_range(self, "n_per_prompt", ge=2, fix="a preference pair needs at least 2 replies per prompt")
        check_range(self, "prompts_per_round", ge=1)


@dataclass(frozen=True, kw_only=True)
class PairRule:
    min_margin: float = 0.5  # choice: reward-total units (EMP-EVAL's whole range weighs 1.0)
    max_length_ratio: float = 1.5  # choice: longer / shorter reply, in tokens

    def __post_init__(self) -> None:  # NaN would compare false everywhere and keep no pair, silently
        check_range(self, "min_margin", ge=0)
        check_range(self, "max_length_ratio", ge=1)


def select_pair(samples: Sequence[dict[str, Any]], rule: PairRule) -> tuple[tuple[dict, dict] | None, str]:
    """``((chosen, rejected), "kept")`` or ``(None, reason)`` with reason ``"too_few"``,
    ``"length_ratio"`` (no two replies of compatible length) or ``"margin"``. Each sample has
    ``total`` and ``new_tokens``."""
    if len(samples) < 2:
        return None, "too_few"
    best: tuple[float, dict, dict] | None = None
    for i, a in enumerate(samples):
        for b in samples[i + 1:]:
            short, long = sorted((a["new_tokens"], b["new_tokens"]))
            if short == 0 or long / short > rule.max_length_ratio:
                continue
            hi, lo = (a, b) if a["total"] >= b["total"] else (b, a)
            margin = hi["total"] - lo["total"]
            if best is None or margin > best[0]:
                best = (margin, hi, lo)
    if best is None:
        return None, "length_ratio"
    if best[0] < rule.min_margin:
        return None, "margin"
    return (best[1], best[2]), "kept"


def adapter_digest(adapter_dir: str | Path) -> str:
    """What a policy is, for the samples store: a hash of its adapter weights."""
    digest = hashlib.sha256()
    for path in sorted(Path(adapter_dir).glob("adapter_model.*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prompt_token_ids(tokenizer, messages: list[dict]) -> list[int]:
    # The generation prompt opens the model's turn where the template has one (Gemma's
    # ``<start_of_turn>model``); Llama-2's template ends at ``[/INST]`` either way.
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def sample_round(model, tokenizer, rows: Sequence[dict], *, n: int, spec, out: Path, policy: str,
                 on_batch=None) -> list[dict[str, Any]]:
    """``n`` sampled replies per prompt row, resumable (one store line per reply)."""
    from therapy_align.evaluation.generation import batch_seed, generate_batch

    items = {f"{row['id']}#{j}": {"prompt": row["prompt"], "j": j} for row in rows for j in range(n)}
    by_id = {row["id"]: row for row in rows}
    store = ResultStore(out, made_from={"policy": policy, "settings": {**spec.identity(), "n": n}})
    todo = store.start(items)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(todo), spec.batch_size):
            ids = todo[start:start + spec.batch_size]
            prompts = [prompt_token_ids(tokenizer, by_id[i.rsplit("#", 1)[0]]["prompt"]) for i in ids]
            results = generate_batch(model, tokenizer, prompts, spec, seed=batch_seed(spec.seed, ids))
            store.append({"id": i, "prompt_id": i.rsplit("#", 1)[0], "response": text, "new_tokens": count}
                         for i, (text, count) in zip(ids, results))
            if on_batch is not None:
                on_batch(len(ids))
    finally:
        if was_training:
            model.train()
    store.finish()
    return store.records()


def score_round(reward, samples: Sequence[dict], rows: Sequence[dict], *, out: Path,
                prompts_per_chunk: int = 64) -> list[dict[str, Any]]:
    """Every sample's reward terms, measures and total; all replies to a prompt in one chunk."""
    seeker = {row["id"]: row["seeker"] for row in rows}
    store = ResultStore(out, made_from={"reward": reward.identity()})
    todo = set(store.start({s["id"]: {"seeker": seeker[s["prompt_id"]], "response": s["response"]} for s in samples}))
    pending = [s for s in samples if s["id"] in todo]
    prompt_ids = list(dict.fromkeys(s["prompt_id"] for s in pending))
    for start in range(0, len(prompt_ids), prompts_per_chunk):
        chunk_ids = set(prompt_ids[start:start + prompts_per_chunk])
        chunk = [s for s in pending if s["prompt_id"] in chunk_ids]
        scored = reward.score([seeker[s["prompt_id"]] for s in chunk], [s["response"] for s in chunk],
                              lengths=[s["new_tokens"] for s in chunk])
        store.append({**s, **r} for s, r in zip(chunk, scored))
    store.finish()
    return store.records()


def build_pairs(scored: Sequence[dict], rows: Sequence[dict], rule: PairRule, *, out_dir: Path) -> list[dict[str, Any]]:
    """``pairs.jsonl`` (DPO's conversational prompt/chosen/rejected + every term of both replies)
    and ``pairs_stats.json``; returns the pairs."""
    by_prompt: dict[str, list[dict]] = {}
    for sample in scored:
        by_prompt.setdefault(sample["prompt_id"], []).append(sample)
    pairs, reasons = [], Counter()
    for row in rows:
        pair, reason = select_pair(by_prompt.get(row["id"], []), rule)
        reasons[reason] += 1
        if pair is None:
            continue
        chosen, rejected = pair
        pairs.append({
            "id": row["id"], "prompt": row["prompt"], "seeker": row["seeker"],
            "chosen": [{"role": "assistant", "content": chosen["response"]}],
            "rejected": [{"role": "assistant", "content": rejected["response"]}],
            "margin": round(chosen["total"] - rejected["total"], 6),
            "chosen_total": chosen["total"], "rejected_total": rejected["total"],
            "chosen_terms": chosen["terms"], "rejected_terms": rejected["terms"],
            "chosen_tokens": chosen["new_tokens"], "rejected_tokens": rejected["new_tokens"],
        })
    atomic_write_jsonl(out_dir / "pairs.jsonl", pairs)
    mean = (lambda key: round(sum(p[key] for p in pairs) / len(pairs), 4)) if pairs else (lambda key: None)
    atomic_write_json(out_dir / "pairs_stats.json", {
        "prompts": len(rows), "kept": reasons["kept"], "skipped": {k: v for k, v in reasons.items() if k != "kept"},
        "rule": {"min_margin": rule.min_margin, "max_length_ratio": rule.max_length_ratio},
        "mean_margin": mean("margin"), "mean_chosen_tokens": mean("chosen_tokens"),
        "mean_rejected_tokens": mean("rejected_tokens")})
    return pairs


def load_adapter_weights(model, adapter_dir: str | Path, adapter_name: str) -> None:
    """Copy saved adapter weights into ``adapter_name`` of a PEFT model (policy or TRL's ``ref``)."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    result = set_peft_model_state_dict(model, load_peft_weights(str(adapter_dir), device="cpu"), adapter_name=adapter_name)
    missing = [k for k in getattr(result, "unexpected_keys", [])]
    if missing:
        raise RuntimeError(f"{adapter_dir}: {len(missing)} weights did not fit adapter {adapter_name!r}, e.g. {missing[0]}")
