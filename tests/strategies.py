"""Hypothesis strategies shared by the property tests: transcripts as people speak them."""

from __future__ import annotations

from hypothesis import strategies as st

from therapy_align.data.transcripts import CLIENT, THERAPIST, Transcript, Turn

WORDS = st.sampled_from(
    "I you feel sad tired work sleep family why what how maybe never always really think it's "
    "don't can't well so and but the a my your about tell me more that sounds hard okay mm-hmm "
    "yeah right drink smoke week day night help want need try".split()
)
PUNCT = st.sampled_from(["", ".", ",", "?", "!", "--", "-"])
ASIDES = st.sampled_from(["[laughs]", "[unintelligible 00:01:33]", "(pause)", "[inaudible]", "(sighs)"])
BACKCHANNELS = st.sampled_from(["Mm-hmm.", "Yeah.", "Okay.", "Right.", "Mm.", "Uh-huh.", "Okay, yeah."])


@st.composite
def utterance_text(draw, max_words: int = 25) -> str:
    parts = []
    for _ in range(draw(st.integers(1, max_words))):
        parts.append(draw(WORDS) + draw(PUNCT))
        if draw(st.integers(0, 9)) == 0:
            parts.append(draw(ASIDES))
    return " ".join(parts)


@st.composite
def raw_turns(draw, min_size: int = 1, max_size: int = 14) -> list[Turn]:
    turns = []
    for _ in range(draw(st.integers(min_size, max_size))):
        speaker = draw(st.sampled_from([THERAPIST, CLIENT]))
        if speaker == THERAPIST and draw(st.integers(0, 3)) == 0:
            text = draw(BACKCHANNELS)
        elif draw(st.integers(0, 15)) == 0:
            text = draw(ASIDES)
        else:
            text = draw(utterance_text())
        turns.append(Turn(speaker, text))
    return turns


@st.composite
def transcripts(draw, max_turns: int = 14) -> Transcript:
    return Transcript("t", "other", "high", tuple(draw(raw_turns(2, max_turns))), source="test")


@st.composite
def conversations(draw, max_exchanges: int = 4) -> list[dict[str, str]]:
    """Chat messages: an optional system prompt, then user/assistant pairs of clean text."""
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(utterance_text(12)).replace("[", "").replace("(", "")})
    for _ in range(draw(st.integers(1, max_exchanges))):
        messages.append({"role": "user", "content": _clean(draw(utterance_text()))})
        messages.append({"role": "assistant", "content": _clean(draw(utterance_text()))})
    return messages


def _clean(text: str) -> str:
    from therapy_align.data.cleaning import remove_asides

    return remove_asides(text) or "well"


@st.composite
def level_predictions(draw, max_size: int = 120) -> tuple[list[int], list[int]]:
    """(predicted, target) levels 0/1/2 of the same pairs, level 1 rare as in EPITOME's IP labels
    (so batches without it are common), predictions agreeing with the target most of the time."""
    size = draw(st.integers(1, max_size))
    rare = st.sampled_from([0] * 9 + [2] * 8 + [1])
    target = draw(st.lists(rare, min_size=size, max_size=size))
    predicted = [t if draw(st.integers(0, 3)) else draw(rare) for t in target]
    return predicted, target
