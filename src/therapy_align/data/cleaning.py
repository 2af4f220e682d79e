"""Cleaning spoken transcripts into chat turns (paper §2.2.1).

Transcripts are written as heard. A chatbot answers a whole client message, so the paper:

* removes text in brackets or parentheses (``[laughs]``, ``[unintelligible 00:01:33]``,
  ``(pause)``): sounds and transcriber notes, not the therapist's words;
* drops the therapist's backchannels (``Mm-hmm.``, ``Okay.``, ``Right.``), which are not
  answers and would teach the bot that a one-word reply is good — "connect the sentence before
  to the sentence after": the client speech around a dropped backchannel becomes one turn;
* merges consecutive utterances of the same speaker, and drops utterances left empty.

Interrupted speech is marked with dashes (``put--``, ``average-`` ... ``-and you``); edge dashes
are removed so that merged halves read as one sentence.

Every function here is pure, and :func:`clean_turns` is idempotent: cleaning cleaned turns
changes nothing (a property test checks it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from therapy_align.data.transcripts import CLIENT, THERAPIST, Turn

# Words that, alone, make a backchannel rather than an answer (lower-case, no punctuation).
DEFAULT_BACKCHANNEL_WORDS = frozenset(
    """mm mmm hmm hm mm-hmm mhm mm-mm uh-huh uh huh um uhm ah oh okay ok alright right yeah yes
    yep yup sure no nope wow gotcha i see got it sure sure good great cool""".split()
)

_ASIDE = re.compile(r"\[[^\[\]]*\]|\([^()]*\)")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_EDGE_DASHES = re.compile(r"^[\s\-–—]+|[\s\-–—]+$")
_WORD = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


@dataclass(frozen=True, kw_only=True)
class CleaningConfig:
    # "one worded answers such as 'ok' or 'hmmmm'" (§2.2.1); 2 also catches "Mm-hmm, yeah."
    backchannel_max_words: int = 2
    backchannel_words: frozenset[str] = DEFAULT_BACKCHANNEL_WORDS
    remove_asides: bool = True


def remove_asides(text: str) -> str:
    """Text without bracketed or parenthesised asides (nested ones included)."""
    previous = None
    while previous != text:
        previous, text = text, _ASIDE.sub(" ", text)
    return normalise_spacing(text)


def normalise_spacing(text: str) -> str:
    """Single spaces, no space before punctuation, no dangling interruption dashes at the edges."""
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _EDGE_DASHES.sub("", text)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_backchannel(text: str, config: CleaningConfig = CleaningConfig()) -> bool:
    """A therapist utterance that is no answer: at most ``backchannel_max_words`` words, or only
    backchannel words (``"Mm-hmm, yeah, okay."``)."""
    tokens = words(text)
    return len(tokens) <= config.backchannel_max_words or all(token in config.backchannel_words for token in tokens)


def clean_turns(turns: list[Turn], config: CleaningConfig = CleaningConfig()) -> tuple[list[Turn], Counter]:
    """Cleaned turns, strictly alternating speakers, and a count of what was removed and why."""
    removed: Counter = Counter()
    kept: list[Turn] = []
    for turn in turns:
        text = remove_asides(turn.text) if config.remove_asides else normalise_spacing(turn.text)
        if text != normalise_spacing(turn.text):
            removed["asides_removed"] += 1
        if not words(text):
            removed["empty_after_cleaning"] += 1
            continue
        if turn.speaker == THERAPIST and is_backchannel(text, config):
            removed["therapist_backchannel"] += 1
            continue
        kept.append(Turn(turn.speaker, text))
    merged: list[Turn] = []
    for turn in kept:
        if merged and merged[-1].speaker == turn.speaker:
            merged[-1] = Turn(turn.speaker, normalise_spacing(f"{merged[-1].text} {turn.text}"))
            removed["merged_same_speaker"] += 1
        else:
            merged.append(turn)
    return merged, removed


@dataclass(frozen=True)
class Exchange:
    """One client message and the therapist's reply: the unit that chunking never splits."""

    client: str
    therapist: str


# Policy for transcripts that open with the therapist (94 of the 110 high-quality AnnoMI ones),
# since the Llama-2 format starts with a user turn:
# * "neutral_opener": a short client greeting precedes the therapist's opening, which is then
#   supervised like any reply (it is often the agenda-setting open question MI teaches);
# * "context": the therapist's opening is shown inside the first [INST] as context, unsupervised.
OPENER_POLICIES = ("neutral_opener", "context")
NEUTRAL_OPENER = "Hi."


def to_exchanges(
    turns: list[Turn], *, opener_policy: str = "neutral_opener", opener_text: str = NEUTRAL_OPENER
) -> tuple[list[Exchange], Counter]:
    """(client, therapist) pairs from alternating cleaned turns.

    A trailing client turn has no reply to learn from and is dropped (counted).
    """
    if opener_policy not in OPENER_POLICIES:
        raise ValueError(f"unknown opener policy {opener_policy!r}; choose from {OPENER_POLICIES}")
    counts: Counter = Counter()
    turns = list(turns)
    if turns and turns[0].speaker == THERAPIST:
        counts["therapist_first"] += 1
        if opener_policy == "neutral_opener":
            turns.insert(0, Turn(CLIENT, opener_text))
        else:
            opening = turns.pop(0).text
            if turns:
                turns[0] = Turn(CLIENT, f"(The counsellor opened the session: \"{opening}\") {turns[0].text}")
    exchanges = []
    for index in range(0, len(turns) - 1, 2):
        client, therapist = turns[index], turns[index + 1]
        if client.speaker != CLIENT or therapist.speaker != THERAPIST:
            raise ValueError(f"turns must alternate client/therapist; got {client.speaker} then {therapist.speaker}")
        exchanges.append(Exchange(client.text, therapist.text))
    if len(turns) % 2 == 1:
        counts["trailing_client_turn"] += 1
    return exchanges, counts
