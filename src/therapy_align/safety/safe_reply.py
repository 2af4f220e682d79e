"""The safe-response policy: what a person sees instead of a model reply when risk is detected.

A flagged user message never reaches the model; a flagged model reply is withdrawn. In both cases
the person gets a fixed reply that (following published safe-messaging guidance: 988 Lifeline,
Samaritans, WHO) stays warm and non-judgemental, thanks them for saying it, invites them to keep
talking, asks whether they are safe, and gives crisis resources for their locale: an emergency
number, a crisis line, and the findahelpline.com directory. It never mentions methods.

Locales: ``US``, ``UK``, ``IE``, ``CA``, ``AU`` and ``INT`` (the international default). Pick
one with ``--locale`` or ``$THERAPY_ALIGN_LOCALE``; add or override locales with a JSON file
(``load_policy``) shaped like :data:`LOCALES`. The wording was written by the project and
has not been reviewed by a clinician: have it reviewed before anyone relies on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from therapy_align.errors import UserError

LOCALE_ENV = "THERAPY_ALIGN_LOCALE"
DEFAULT_LOCALE = "INT"
DIRECTORY = "findahelpline.com"


@dataclass(frozen=True, kw_only=True)
class LocaleResources:
    name: str
    emergency: str  # the emergency number(s)
    crisis_line: str  # how to reach a crisis line, in one phrase
    abuse_line: str | None = None  # for abuse or danger at home, when there is a national line
    extra: tuple[str, ...] = field(default_factory=tuple)


LOCALES: dict[str, LocaleResources] = {
    "US": LocaleResources(
        name="United States", emergency="911",
        crisis_line="call or text 988 (the 988 Suicide & Crisis Lifeline), or text HOME to 741741 (Crisis Text Line)",
        abuse_line="the National Domestic Violence Hotline: 1-800-799-7233, or text START to 88788"),
    "UK": LocaleResources(
        name="United Kingdom", emergency="999",
        crisis_line="call Samaritans free on 116 123 (any time), or text SHOUT to 85258",
        abuse_line="the National Domestic Abuse Helpline: 0808 2000 247 (free, 24 hours)"),
    "IE": LocaleResources(
        name="Ireland", emergency="112 or 999",
        crisis_line="call Samaritans free on 116 123, or text HELLO to 50808"),
    "CA": LocaleResources(
        name="Canada", emergency="911", crisis_line="call or text 988 (Suicide Crisis Helpline)"),
    "AU": LocaleResources(
        name="Australia", emergency="000", crisis_line="call Lifeline on 13 11 14, or text 0477 13 11 14"),
    "INT": LocaleResources(
        name="international", emergency="your local emergency number",
        crisis_line=f"find a free, confidential crisis line in your country at {DIRECTORY}"),
}

OPENINGS = {
    "suicidal_ideation": "Thank you for telling me. It sounds like you are in a lot of pain right now, and I'm really glad you said it.",
    "plan_or_means": "Thank you for telling me. I'm worried about your safety right now, and I'm glad you reached out.",
    "self_harm": "Thank you for trusting me with this. It sounds like you're going through something really painful.",
    "harm_to_others": "Thank you for being honest about this. It sounds like things feel overwhelming right now.",
    "abuse_or_danger": "Thank you for telling me. What you're describing sounds frightening, and it is not your fault.",
    None: "Thank you for telling me. It sounds like you're going through something really hard.",
}

WITHDRAWN_NOTE = "(The assistant's reply was withheld by the safety screen.)"


@dataclass(frozen=True)
class SafeResponsePolicy:
    """Builds the fixed reply for a locale; ``locales`` may be extended from a JSON file."""

    locale: str = DEFAULT_LOCALE
    locales: dict[str, LocaleResources] = field(default_factory=lambda: dict(LOCALES))

    def __post_init__(self) -> None:
        if self.locale.upper() not in self.locales:
            raise UserError(f"unknown locale {self.locale!r}", field="--locale",
                            fix=f"use one of {', '.join(sorted(self.locales))}, or add it with a policy file")
        object.__setattr__(self, "locale", self.locale.upper())

    @property
    def resources(self) -> LocaleResources:
        return self.locales[self.locale]

    def response(self, category: str | None = None, *, level: str | None = None, about_someone_else: bool = False) -> str:
        """The fixed reply for a flagged message of ``category`` (or a withdrawn reply). ``level``
        ``imminent`` puts the emergency number first; ``about_someone_else`` gives resources for
        helping the person at risk instead."""
        if about_someone_else:
            return self.helper_response(level)
        r = self.resources
        if level == "imminent":
            lines = [f"Please call {r.emergency} now, or ask someone near you to call. If you have taken something or "
                     "hurt yourself, tell them exactly what.", self._response_lines(category)]
            return "\n".join(lines)
        return self._response_lines(category)

    def helper_response(self, level: str | None = None) -> str:
        """For someone worried about another person at risk: how to help them, and where to get help."""
        r = self.resources
        danger = (f"If they are in immediate danger or may already have hurt themselves, call {r.emergency} now and "
                  "stay with them if it is safe to." if level in ("high", "imminent", None) else
                  f"If you think they are in immediate danger, call {r.emergency}.")
        lines = [
            "Thank you for looking out for them. It is right to take this seriously.",
            f"- {danger}",
            f"- You can {r.crisis_line}; crisis lines also help people who are worried about someone else.",
            "- Ask them directly whether they are thinking about suicide: asking does not put the idea in their head. "
            "Listen without judging, and help them contact a crisis line or their doctor.",
            "- If it is safe, help keep things they could use to hurt themselves out of reach.",
        ]
        if self.locale != "INT":
            lines.append(f"- Elsewhere, {DIRECTORY} lists crisis lines in other countries.")
        lines.append("How are you doing with all this? I'm here if you'd like to talk it through.")
        return "\n".join(lines)

    def resources_note(self, category: str | None = None, *, about_someone_else: bool = False) -> str:
        """The resources appended to a model reply to a moderate-risk message."""
        r = self.resources
        who = "for them or for you" if about_someone_else else "for you"
        note = (f"(If things feel unsafe {who}, you can {r.crisis_line}; in an emergency call {r.emergency}.")
        if category == "abuse_or_danger" and r.abuse_line:
            note += f" You can also contact {r.abuse_line}."
        return note + ")"

    def _response_lines(self, category: str | None) -> str:
        r = self.resources
        opening = OPENINGS.get(category, OPENINGS[None])
        if category == "harm_to_others":
            danger = f"If you feel you might act on these thoughts, or someone is in immediate danger, please call {r.emergency} now."
        elif category == "abuse_or_danger":
            danger = f"If you are in danger right now, please call {r.emergency}."
        else:
            danger = f"If you are in immediate danger or might act on these thoughts, please call {r.emergency} now."
        lines = [
            opening,
            "I'm an AI and not able to help in an emergency, but you don't have to go through this alone, "
            "and there are people who can help right now:",
            f"- {danger}",
            f"- You can {r.crisis_line}; talking to someone there is free and confidential.",
        ]
        if category == "abuse_or_danger" and r.abuse_line:
            lines.append(f"- You can also contact {r.abuse_line}.")
        lines += [f"- {line}" for line in r.extra]
        if self.locale != "INT":
            lines.append(f"- Elsewhere, {DIRECTORY} lists crisis lines in other countries.")
        lines.append("Are you safe right now? I'm here to keep listening if you'd like to tell me more about what's happening.")
        return "\n".join(lines)


def locale_from_env(locale: str | None = None) -> str:
    return locale or os.environ.get(LOCALE_ENV) or DEFAULT_LOCALE


def load_policy(locale: str | None = None, policy_file: str | os.PathLike | None = None) -> SafeResponsePolicy:
    """The policy for ``locale`` (argument, ``$THERAPY_ALIGN_LOCALE``, else ``INT``), with extra or
    replaced locales from a JSON file ``{"XX": {"name", "emergency", "crisis_line", "abuse_line"?}}``."""
    locales = dict(LOCALES)
    if policy_file is not None:
        path = Path(policy_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise UserError(f"cannot read ({err.strerror})", file=path, field="--policy") from None
        except json.JSONDecodeError as err:
            raise UserError(f"invalid JSON ({err.msg})", file=path, line=err.lineno, field="--policy") from None
        if not isinstance(data, dict):
            raise UserError("expected an object of locales", file=path, field="--policy")
        for code, spec in data.items():
            if not isinstance(spec, dict) or not all(isinstance(spec.get(k), str) and spec.get(k) for k in ("name", "emergency", "crisis_line")):
                raise UserError("each locale needs non-empty 'name', 'emergency' and 'crisis_line' strings",
                                file=path, field=str(code))
            locales[code.upper()] = LocaleResources(
                name=spec["name"], emergency=spec["emergency"], crisis_line=spec["crisis_line"],
                abuse_line=spec.get("abuse_line"), extra=tuple(spec.get("extra", ())))
    return SafeResponsePolicy(locale_from_env(locale), locales)


def safe_response(category: str | None = None, locale: str | None = None) -> str:
    """The fixed safe reply for ``category`` in ``locale`` (default ``$THERAPY_ALIGN_LOCALE`` or INT)."""
    return load_policy(locale).response(category)
