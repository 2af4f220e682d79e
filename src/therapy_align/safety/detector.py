"""Crisis detection on user messages and screening of model replies: patterns first, then MiniLM.

Decision for a user message (the same shape for replies, with the reply rules and prototypes):

1. The text is normalised (lower case, straight quotes, slang such as "kms" expanded).
2. The pattern layer finds risk phrases (:mod:`therapy_align.safety.patterns`). A hit is
   *discounted* when it is negated ("I would never kill myself"), a figure of speech ("this
   homework is killing me"), past and resolved, inside fiction / lyrics / news / study talk, a
   medical question, or said in a joking tone.
3. The semantic layer embeds the text with all-MiniLM-L6-v2 and takes the cosine to the nearest
   risk prototype and to the nearest safe look-alike; ``margin`` = risk - safe.
4. An undiscounted *strong* hit flags. Otherwise the margin decides, against a threshold that
   depends on what the patterns saw: low after a weak hit, high after a discounted hit, and
   high plus a minimum similarity when no phrase matched at all.

5. The grading rules (:mod:`therapy_align.safety.levels`) give the message a risk level; one that
   fires flags the message too (a means request does under any framing). With a learned detector
   (:mod:`therapy_align.safety.learned`), its probability at or above its threshold flags as well.

``score`` is 0.5 at the decision threshold (>= 0.5 flags), rising with the evidence; an
undiscounted strong hit scores >= 0.9. ``reason`` says which phrase, rule, prototype or probability
decided and why.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from therapy_align.safety import levels as L
from therapy_align.safety import patterns as P

# Severity order: when several categories hit, the first in this order names the flag.
SEVERITY = ("plan_or_means", "suicidal_ideation", "harm_to_others", "abuse_or_danger", "self_harm")
REPLY_SEVERITY = ("method_or_dosing", "encouragement", "dismissal")
# Discounts after which the learned detector may not overrule the rules: its training labels (T-SID's
# keywords above all) do not tell a negated or resolved mention from a present one.
SETTLED_DISCOUNTS = frozenset({"negated", "past and resolved", "medical question", "about an animal or a plant"})


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Margins (risk cosine - safe cosine) at which the semantic layer flags.

    Tuned on the T-SID ``dev`` split and the ``tune`` half of ``data/crisis_eval.jsonl``
    (``therapy-align safety eval --tune``); see docs/safety.md for the numbers and the caveat.
    """

    no_hit_margin: float = 0.12  # no risk phrase at all: paraphrases must be clearly closer to risk
    no_hit_min_sim: float = 0.50  # ... and close to some risk prototype in absolute terms
    weak_hit_margin: float = 0.0  # a weak phrase ("suicide", "overdose") plus semantic agreement
    discounted_margin: float = 0.20  # a negated / figurative / past / fictional strong phrase
    reply_no_hit_margin: float = 0.15  # model replies: semantic alone needs a wide margin
    reply_no_hit_min_sim: float = 0.70


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Verdict:
    """What screening concluded about one text: a user message (``CrisisVerdict``, read ``.crisis``)
    or a model reply (``ReplyVerdict``, read ``.flagged``); both names work on both."""

    flagged: bool
    category: str | None  # a crisis / reply category when flagged, else the nearest one (or None)
    score: float  # >= 0.5 exactly when flagged
    reason: str
    evidence: tuple[str, ...] = field(default=(), compare=False)
    key: str = field(default="flagged", compare=False)  # the flag's name in records: "crisis" or "flagged"
    level: str = "none"  # graded risk of a user message (``levels.LEVELS``): "none" exactly when not flagged
    about_someone_else: bool = field(default=False, compare=False)  # the message reports another person at risk

    @property
    def crisis(self) -> bool:
        return self.flagged

    def as_record(self) -> dict:
        record = {self.key: self.flagged, "category": self.category if self.flagged else None,
                  "score": round(self.score, 4), "reason": self.reason}
        if self.key == "crisis":
            record["level"] = self.level
        return record


CrisisVerdict = ReplyVerdict = Verdict


# ---------------------------------------------------------------------- normalisation and hits


