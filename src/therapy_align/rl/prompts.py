"""The RL prompt sets: CounselChat questions (train split) and ``annomi80`` client turns with the
conversation before them, as TRL conversational prompts; and the held-out Reddit judging inputs.

Never in an RL prompt set (tests/rl/test_prompts.py checks both):

* one of the 1,000 evaluation inputs (``eval_inputs/reddit_mental_health_1000.jsonl``): prompts
  whose seeker text equals an evaluation input (after whitespace/case folding) are dropped;
* anything from a held-out AnnoMI transcript: only the seeded 80% of high-quality transcripts that
  train the ``annomi80`` SFT model are used (the same split function and seed).

Each row: ``id``, ``prompt`` (system + earlier exchanges + the client's turn, as chat messages),
``seeker`` (the text the reply answers, given to the reward), ``source`` and ``transcript_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EVAL_INPUTS = "eval_inputs/reddit_mental_health_1000.jsonl"


@dataclass(frozen=True, kw_only=True)
class PromptSet:
    counselchat: int | None = None  # None: every train-split question; a number: an even sample
    annomi: int | None = None  # None: every eligible annomi80 client turn; a number: an even sample
    context_exchanges: int = 2  # choice: earlier (client, therapist) exchanges shown before the turn
    min_client_words: int = 8  # choice: short turns ("Yeah.") give the reward nothing to read
    max_seeker_words: int = 300  # choice: keeps prompts inside the tiny model's context
    system_prompt: str = "standard"  # §4: the standard Llama-2 system prompt, as in SFT
    seed: int = 0  # the annomi80 split seed (must match the SFT data's)
    data_dir: str | None = None


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def eval_input_texts(data_dir: str | None = None) -> set[str]:
    """Normalised texts of the 1,000 evaluation inputs."""
    from therapy_align.evaluation.generation import read_inputs
    from therapy_align.paths import data_file

    return {normalise(r.text) for r in read_inputs(data_file(EVAL_INPUTS, data_dir)).records}


def annomi_split(seed: int = 0, data_dir: str | None = None) -> tuple[dict[str, Any], list[str], list[str]]:
    """``(high-quality transcripts by id, annomi80 train ids, held-out ids)``: the SFT data's split."""
    from therapy_align.data.dataset_build import HIGH_QUALITY
    from therapy_align.data.splits import split_transcript_ids
    from therapy_align.data.transcripts import load_annomi

    annomi, _ = load_annomi(data_dir)
    high = {t.transcript_id: t for t in annomi if t.quality == HIGH_QUALITY}
    train, heldout = split_transcript_ids(high, seed=seed)
    return high, train, heldout


def _even_sample(rows: list[dict], n: int | None) -> list[dict]:
    if n is None or n >= len(rows):
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def counselchat_rows(config: PromptSet, system: str) -> list[dict[str, Any]]:
    from therapy_align.data.transcripts import load_counselchat

    transcripts, _ = load_counselchat(config.data_dir, split="train")
    rows, seen = [], set()
    for t in transcripts:
        question, qid = t.turns[0].text, t.transcript_id.split("-")[1]
        if {qid, normalise(question)} & seen or len(question.split()) > config.max_seeker_words:
            continue  # one prompt per question (the CSV has one row per answer)
        seen |= {qid, normalise(question)}
        rows.append({"id": f"cc-{qid}", "prompt": [{"role": "system", "content": system},
                                                    {"role": "user", "content": question}],
                     "seeker": question, "source": "counselchat", "transcript_id": t.transcript_id})
    return rows


def annomi_rows(config: PromptSet, system: str) -> list[dict[str, Any]]:
    from therapy_align.data.cleaning import clean_turns, to_exchanges

    high, train_ids, _ = annomi_split(config.seed, config.data_dir)
    rows = []
    for tid in train_ids:
        turns, _ = clean_turns(list(high[tid].turns))
        exchanges, _ = to_exchanges(turns)
        for k, exchange in enumerate(exchanges):
            words = len(exchange.client.split())
            if words < config.min_client_words or words > config.max_seeker_words:
                continue
            messages = [{"role": "system", "content": system}]
            for earlier in exchanges[max(0, k - config.context_exchanges):k]:
                messages += [{"role": "user", "content": earlier.client}, {"role": "assistant", "content": earlier.therapist}]
            messages.append({"role": "user", "content": exchange.client})
            rows.append({"id": f"annomi-{tid}-{k}", "prompt": messages, "seeker": exchange.client,
                         "source": "annomi80", "transcript_id": f"annomi-{tid}"})
    return rows


def rl_prompt_rows(config: PromptSet = PromptSet()) -> list[dict[str, Any]]:
    """CounselChat then AnnoMI rows (each sampled evenly to its limit), minus evaluation inputs."""
    from therapy_align.data.system_prompts import get_system_prompt

    system = get_system_prompt(config.system_prompt)
    banned = eval_input_texts(config.data_dir)
    rows = []
    for make, limit in ((counselchat_rows, config.counselchat), (annomi_rows, config.annomi)):
        if limit == 0:
            continue
        rows += _even_sample([r for r in make(config, system) if normalise(r["seeker"]) not in banned], limit)
    return rows


def rl_prompt_dataset(config: PromptSet = PromptSet(), *, shuffle_seed: int | None = 0):
    """:func:`rl_prompt_rows` as a ``datasets.Dataset`` (shuffled, so sources interleave)."""
    from datasets import Dataset

    data = Dataset.from_list(rl_prompt_rows(config))
    return data.shuffle(seed=shuffle_seed) if shuffle_seed is not None else data


def judge_inputs(n: int, *, data_dir: str | None = None, offset: int = 0) -> list[Any]:
    """The fixed held-out judging inputs: ``n`` evaluation inputs spread evenly over the 1,000
    (the same every run). RL never trains on them (see above)."""
    from therapy_align.evaluation.generation import read_inputs
    from therapy_align.paths import data_file

    records = read_inputs(data_file(EVAL_INPUTS, data_dir)).records
    if n >= len(records):
        return records
    step = len(records) / n
    return [records[(int(i * step) + offset) % len(records)] for i in range(n)]
