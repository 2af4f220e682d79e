"""Graded risk: how urgent a flagged message is, from none to imminent, and what each level gets.

The levels follow the questions of the Columbia Suicide Severity Rating Scale (C-SSRS) screener,
read for a chat message rather than an interview:

* ``low``: a passive wish or hopelessness ("I wish I were dead", "what's the point of anything");
  the model answers, and the session's risk state remembers it.
* ``moderate``: active thoughts without intent or plan ("I keep thinking about suicide"),
  self-injury, thoughts of hurting someone, a report that someone else is at risk, control or abuse
  at home; the model answers, crisis resources are appended, and the reply is screened against it.
* ``high``: intent ("I'm going to end my life"), a plan, a method or the means (asked for under any
  framing, gathered, at hand), preparation (notes written, belongings given away, a date chosen,
  goodbyes), a threat of violence; the safe response at once, the model never sees the message.
* ``imminent``: an act under way or about to happen (pills already taken, standing at the edge,
  "tonight"); the safe response at once, with the emergency number first.

The rules here are data, like ``patterns``: each is a regular expression over the normalised text
(``detector.normalize``) with the level it proves. A message's level is the highest that any
undiscounted rule proves; the learned detector grades what no rule covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from therapy_align.safety.patterns import _compiled

LEVELS = ("none", "low", "moderate", "high", "imminent")
RANK = {level: index for index, level in enumerate(LEVELS)}

# What a flag of each crisis category means when no grading rule says more.
CATEGORY_LEVEL = {"suicidal_ideation": "moderate", "plan_or_means": "high", "self_harm": "moderate",
                  "harm_to_others": "moderate", "abuse_or_danger": "high"}

# The levels that never reach the model (the safe response is given at once).
WITHHELD_LEVELS = ("high", "imminent")


def at_least(level: str, floor: str) -> bool:
    return RANK[level] >= RANK[floor]


def higher(a: str, b: str) -> str:
    return a if RANK[a] >= RANK[b] else b


_ME = r"(?:myself|my (?:own )?life|it all)"
_NOW = r"(?:tonight|right now|now|today|this (?:evening|morning|afternoon)|in an hour|in a few (?:minutes|hours))"
_MEANS = (r"(?:pills|tablets|meds|medication|painkillers|sleeping pills|paracetamol|tylenol|rope|noose|razor blades?|"
          r"blades|gun|pistol|rifle|bullets|charcoal)")
_METHOD_ASK = (r"(?:how (?:many|much)\b[^.?!]{0,60}\b(?:to|would|will|could)\b[^.?!]{0,30}\b(?:die|kill|be fatal|be lethal|"
               r"not wake up|never wake up|end it|overdose|od)\b|(?:lethal|fatal|deadly|toxic) (?:dose|amount|dosage|quantity|"
               r"combination|mix)|(?:most )?(?:painless|quickest|fastest|easiest|surest|quietest|best|reliable) (?:way|method|means)"
               r" (?:to|of) (?:die|dying|kill|end|suicide|go)\b|how (?:long|fast) (?:does it|would it|will it) take to "
               r"(?:bleed out|die|suffocate|drown|lose consciousness)|how (?:long|fast) (?:to|until you) (?:bleed out|die)|"
               r"how to (?:hang|overdose|od|kill) (?:myself|yourself|oneself|someone|a person|himself|herself|themselves|your ?self)|"
               r"how (?:high|tall|far) (?:does|do|would|should) (?:a|the) (?:bridge|building|fall|drop|jump) (?:need|have) to be|"
               r"which (?:pills|medications?|drugs|chemicals|household chemicals)\b[^.?!]{0,40}\b(?:kill|fatal|lethal|die|"
               r"overdose|toxic)|(?:what|which) (?:chemicals|household chemicals|cleaning products) (?:make|produce|create)"
               r" (?:a )?(?:toxic|poison|lethal|deadly)|how (?:to|do i|do you|can i|would you|would i) (?:make|mix|get|tie)"
               r" (?:a )?(?:poison|noose|toxic gas|chlorine gas|deadly gas)|(?:does|would|will|did) (?:it hurt to (?:jump|fall|"
               r"drown|hang|bleed out|overdose|die)|(?:jumping|drowning|hanging|the fall|an overdose|bleeding out|cutting deep)"
               r" (?:hurt|be painful|be quick|take long)))")
# A means question about an animal or a plant is literal: it stays unflagged.
_ANIMAL = re.compile(r"\b(dog|dogs|cat|cats|pet|pets|puppy|kitten|horse|rabbit|hamster|parrot|bird|fish|plant|plants|"
                     r"weeds|rats?|mice|mouse|pests?|slugs|vet)\b")


@dataclass(frozen=True)
class LevelRule:
    level: str
    pattern: str
    reason: str
    category: str = "suicidal_ideation"  # the crisis category a flag by this rule alone gets

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


LEVEL_RULES: tuple[LevelRule, ...] = (
    # ---- imminent: an act under way, or about to happen
    LevelRule("imminent", r"\b(i'?ve|i have|i|just|already)\s+(just\s+|already\s+)?(taken|took|swallowed|downed|drank|"
              r"drunk)\b[^.?!]{0,40}\b(pills|tablets|bottle|whole|all of|everything|them all|packet|bleach|overdose)\b",
              "has already taken the means", "plan_or_means"),
    LevelRule("imminent", r"\b(i'?m|i am)\s+(standing|sitting|stood|sat|up|out)\s+(on|at)\s+(the\s+)?(edge|ledge|roof|"
              r"rooftop|railing|tracks|platform edge|cliff)\b|\b(rope|noose|belt|cord)\s+(is\s+)?(already\s+)?(around|round)\s+my\s+neck\b",
              "is at the means now", "plan_or_means"),
    LevelRule("imminent", r"\b(i'?m|i am|standing|sitting|sat|stood)\s+(on|at|by|in|up on)\s+(the\s+)?(top of\s+(the\s+)?|edge of\s+"
              r"(the\s+)?)?(bridge|roof|rooftop|cliff|tracks|railway|car park|multistorey|multi-storey|ledge|balcony|quarry|"
              r"platform|pier|railing)\b[^?]{0,80}\b(ready|not (climbing|coming|going) (back|down|home)|long way down|legs over|"
              r"over the (side|edge|railing)|step off|jump|one step|the drop|it'?s quiet|nobody (can|will) stop|this is it|"
              r"final|last time|goodbye)\b",
              "is at a place of means now, ready", "plan_or_means"),
    LevelRule("imminent", r"\b(kill|end|killing|ending|take|taking)\s+" + _ME + r"\s+" + _NOW + r"\b|\b(going to|gonna|will|"
              r"'ll)\s+do it\s+" + _NOW + r"\b|\btonight'?s the night\b|\bit ends (tonight|today|now)\b|\b(by the time|when)"
              r" (you|anyone|someone) (read|reads|see|sees) this\b|\bthis is (my )?(last|final) (message|goodbye|post|text)\b|"
              r"\bgoodbye (forever|everyone|cruel world)\b|\bi'?m doing it (now|tonight|right now)\b",
              "says it will happen now"),
    LevelRule("imminent", r"\b(bleeding|blood)\b[^.?!]{0,30}\b(won'?t stop|a lot|everywhere|so much|badly|heavily)\b",
              "is injured now", "self_harm"),
    # ---- high: intent, plan, method or means, preparation
    LevelRule("high", r"\b(i'?m going to|i am going to|going to|i'?m gonna|i will|i'?ll|i'?m about to|about to|want to|"
              r"i want to|ready to|planning to|plan to|decided to|i'?ve decided to|intend to|i'?m finally going to)\s+"
              r"(kill|end|take)\s+" + _ME + r"\b|\b(going to|planning to|decided to|want to)\s+commit suicide\b",
              "states intent"),
    LevelRule("high", _METHOD_ASK, "asks for a method or a lethal amount", "plan_or_means"),
    LevelRule("high", r"\b(i have|i've got|i made|i've made|made|have)\s+a\s+plan\b|\bi know (how|when|where) i('?m| am| will|"
              r"'ll) (going to )?do it\b|\b(picked|chose|chosen|set|decided on)\s+(a|the)\s+(date|day)\b",
              "has a plan or a date", "plan_or_means"),
    LevelRule("high", r"\b(saved|saving|stockpil\w+|hoard\w*|collect\w*|stash\w*|gather\w*)\s+(up\s+)?([\w']+\s+){0,3}"
              + _MEANS + r"\b|\b" + _MEANS + r"\b[^.?!]{0,25}\b(ready|with me|in my (hand|pocket|bag|drawer|car))\b|"
              r"\b(i have|i've got|i got|i'm holding|holding)\s+(the |my |some |a |all (the |my )?|enough |a bottle of )?"
              r"(pills|tablets|rope|gun|blades?|razor|noose)\b",
              "has means gathered or at hand", "plan_or_means"),
    LevelRule("high", r"\b(notes?|letters?|messages?)\s+(to|for)\s+(everyone|each of|all of|the people i love)\b|"
              r"\b(goodbye|farewell)\s+(notes?|letters?|messages?)\s+(to|for)\s+(my|everyone|each|all)\b|\bsuicide note\b|"
              r"\bgiv(e|en|ing)\s+away\s+(all\s+)?my\s+(things|stuff|belongings|possessions|cat|dog|pets?)\b",
              "has prepared (notes, belongings)", "plan_or_means"),
    LevelRule("high", r"\b(only|one)\s+(way out|option|solution|answer)\b[^.?!]{0,30}\b(die|death|dead|suicide|kill|end "
              r"(it|my life))\b|\b(die|dying|death|dead|suicide|killing myself|ending it|ending my life)\s+(is|seems|feels "
              r"like)\s+(the|my)\s+only\s+(way|option|solution|answer)\b",
              "sees death as the only way out"),
    LevelRule("high", r"\b(going to|gonna|plan to|planning to|will|i'?ll|want to|about to)\s+(overdose|take all (of )?(my|"
              r"the) (pills|meds|tablets|medication))\b",
              "states intent to overdose", "plan_or_means"),
    LevelRule("high", r"\b(won'?t|will not|not going to)\s+be\s+(around|here|alive)\s+(much\s+longer|for long|tomorrow|"
              r"anymore|by then|next (week|month|year))\b|\bafter i'?m gone\b|\bwhen i'?m gone\b|\bmy own funeral\b",
              "speaks as if they will be gone"),
    LevelRule("high", r"\b(hang|hanging|shoot|shooting|drown|drowning|poison|poisoning|suffocate|suffocating|gas|gassing|"
              r"overdose|overdosing|od|od'?ing)\s+(myself|on purpose)\b|\b(jump|jumping|throw myself|throwing myself)\s+"
              r"(off|from|in front of|under)\b",
              "names a method for themselves", "plan_or_means"),
    LevelRule("high", r"\b(i'?ll|i will|i'?m going to|i am going to|going to|gonna|planning to|plan to)\s+(kill|hurt|stab|"
              r"shoot|strangle|poison|murder|beat)\s+(him|her|them|someone|my|the|everyone|people)\b|\b(bring|bringing|take|"
              r"taking)\s+(a|my|the|his|dad'?s)\s+(gun|knife|rifle|weapon)\s+to\b",
              "intends to harm someone", "harm_to_others"),
    LevelRule("high", r"\b(he|she|they|my\s+\w+)\s*('ll|will|is going to|'s going to|threatened to|threatens to|said (he|"
              r"she|they)'?(ll| will| would))\s+(kill|hurt|beat)\s+me\b|\bin danger (at home|here|in my (own )?(house|home))\b|"
              r"\bnot safe (here|at home|in my (own )?(house|home))\b",
              "is in danger from someone", "abuse_or_danger"),
    LevelRule("high", r"\b(is|are|'s|'re)\s+(going to|planning to|about to)\s+(kill|hurt)\s+(himself|herself|themselves|themself)\b"
              r"|\b(he|she|they)\s+(has|have|got|bought)\s+(a|the|some)?\s*" + _MEANS + r"\b",
              "someone else intends to end their life"),
    # ---- moderate: active thoughts, self-injury, someone else at risk
    LevelRule("moderate", r"\b(thinking|thought|thinking about|thoughts of|thoughts about|think about)\s+(about\s+)?"
              r"(killing|ending|taking)\s+(myself|my life)\b|\bsuicidal\s+(thoughts|feelings|urges)\b|\b(i'?m|i am|feel|"
              r"feeling)\s+(so\s+|really\s+|very\s+)?suicidal\b|\b(want|wanting|wanted) to die\b|\b(considering|contemplating|"
              r"thinking about)\s+suicide\b",
              "has active thoughts of suicide"),
    LevelRule("moderate", r"\b(cut|cutting|burn|burned|burning|hurt|hurting|harm|harming|hit|hitting|punch|punching|scratch|"
              r"scratching|starve|starving|bruise|bruising)\s+(myself|my\s+(arms?|wrists?|legs?|thighs?|skin|stomach))\b|"
              r"\b(been|keep|kept|started|still|i)\s+self-harm(ing|ed)?\b(?!\s+(as a|when i was|in the past|years))|\burges?\s+to\s+(cut|burn|bleed|hurt myself)\b|\b(going to|gonna|will|want to|need to|"
              r"have to)\s+cut\s+(myself|again|tonight|deeper)\b",
              "self-injury", "self_harm"),
    LevelRule("moderate", r"\b(my|a)\s+(friend|brother|sister|son|daughter|mom|mum|dad|partner|boyfriend|girlfriend|"
              r"roommate|cousin|classmate|coworker|colleague|wife|husband)\b[^.?!]{0,60}\b(suicid\w*|kill (himself|herself|"
              r"themselves)|end (his|her|their) (own )?life|hurting (himself|herself|themselves)|cutting|self-harm\w*|"
              r"wants to die|want to die|doesn'?t want to (live|be here))\b",
              "someone else is at risk"),
    # ---- low: a passive wish, hopelessness
    LevelRule("low", r"\bwish(ed|ing)?\s+i\s+(was|were|'d be|could be)\s+dead\b|\bwish(ed)?\s+i\s+('?d|had)?\s*never\s+(been"
              r"\s+born|existed)\b|\b(don'?t|do not|didn'?t)\s+want\s+to\s+(wake\s+up|be alive|exist|live|be here)\b(?!\s+(in|with|"
              r"like|near|next|forever|there))|\b(hope|wish)\s+i\s+(don'?t|never|won'?t)\s+wake\s+up\b|\bsleep\s+(forever|and"
              r" never wake up)\b",
              "wishes not to be alive"),
    LevelRule("low", r"\bwhat'?s the point (of|in) (anything|living|life|going on|me|being alive|trying)\b|\b(tired|sick)\s+of\s+"
              r"(being alive|existing|life|living)\b(?!\s+(in|with|at|like|on|off|out|next|paycheck|here))|\bbetter off "
              r"(dead|without me)\b|\b(i'?m|i am|feel like)\s+(just\s+)?(such\s+)?a\s+(total\s+|huge\s+)?burden\b|\bno\s+(reason|point)\s+(to|in)\s+"
              r"(live|living|go on|going on|keep going|be alive|being alive)\b|\bcan'?t (go on|keep going|keep living)\b|"
              r"\bdisappear (forever|for good|permanently)\b|\bwant (it|everything|this) to (all )?(end|stop) (for good|forever)\b",
              "is hopeless"),
)

# A report about someone else at risk (they get resources for helping that person).
ABOUT_SOMEONE_ELSE = re.compile(
    r"\b(my|a|our)\s+(friend|best friend|brother|sister|son|daughter|mom|mum|mother|dad|father|partner|boyfriend|"
    r"girlfriend|roommate|flatmate|cousin|classmate|coworker|colleague|wife|husband|kid|child|student|neighbou?r)\b|"
    r"\b(he|she|they)\s+(is|are|'s|'re|has|have|keeps|said|says|told me|texted|posted)\b")
_FIRST_PERSON_RISK = re.compile(r"\b(i|i'?m|i'?ve|i'?ll|me|myself|my life)\b")


_LITERAL_PREPARATION = re.compile(r"\b(move|moving|moved|declutter\w*|clear(ing)? out|donat\w*|charity|spring clean\w*|"
                                  r"new (flat|place|house|apartment)|relocat\w*|downsiz\w*|retir\w*|old job|leaving do)\b")


def means_request(text: str) -> bool:
    """A request for a method or a lethal amount, about a person (an animal or a plant is literal)."""
    return bool(_compiled(_METHOD_ASK).search(text)) and not _ANIMAL.search(text)


def grade(text: str, *, discounted: bool = False) -> tuple[str, str, str | None]:
    """(level, reason, category) that the grading rules prove for normalised ``text`` ("none", "",
    None when no rule fires). ``discounted``: the phrase layer found only negated, figurative, past or fictional risk,
    so only a means request counts (a method asked for is a crisis under any framing)."""
    best, reason, category = "none", "", None
    for rule in LEVEL_RULES:
        if RANK[rule.level] <= RANK[best]:
            continue
        match = rule.regex.search(text)
        if not match:
            continue
        if rule.reason == "asks for a method or a lethal amount":
            if not means_request(text):
                continue
        elif discounted:
            continue
        if rule.reason == "has prepared (notes, belongings)" and _LITERAL_PREPARATION.search(text):
            continue
        best, reason, category = rule.level, f"{rule.reason} ({match.group(0)!r})", rule.category
    return best, reason, category


def about_someone_else(text: str, category: str | None) -> bool:
    """The message reports someone else at risk rather than the writer."""
    if not ABOUT_SOMEONE_ELSE.search(text):
        return False
    own = re.sub(ABOUT_SOMEONE_ELSE, " ", text)
    return not re.search(r"\b(kill|end|hurt|cut)\s+(myself|my life)\b|\bi (want|wanna) to die\b|\bi'?m suicidal\b", own)