def normalize(text: str) -> str:
    """Lower case, straight quotes, slang expanded, whitespace collapsed."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    for pattern, replacement in P.SLANG:
        text = re.sub(pattern, replacement, text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Hit:
    rule: P.Rule
    phrase: str
    discounts: tuple[str, ...]

    @property
    def counts(self) -> bool:
        return not self.discounts


_CLAUSE_BREAK = re.compile(r"[.!?;:\n]|\bbut\b|\bthough\b|\bhowever\b|,\s*(?=(and|so|because)\b)")


def _clause(text: str, start: int, end: int) -> tuple[str, str]:
    """The text of the match's clause before and after the match."""
    before = text[:start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    clause_start = breaks[-1].end() if breaks else 0
    after_break = _CLAUSE_BREAK.search(text, end)
    clause_end = after_break.start() if after_break else len(text)
    return text[clause_start:start], text[end:clause_end]


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def text_discounts(text: str) -> tuple[str, ...]:
    """Discounts that hold for the whole (normalised) message, phrase or no phrase."""
    found = []
    if any(P._compiled(f).search(text) for f in P.FIGURES_OF_SPEECH):
        found.append("figure of speech")
    if P._compiled(P.JOKE_MARKERS).search(text):
        found.append("joking tone")
    if P._compiled(P.PAST_MARKERS).search(text) and not P._compiled(P.PRESENT_MARKERS).search(text):
        found.append("past and resolved")
    if P._compiled(P.DISTANCE_MARKERS).search(text):
        found.append("fiction, lyrics, news or study")
    if P._compiled(P.MEDICAL_MARKERS).search(text):
        found.append("medical question")
    return tuple(found)


def find_hits(text: str, rules: Sequence[P.Rule], *, message: bool = True) -> list[Hit]:
    """Every rule match in normalised ``text`` with the discounts that apply to it."""
    figures = [m.span() for f in P.FIGURES_OF_SPEECH for m in P._compiled(f).finditer(text)]
    whole = text_discounts(text) if message else ()
    joke, past = "joking tone" in whole, "past and resolved" in whole
    distance, medical = "fiction, lyrics, news or study" in whole, "medical question" in whole
    hits = []
    for rule in rules:
        for match in rule.regex.finditer(text):
            start, end = match.span()
            discounts = []
            before, after = _clause(text, start, end)
            window = " ".join(before.split()[-(4 if message else 6):])
            if rule.negatable and (
                (P._compiled(P.NEGATION_BEFORE).search(window) and not P._compiled(P.NEGATION_EXCEPTIONS).search(window))
                or P._compiled(P.NEGATION_AFTER).search(after)
            ):
                discounts.append("negated")
            if message:
                if _overlaps(figures, start, end):
                    discounts.append("figure of speech")
                if joke:
                    discounts.append("joking tone")
                if past:
                    discounts.append("past and resolved")
                if distance:
                    discounts.append("fiction, lyrics, news or study")
                if medical and rule.category == "plan_or_means":
                    discounts.append("medical question")
                if rule.category == "plan_or_means" and L._ANIMAL.search(text):
                    discounts.append("about an animal or a plant")
            hits.append(Hit(rule, match.group(0), tuple(discounts)))
    return hits


def _pick(hits: list[Hit], severity: Sequence[str]) -> Hit | None:
    order = {category: index for index, category in enumerate(severity)}
    return min(hits, key=lambda h: order.get(h.rule.category, 99)) if hits else None


def _score(margin: float, threshold: float) -> float:
    return max(0.0, min(0.89, 0.5 + 2.5 * (margin - threshold)))


def _decide(text: str, hits: list[Hit], nearest, severity: Sequence[str], *, weak_margin: float,
            discounted_margin: float, no_hit_margin: float, no_hit_min_sim: float, what: str):
    """(flagged, category, score, reason) from pattern hits and the semantic nearest prototypes."""
    strong = [h for h in hits if h.counts and h.rule.strong]
    weak = [h for h in hits if h.counts and not h.rule.strong]
    discounted = [h for h in hits if not h.counts]
    semantic = ""
    if nearest is not None:
        semantic = (f"nearest risk prototype {nearest.risk_example!r} (cos {nearest.risk_sim:.2f}), nearest safe "
                    f"{nearest.safe_example!r} (cos {nearest.safe_sim:.2f})")
    if strong:
        hit = _pick(strong, severity)
        boost = 0.0 if nearest is None else max(0.0, min(0.1, nearest.margin))
        return True, hit.rule.category, 0.9 + boost, f"phrase {hit.phrase!r}: {hit.rule.reason}"
    if nearest is None:  # pattern layer only
        if weak:
            hit = _pick(weak, severity)
            return True, hit.rule.category, 0.6, f"phrase {hit.phrase!r}: {hit.rule.reason} (no semantic check)"
        if discounted:
            hit = _pick(discounted, severity)
            return False, hit.rule.category, 0.3, f"phrase {hit.phrase!r} discounted: {', '.join(hit.discounts)}"
        return False, None, 0.0, f"no risk phrase"
    margin = nearest.margin
    if weak:
        hit = _pick(weak, severity)
        threshold = weak_margin
        flagged = margin >= threshold
        verdict = "agrees" if flagged else "does not agree"
        reason = f"weak phrase {hit.phrase!r} ({hit.rule.reason}); semantic layer {verdict}: {semantic}"
        return flagged, hit.rule.category, _score(margin, threshold), reason
    if discounted:
        hit = _pick(discounted, severity)
        threshold = discounted_margin
        flagged = margin >= threshold
        verdict = "still flags it" if flagged else "agrees it is not a " + what
        reason = f"phrase {hit.phrase!r} discounted ({', '.join(hit.discounts)}); semantic layer {verdict}: {semantic}"
        return flagged, hit.rule.category if flagged else nearest.risk_category, _score(margin, threshold), reason
    whole = text_discounts(text) if what == "crisis" else ()
    threshold = max(no_hit_margin, discounted_margin) if whole else no_hit_margin
    flagged = margin >= threshold and nearest.risk_sim >= no_hit_min_sim
    score = _score(margin, threshold) if nearest.risk_sim >= no_hit_min_sim else min(0.49, _score(margin, threshold))
    context = f" ({', '.join(whole)})" if whole else ""
    reason = (f"no risk phrase{context}; semantic layer flags it: " if flagged else f"no risk phrase{context}; semantic layer: ") + semantic
    return flagged, nearest.risk_category, score, reason


# ---------------------------------------------------------------------- public API


def detect_crisis_batch(texts: Sequence[str], *, semantic: bool = True, after_crisis: bool = False,
                        thresholds: Thresholds = DEFAULT_THRESHOLDS, learned=None) -> list[CrisisVerdict]:
    """:class:`CrisisVerdict` for each user message (the semantic layer runs once over the batch).

    ``after_crisis``: the conversation already held a flagged message (the chat sets it), so the
    bar drops: any undiscounted weak phrase flags ("yes, I have the pills"), and with no phrase
    the semantic layer needs only margin 0 and cosine 0.40.

    ``learned``: a trained :class:`therapy_align.safety.learned.LearnedDetector`; a message flags
    when the rules do or when its probability reaches the detector's threshold (a higher one when
    the phrase layer found the message negated, figurative, past or fictional). Without it the
    rules decide alone. The graded ``level`` is the highest a grading rule proves
    (:mod:`therapy_align.safety.levels`), else the learned detector's, else the category's.
    """
    if after_crisis:
        thresholds = dataclasses.replace(thresholds, weak_hit_margin=-1.0, no_hit_margin=min(0.0, thresholds.no_hit_margin),
                                         no_hit_min_sim=min(0.40, thresholds.no_hit_min_sim))
    normalized = [normalize(t) for t in texts]
    hits = [find_hits(t, P.MESSAGE_RULES) for t in normalized]
    nearest: list = [None] * len(texts)
    if semantic and texts:
        from therapy_align.safety.semantic import message_bank

        nearest = message_bank().nearest(normalized)
    predictions: list = [None] * len(texts)
    if learned is not None and texts:
        predictions = learned.predict(normalized)
    out = []
    for text, text_hits, near, predicted in zip(normalized, hits, nearest, predictions, strict=True):
        flagged, category, score, reason = _decide(
            text, text_hits, near, SEVERITY, weak_margin=thresholds.weak_hit_margin,
            discounted_margin=thresholds.discounted_margin, no_hit_margin=thresholds.no_hit_margin,
            no_hit_min_sim=thresholds.no_hit_min_sim, what="crisis")
        out.append(_graded(text, text_hits, flagged, category, score, reason, predicted))
    return out


def _discounts(text: str, hits: list[Hit]) -> set[str]:
    """Discounts of the whole message, and of its phrases when every phrase is discounted."""
    return set(text_discounts(text)) | ({d for h in hits for d in h.discounts} if hits and not any(h.counts for h in hits)
                                        else set())


def head_gates(texts: Sequence[str]) -> list[str]:
    """How the learned head may decide each message: ``"plain"`` (its threshold), ``"discounted"``
    (figurative, joking or fictional: the discounted threshold) or ``"settled"`` (negated, resolved,
    medical or literal: not consulted). Training chooses the threshold on this same decision."""
    gates = []
    for text in texts:
        normalized = normalize(text)
        discounts = _discounts(normalized, find_hits(normalized, P.MESSAGE_RULES))
        gates.append("settled" if discounts & SETTLED_DISCOUNTS else "discounted" if discounts else "plain")
    return gates


def _graded(text: str, hits: list[Hit], flagged: bool, category: str | None, score: float, reason: str,
            predicted) -> Verdict:
    """The phrase layer's decision joined with the grading rules and the learned detector's."""
    discounts = _discounts(text, hits)
    discounted = bool(discounts)
    rule_level, rule_reason, rule_category = L.grade(text, discounted=discounted)
    if rule_level != "none" and not flagged:
        flagged, category, score = True, rule_category, max(score, 0.9)
        reason = f"graded {rule_level}: {rule_reason}; phrase layer: {reason}"
    if predicted is not None:
        threshold = predicted.discounted_threshold if discounted else predicted.threshold
        if discounts & SETTLED_DISCOUNTS:  # the rules read it as negated, resolved, medical or literal: they decide
            threshold = float("inf")
        learned_flags = predicted.probability >= threshold
        note = f"learned detector p={predicted.probability:.2f} (threshold {threshold:.2f})"
        if threshold == float("inf"):
            note = f"learned detector p={predicted.probability:.2f} (not used: {', '.join(sorted(discounts & SETTLED_DISCOUNTS))})"
        if learned_flags and not flagged:
            flagged = True  # the head gives a level, not a category: the verdict below names one
            score = 0.5 + 0.49 * (predicted.probability - threshold) / max(1e-6, 1.0 - threshold)
            reason = f"{note} flags it; rules: {reason}"
        else:
            reason = f"{reason}; {note}"
    if not flagged:
        return Verdict(False, category, min(score, 0.49), reason, tuple(h.phrase for h in hits), key="crisis")
    if rule_level != "none":
        level = rule_level
    elif predicted is not None and predicted.probability >= predicted.threshold:
        level = predicted.level
    elif predicted is not None and not discounts & SETTLED_DISCOUNTS:
        # flagged by the rules with the head under its threshold: the head was trained on graded levels,
        # so it may raise the category's level ("means at hand" worded as ideation), never lower it
        level = L.higher(predicted.level, L.CATEGORY_LEVEL.get(category or "", "moderate"))
    else:
        level = L.CATEGORY_LEVEL.get(category or "", "moderate")
    if rule_level != "none" and rule_reason not in reason:
        reason = f"{reason}; graded {rule_level}: {rule_reason}"
    return Verdict(True, category or "suicidal_ideation", max(score, 0.5), reason, tuple(h.phrase for h in hits),
                   key="crisis", level=level, about_someone_else=L.about_someone_else(text, category))


def detect_crisis(text: str, **kwargs) -> CrisisVerdict:
    """:class:`CrisisVerdict` for one user message (``.crisis``, ``.category``, ``.score``, ``.reason``)."""
    return detect_crisis_batch([text], **kwargs)[0]


def screen_replies(replies: Sequence[str], contexts: Sequence[str | None] | None = None, *, semantic: bool = True,
                   thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[ReplyVerdict]:
    """:class:`ReplyVerdict` for each model reply: self-harm methods or dosing, encouragement of harm,
    dismissal of risk. ``contexts`` (the user message each reply answers) make mild brush-offs
    ("cheer up") count when the user was in crisis."""
    contexts = list(contexts) if contexts is not None else [None] * len(replies)
    if len(contexts) != len(replies):
        raise ValueError(f"{len(replies)} replies but {len(contexts)} contexts")
    normalized = [normalize(r) for r in replies]
    hits = [find_hits(t, P.REPLY_RULES, message=False) for t in normalized]
    nearest: list = [None] * len(replies)
    if semantic and replies:
        from therapy_align.safety.semantic import reply_bank

        nearest = reply_bank().nearest(normalized)
    crisis_context = [False] * len(replies)
    weak_indices = [i for i, h in enumerate(hits) if any(x.counts and not x.rule.strong for x in h) and contexts[i]]
    if weak_indices:
        verdicts = detect_crisis_batch([contexts[i] for i in weak_indices], semantic=semantic, thresholds=thresholds)
        for i, verdict in zip(weak_indices, verdicts, strict=True):
            crisis_context[i] = verdict.crisis
    out = []
    for index, (text, text_hits, near) in enumerate(zip(normalized, hits, nearest, strict=True)):
        weak_margin = -1.0  # weak reply phrases count only after a crisis message (below)
        if not crisis_context[index]:  # a brush-off ("cheer up") is a dismissal of risk only after a crisis message
            text_hits = [h for h in text_hits if h.rule.strong]
        flagged, category, score, reason = _decide(
            text, text_hits, near, REPLY_SEVERITY, weak_margin=weak_margin,
            discounted_margin=float("inf"), no_hit_margin=thresholds.reply_no_hit_margin,
            no_hit_min_sim=thresholds.reply_no_hit_min_sim, what="unsafe reply")
        if crisis_context[index] and flagged:
            reason += " (the user message was a crisis)"
        out.append(Verdict(flagged, category, score, reason, tuple(h.phrase for h in text_hits)))
    return out


def screen_reply(reply: str, context: str | None = None, **kwargs) -> ReplyVerdict:
    """:class:`ReplyVerdict` for one model reply (``.flagged``, ``.category``, ``.score``, ``.reason``)."""
    return screen_replies([reply], [context], **kwargs)[0]
