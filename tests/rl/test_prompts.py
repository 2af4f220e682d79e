"""The RL prompt sets never contain an evaluation input nor anything from a held-out AnnoMI transcript."""

from __future__ import annotations
import pytest

pytestmark = pytest.mark.integration


def test_prompt_sets_are_disjoint_from_eval_inputs_and_heldout_transcripts(data_dir):
    from therapy_align.data.cleaning import clean_turns
    from therapy_align.rl.prompts import (PromptSet, annomi_split, eval_input_texts, judge_inputs, normalise,
                                          rl_prompt_rows)

    rows = rl_prompt_rows(PromptSet(data_dir=str(data_dir)))
    sources = {row["source"] for row in rows}
    assert sources == {"counselchat", "annomi80"}
    assert len({row["id"] for row in rows}) == len(rows)
    assert sum(r["source"] == "counselchat" for r in rows) > 600 and sum(r["source"] == "annomi80" for r in rows) > 1000

    banned = eval_input_texts(str(data_dir))
    assert len(banned) == 1000
    texts = {normalise(m["content"]) for row in rows for m in row["prompt"]}
    assert not texts & banned
    assert not {normalise(j.text) for j in judge_inputs(200, data_dir=str(data_dir))} - banned  # judging = eval inputs

    high, train_ids, heldout_ids = annomi_split(0, str(data_dir))
    assert heldout_ids and not set(train_ids) & set(heldout_ids)
    used = {row["transcript_id"].removeprefix("annomi-") for row in rows if row["source"] == "annomi80"}
    assert used <= set(train_ids) and not used & set(heldout_ids)
    heldout_utterances = {normalise(turn.text) for tid in heldout_ids for turn in clean_turns(list(high[tid].turns))[0]
                          if len(turn.text.split()) >= 8}
    assert heldout_utterances and not texts & heldout_utterances
    # every prompt ends with the client's turn the reward reads, after the system prompt
    for row in rows[:50]:
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1] == {"role": "user", "content": row["seeker"]}
