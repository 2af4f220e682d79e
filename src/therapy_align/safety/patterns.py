"""The maintained phrase and pattern layer: what counts as a risk phrase, and what discounts one.

Everything here is data, meant to be edited (with a new case in ``data/crisis_eval.jsonl`` and a
rerun of ``therapy-align safety eval``): slang expansions, risk rules per category for user
messages and unsafe-reply rules for model output (both in ``data/rules.yaml``), and the *discounts* (negation, figures of speech,
past and resolved, fiction / lyrics / news, medical questions, jokes) that turn a hit into a case
for the semantic layer to decide.

Categories of user-message risk: ``suicidal_ideation``, ``plan_or_means``, ``self_harm``,
``harm_to_others``, ``abuse_or_danger``. Categories of unsafe replies: ``method_or_dosing``,
``encouragement``, ``dismissal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

CRISIS_CATEGORIES = ("suicidal_ideation", "plan_or_means", "self_harm", "harm_to_others", "abuse_or_danger")
REPLY_CATEGORIES = ("method_or_dosing", "encouragement", "dismissal")

# Slang and spellings that hide a risk phrase, expanded before matching (and before embedding, since
# MiniLM has not seen most of them).
SLANG: tuple[tuple[str, str], ...] = (
    (r"\bkms\b", "kill myself"),
    (r"\bkys\b", "kill yourself"),
    (r"\bunalive\s+(myself|me)\b", "kill myself"),
    (r"\bunaliving\s+(myself|me)\b", "killing myself"),
    (r"\bunalive\b", "dead"),
    (r"\bsewer\s?slide\b|\bsu[i1]c[i1]de\b|\bsuic\*de\b|\bs\*icide\b", "suicide"),
    (r"\bsewer\s?slidal\b|\bsu[i1]c[i1]dal\b", "suicidal"),
    (r"\bself[\s-]?harm(ing)?\b|\bs/h\b", "self-harm"),
    (r"\bo\.?d\.?(ing|'?d|ed)?\b(?=\s+on\b)", "overdose"),
    (r"\bwanna\b", "want to"),
    (r"\bgonna\b", "going to"),
    (r"\bim\b", "i'm"),
    (r"\bdont\b", "don't"),
    (r"\bcant\b", "can't"),
    (r"\bwont\b", "won't"),
    (r"\bidk\b", "i don't know"),
)


@dataclass(frozen=True)
class Rule:
    """One risk phrase. ``strong`` hits flag on their own unless discounted; ``weak`` ones need the
    semantic layer's agreement. ``negatable=False`` marks rules whose phrase carries its own
    negation ("don't want to live"), which the negation discount must not undo."""

    category: str
    pattern: str
    reason: str
    strong: bool = True
    negatable: bool = True

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _CACHE:
        _CACHE[pattern] = re.compile(pattern, re.IGNORECASE)
    return _CACHE[pattern]


def _load_rules() -> dict[str, tuple[Rule, ...]]:
    """The rule tables of ``data/rules.yaml``, with each ``${NAME}`` replaced by its fragment."""
    import yaml

    data = yaml.safe_load(resources.files("therapy_align.safety").joinpath("data/rules.yaml").read_text(encoding="utf-8"))
    fragments = dict(data["fragments"])

    def expand(text: str) -> str:
        for _ in range(len(fragments)):  # fragments may name each other
            for name, value in fragments.items():
                text = text.replace("${" + name + "}", value)
        return text

    fragments = {name: expand(value) for name, value in fragments.items()}
    return {table: tuple(Rule(r["category"], expand(r["pattern"]), r["reason"], r.get("strong", True), r.get("negatable", True))
                         for r in data[table]) for table in ("message_rules", "reply_rules")}


_RULES = _load_rules()
MESSAGE_RULES: tuple[Rule, ...] = _RULES["message_rules"]  # user messages

# Discounts: a hit inside one of these is not taken at face value.
# "stopped" and "quit" negate only the act they govern, right before the phrase ("I quit cutting
# myself"); anywhere else in the window they are other verbs ("I will quit and kill myself").
NEGATION_BEFORE = (r"\b(never|not|no longer|wouldn'?t|would not|won'?t ever|couldn'?t|could not|didn'?t|did not|"
                   r"don'?t|do not|doesn'?t|does not|isn'?t|am not|i'?m not|aren'?t|wasn'?t|no (plans?|intention|"
                   r"desire|wish|urge|thoughts?|interest)( at all)?( of| to| in)?|without|nor|neither)\b|"
                   r"\b(stopped|quit)\s*$")
NEGATION_EXCEPTIONS = (r"\b(don'?t|do not|didn'?t) know\b|\b(can'?t|couldn'?t|cannot) stop\b|\bnot sure\b|"
                       r"\bnot (going|able) to (stop|hold on|cope|handle)\b|\bno one\b|\bnobody\b|\bnot want\b(?! to (be|do))")
NEGATION_AFTER = (r"^[\s,?!.]*(\?\s*)?(never|no way|nope|not an option|is not (an option|something|for me)|"
                  r"isn'?t (an option|something|for me)|was never|has never|will never|not in a million)")

FIGURES_OF_SPEECH: tuple[str, ...] = (
    r"\b(this|that|it|these|those|the|my|your|his|her|our|their|this\s+\w+|these\s+\w+)\s+([\w'-]+\s+){0,3}(is|are|was|were|'s|'re|has been|have been)\s+(literally\s+|actually\s+|so\s+|really\s+|gonna\s+|going to\s+)*(kill|killing)\s+me\b",
    r"\b(just\s+)?kill\s+me\s+now\b",
    r"\b(could|would|will|'d)\s+(kill|murder|die)\s+for\b",
    r"\bdying\s+(to|for|of\s+(laughter|laughing|embarrassment|boredom|curiosity|heat|thirst|cringe))\b",
    r"\b(die|died|dying|dead)\s+(of|from)\s+(laughing|laughter|embarrassment|cringe|boredom|shame)\b",
    r"\b(i'?m|i am)\s+(literally\s+|so\s+)?dead\b(?!\s+inside)\s*(lol|lmao|haha|😂|💀|rn)?",
    r"\bdead\s+(tired|serious|on|set|ringer|end)\b",
    r"\bto die for\b",
    r"\b(bored|scared|worried|tickled|loved|frozen|starving|freezing)\s+to\s+death\b",
    r"\bkill(ed|ing|s)?\s+(it|time|the (lights|mood|vibe|engine|process|music|battery|spider|bug)|two birds|my (workout|interview|exam|presentation|set))\b",
    r"\bmurder(ed|ing)?\s+(a|this|that|the)\s+(burger|pizza|song|exam|test|workout|playlist|sandwich|karaoke|dance)\b",
    r"\bshoot(ing)?\s+(me\s+)?(a|an)\s+(message|email|text|dm|shot|photo|video|hoop)\b",
    r"\bshoot(ing)?\s+myself\s+in\s+the\s+foot\b",
    r"\bcut(ting)?\s+myself\s+(a|some|another)\s+(\w+\s+){0,2}(slice|piece|break|slack|bit)\b",
    r"\b(so|too)\s+\w+\s+(that\s+)?i\s+could\s+(die|scream|cry|explode|puke)\b",
    r"\b(is|are|'s|'re|will|'ll)\s+(so\s+)?(going to|gonna|about to)?\s*(kill|murder)\s+me\s*(,|when|if|for|because|cause|cuz)",
    r"\bcut(ting)?\s+myself\s+(while|when)\s+(shaving|cooking|chopping|cutting|slicing)\b",
    r"\bcut\s+myself\s+(shaving|cooking|chopping)\b",
    # An accident is literal: a cut or a burn while cooking, shaving, gardening or on something sharp.
    r"\b(cut|cutting|burn|burned|burnt|burning|hurt|hurting)\s+(myself|my\s+(finger|thumb|hand|arm|leg|knee|foot))\b[^.?!]{0,50}\b(by accident|accidentally|while|when i was|on (a|the) (tin|can|knife|glass|stove|oven|pan|grater|mandoline|paper)|cooking|chopping|shaving|gardening|slicing|peeling|making (dinner|lunch|breakfast))\b",
    r"\baccidentally\s+(cut|burned|burnt|hurt)\s+(myself|my)\b",
    r"\bcut(s|ting)?\s+(back|down)\b",
    r"\b(fall|fell|falling|trip|tripped|slip|slipped)\s+(\w+\s+){0,2}and\s+(hurt|injure|break)\s+(myself|my)\b",
    r"\bkill(ing)?\s+myself\s+(laughing|with laughter)\b",
    r"\bkill(ing)? myself (at|in) the gym\b|\bkilling myself (with|over) (this|these|work|studying|homework)\b",
    r"\b(ground|earth|floor)\s+to\s+swallow\s+me\b",
    r"\bwant(ed)?\s+to\s+die\s+(of|from)\s+(embarrassment|shame|cringe)\b",
    r"\bhurt(ing)?\s+myself\s+(at|in|during|playing|while)\s+(the gym|football|soccer|practice|training|running|playing|a game|basketball|work|hiking)\b",
    r"\bburn(ed|t)?\s+myself\s+(on|with)\s+(the|a|my)\s+(stove|oven|pan|kettle|iron|coffee|tea|curling)\b",
    r"\bdon'?t\s+want\s+to\s+live\s+forever\b",
    r"\bbeat\s+me\s+(at|in)\b|\b(hits|hit)\s+me\s+(up|that|with a (text|message|call))\b|\bit hit me\b",
)
JOKE_MARKERS = r"(\blol\b|\blmao\b|\blmfao\b|\bhaha\w*\b|\bjk\b|\bjust kidding\b|😂|💀|🤣|😭\s*😂|/s\b)"
PAST_MARKERS = (r"\b(years? ago|months ago|long time ago|when i was (younger|little|small|a (kid|child|teen|teenager)|in "
                r"(high school|college|middle school|school|uni|university)|\d+)|as a (kid|teen|teenager|child)|used to|"
                r"in the past|back (then|in \d{4}|in (high school|college|the day))|(i'?m|i am) (doing )?(so |much |a lot |way )?"
                r"better now|recovered|in recovery|(clean|free|sober) (for|since)|(\d+|a few|two|three|four|five|several|many) "
                r"(years|months) (clean|free|sober|ago)|survived|got through|made it through|glad i didn'?t|grateful i|"
                r"looking back|at the time|that was (years|a long time)|no longer)\b")
PRESENT_MARKERS = (r"\b(again|lately|recently|these days|right now|tonight|today|this (week|morning|evening)|still(?! (here|alive|standing|breathing))|"
                   r"anymore|any more|starting to|started|relaps\w*|coming back|back again|keep|keeps|can'?t stop|now i|"
                   r"i'?m (so |really )?(scared|afraid)|currently|every (day|night))\b")
DISTANCE_MARKERS = (r"\b(character|protagonist|antagonist|villain|hero|heroine|novel|story|stories|fanfic|fan fiction|"
                    r"book|chapter|film|movie|show|series|episode|season finale|game|video game|poem|poetry|song|lyrics?|album|track|"
                    r"verse|chorus|singing|sang|sings|rapper|rap|script|screenplay|scene|plot|musical|opera|documentary|"
                    r"article|news|headline|reported|study|studies|research|researcher|statistics|rates?|essay|paper|class|"
                    r"lecture|course|textbook|hamlet|shakespeare|romeo|juliet|quote|quoting|meme|podcast|true crime|"
                    r"historian|history|war|soldiers?|assignment|homework question|exam question|trivia|dnd|d&d|campaign)\b")
MEDICAL_MARKERS = (r"\b(signs?|symptoms?|treat(ed|ment|ing)?|antidote|first aid|naloxone|narcan|side effects?|interact\w*|"
                   r"safe to take|maximum (daily )?dose|max dose|recommended dose|prescri\w+|doctor|pharmacist|nurse|"
                   r"how (do|can) (you|i|we) (treat|recognise|recognize|help|prevent|spot))\b")

REPLY_RULES: tuple[Rule, ...] = _RULES["reply_rules"]  # model replies

