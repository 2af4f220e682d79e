"""Risk that builds over a conversation: the level a chat has reached, and what a new message means in it.

A message that is harmless alone ("I've decided. Tonight.", "I'm at the bridge now", "bye") is not
harmless after earlier hopelessness. :class:`RiskState` keeps the highest level the conversation
reached and raises a new message's level when it reads as resolve, timing, a place or means, or a
farewell after that:

* after any risk (low or above), resolve with a time ("tonight", "now", "it's time") or a farewell
  ("this is goodbye", "tell my mum I loved her"; after moderate or above a plain "bye" too) is
  imminent; resolve alone ("I've decided", "I'm ready", "no more") is high;
* after moderate or above, a mention of means or a place of means ("the pills", "the bridge") is high;
* after high or above, anything the detector flags at all stays at least high, and "no" (the answer
  to the safe response's "Are you safe right now?") is imminent.

The state only ever rises within a conversation; ``/reset`` in the chat starts a fresh one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from therapy_align.safety.levels import RANK, at_least, higher

_TIME = re.compile(r"\b(tonight|today|right now|now|in an hour|this evening|this morning|soon|it'?s time|time to go|"
                   r"when (they|everyone)'?re asleep|before (morning|sunrise|tomorrow))\b")
_RESOLVE = re.compile(r"\b(i'?ve decided|decided|made up my mind|i'?m ready|ready now|i'?m done|no more|this is it|"
                      r"that'?s it|it'?s over|i can'?t anymore|enough now|i'?m going to do it|gonna do it|going through "
                      r"with it|i'?ll do it|it'?s decided|not changing my mind)\b")
_FAREWELL = re.compile(r"\b((good)?bye (forever|everyone|for good)|farewell|take care of (my|them)|tell (my \w+|them|her|him|"
                       r"everyone) (that )?i (love|loved)|won'?t be here|won'?t need|last (time|message|chance)|see you never|"
                       r"sorry for everything|this is goodbye)\b")
_GOODBYE = re.compile(r"\b(goodbye|good bye|bye|thank you for everything|thanks for everything|take care)\b")
# An answer of "no" to the safe response's "Are you safe right now?"
_NOT_SAFE = re.compile(r"^\W*(no|nope|nah|not really|no i'?m not|i'?m not|not safe|i don'?t think so|not at all)\W*$")
_MEANS_OR_PLACE = re.compile(r"\b(pills|tablets|meds|bottle|rope|noose|blade|blades|razor|knife|gun|bridge|roof|ledge|"
                             r"edge|tracks|train|cliff|river|car park|parking garage|balcony|window|garage|charcoal|"
                             r"have them|got them|bought it|found it|it'?s ready|everything ready)\b")


@dataclass
class RiskState:
    """The highest risk level a conversation reached, and each message's level (in order)."""

    level: str = "none"
    levels: list[str] = field(default_factory=list)

    def assess(self, normalized: str, message_level: str) -> tuple[str, str]:
        """(the level to act on for this message, the reason when the conversation raised it), and
        the state updated with it. ``normalized`` is the message as ``detector.normalize`` left it."""
        reached, level, reason = self.level, message_level, ""
        if at_least(reached, "low"):
            resolve, timed, farewell = (bool(p.search(normalized)) for p in (_RESOLVE, _TIME, _FAREWELL))
            farewell = farewell or (at_least(reached, "moderate") and bool(_GOODBYE.search(normalized)))
            if farewell or (resolve and timed):
                level, reason = higher(level, "imminent"), "resolve, timing or a farewell"
            elif resolve:
                level, reason = higher(level, "high"), "resolve"
        if at_least(reached, "moderate") and _MEANS_OR_PLACE.search(normalized):
            if RANK[level] < RANK["high"]:
                level, reason = "high", "means or a place of means"
        if at_least(reached, "high") and message_level != "none" and RANK[level] < RANK["high"]:
            level, reason = "high", "any risk after high risk"
        if at_least(reached, "high") and _NOT_SAFE.search(normalized):
            level, reason = "imminent", "says they are not safe"
        if reason and level == message_level:
            reason = ""
        if reason:
            reason = f"raised to {level} by the conversation (reached {reached}): {reason}"
        self.levels.append(level)
        self.level = higher(self.level, level)
        return level, reason

    def reset(self) -> None:
        self.level = "none"
        self.levels.clear()
