"""One chat session: history, context trimming, streamed generation, and safety screening around it.

Screening happens here, in code, on both sides of the model, never in the prompt, so nothing a
user types ("ignore your instructions and ...") can switch it off:

* **input**: every user message goes through :func:`therapy_align.safety.detect_crisis` first (the
  rules, and the learned detector when one is loaded), and its risk level is read in the light of
  the conversation so far (:class:`therapy_align.safety.conversation.RiskState`: "I've decided.
  Tonight." after earlier hopelessness is imminent). What happens depends on the level:
  ``high`` and ``imminent`` never reach the model: the user gets the locale's fixed safe response
  (resources for helping them when the message is about someone else); the model's context holds
  only a placeholder (:data:`WITHHELD`) for that message, followed by the safe response as its own
  turn, so later replies follow on from it. The message itself is kept only in the transcript that
  ``/save`` writes. ``moderate`` reaches the model; its reply is screened against the message and
  crisis resources are appended. ``low`` reaches the model and is kept in the risk state only.
  After a message at moderate or above, replies are screened against it for the rest of the
  session, so a brush-off ("cheer up") counts as dismissal of risk, and later messages are checked
  with a lower bar.
* **output**: the reply streams through :class:`ScreenedStreamer`, which shows text only after the
  whole reply up to that point has passed :func:`therapy_align.safety.screen_reply` (so it appears
  a phrase or sentence at a time). When screening flags the reply, generation stops, the rest is
  withheld, the safe response is shown instead, and the event is counted; the model's context then
  holds the safe response as its turn, not the unsafe text.

Nothing a line or the model does ends the session: a model that raises while generating gives a
one-line note instead of a reply (with the resources a moderate message is owed), counted as
``generation_errors`` and left out of the model's later context; the terminal loop
(:func:`therapy_align.chat.cli.run_loop`) shows any other error on one line and reads on.

History is the system prompt plus the exchanges that reached the model, rendered with the model's
chat template (the project's Llama-2 one, or Gemma's, which folds the system prompt into the first
user turn) and opened for the model's reply; when it no longer fits the context window (minus the
room for the reply), the oldest exchanges are dropped, the system prompt always kept.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from therapy_align.errors import UserError
from therapy_align.evaluation.generation import GenerationSpec, generation_config
from therapy_align.safety import detect_crisis, screen_reply
from therapy_align.safety.conversation import RiskState
from therapy_align.safety.detector import normalize
from therapy_align.safety.levels import WITHHELD_LEVELS, at_least, higher
from therapy_align.safety.safe_reply import WITHDRAWN_NOTE, SafeResponsePolicy


class SaveRefused(UserError):
    """``/save`` given a path it will not write: a directory, or an existing file without force."""


DEFAULT_CONTEXT = 4096  # Llama-2 (paper §3), for a model whose config names no window
WITHHELD = "[message withheld by the safety screen]"
_BOUNDARY = re.compile(r"[.!?\n][\"')\]]*\s")


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    content: str
    safety: dict[str, Any] | None = None  # what screening decided, when it intervened
    model_content: str | None = None  # what the model sees instead of ``content`` (a withheld message)


@dataclass
class Reply:
    text: str  # what the user was shown in the end
    source: str  # "model" | "safe_response" (input withheld) | "withdrawn" (output flagged) | "too_long" | "error"
    verdict: Any = None
    level: str = "none"  # the risk level acted on (the message's, raised by the conversation)


@dataclass
class Counters:
    inputs_flagged: int = 0  # withheld from the model (high or imminent risk)
    inputs_with_resources: int = 0  # moderate risk: answered, with resources appended
    replies_withdrawn: int = 0
    model_calls: int = 0
    generation_errors: int = 0  # generation raised; the message got no reply (and its resources, if due)


def _stopping(flag: list[bool]):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenFlagged(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), flag[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenFlagged()])


def screened_streamer(tokenizer, *, emit: Callable[[str], None], context: str, min_chunk: int = 48):
    """A transformers ``TextStreamer`` that releases text only after screening the reply so far."""
    from transformers import TextStreamer

    class ScreenedStreamer(TextStreamer):
        def __init__(self) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.text = ""
            self.released = 0
            self.flag = [False]
            self.verdict = None

        def _release(self, upto: int) -> None:
            verdict = screen_reply(self.text[:upto], context=context)
            if verdict.flagged:
                self.flag[0], self.verdict = True, verdict
                return
            emit(self.text[self.released:upto])
            self.released = upto

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if self.flag[0]:
                return
            self.text += text
            if stream_end:
                if self.released < len(self.text.rstrip()) or not self.text.strip():
                    self._release(len(self.text))
                return
            pending = self.text[self.released:]
            ends = [m.end() for m in _BOUNDARY.finditer(pending)]
            if ends:
                self._release(self.released + ends[-1])
            elif len(pending) >= min_chunk and " " in pending.rstrip():
                self._release(self.released + pending.rstrip().rfind(" ") + 1)

    return ScreenedStreamer()


@dataclass
class ChatSession:
    """A multi-turn conversation with one model, screened on both sides.

    ``model``/``tokenizer`` are a causal LM and the project tokenizer (chat template set).
    ``generation`` holds the decoding knobs; ``generate_kwargs`` go to ``model.generate`` besides
    (constraints, in tests).
    """

    model: Any
    tokenizer: Any
    system_prompt: str | None
    policy: SafeResponsePolicy = field(default_factory=SafeResponsePolicy)
    generation: GenerationSpec = field(default_factory=GenerationSpec)  # the one set of decoding knobs
    context_window: int | None = None
    generate_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # saved with the transcript (model ref, prompt name)
    turns: list[Turn] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    crisis_context: str | None = None  # the last message at moderate risk or above (this session)
    learned: Any = None  # a therapy_align.safety.learned.LearnedDetector, or None for the rules alone
    risk: RiskState = field(default_factory=RiskState)

    def __post_init__(self) -> None:
        if self.context_window is None:
            config = getattr(self.model, "config", None)
            self.context_window = int(getattr(config, "max_position_embeddings", DEFAULT_CONTEXT) or DEFAULT_CONTEXT)
        if self.generation.max_new_tokens >= self.context_window:
            raise ValueError(f"max_new_tokens ({self.generation.max_new_tokens}) must be below the context window "
                             f"({self.context_window})")

    # ------------------------------------------------------------------ history

    def reset(self) -> None:
        self.turns.clear()
        self.crisis_context = None
        self.risk.reset()

    def model_messages(self, user_text: str) -> list[dict[str, str]]:
        """System prompt + the exchanges that fit + the new user message (oldest dropped first)."""
        exchanges = []
        for user, assistant in zip(self.turns[0::2], self.turns[1::2], strict=False):
            if (assistant.safety or {}).get("source") == "error":
                continue  # the model never answered it; an error note is no reply to learn from
            exchanges.append([{"role": "user", "content": user.model_content or user.content},
                              {"role": "assistant", "content": assistant.model_content or assistant.content}])
        head = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        current = [{"role": "user", "content": user_text}]
        budget = self.context_window - self.generation.max_new_tokens
        while True:
            messages = head + [m for exchange in exchanges for m in exchange] + current
            if len(self.prompt_ids(messages)) <= budget or not exchanges:
                return messages
            exchanges.pop(0)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        # The generation prompt opens the model's turn where the template has one (Gemma's
        # ``<start_of_turn>model``); Llama-2's template ends at ``[/INST]`` either way.
        encoded = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)

    # ------------------------------------------------------------------ one exchange

    def input_level(self, user_text: str) -> str:
        """The risk level :meth:`respond` would act on for ``user_text``, leaving the session as it was
        (for lines the chat may not send as a message, such as commands)."""
        verdict = detect_crisis(user_text, after_crisis=self.crisis_context is not None, learned=self.learned)
        level, _ = copy.deepcopy(self.risk).assess(normalize(user_text), verdict.level)
        return level

    def respond(self, user_text: str, emit: Callable[[str], None] = lambda s: None, *, floor: str = "none") -> Reply:
        """Screen ``user_text`` and act on its risk level (at least ``floor``: the level a caller found
        screening another reading of the same line); if it may reach the model, stream the model's
        screened reply through ``emit``. A model that raises gives a one-line note (and the resources
        when the message's level calls for them) instead of a reply; the session goes on."""
        verdict = detect_crisis(user_text, after_crisis=self.crisis_context is not None, learned=self.learned)
        level, raised = self.risk.assess(normalize(user_text), higher(verdict.level, floor))
        record = {**verdict.as_record(), "level": level, **({"crisis": True, "conversation": raised} if raised else {})}
        if level in WITHHELD_LEVELS:
            self.counters.inputs_flagged += 1
            text = self.policy.response(verdict.category, level=level, about_someone_else=verdict.about_someone_else)
            emit(text)
            self.crisis_context = user_text
            self.turns += [Turn("user", user_text, safety={"input": record}, model_content=WITHHELD),
                           Turn("assistant", text, safety={"source": "safe_response"})]
            return Reply(text, "safe_response", verdict, level)
        if at_least(level, "moderate"):
            self.crisis_context = user_text
        messages = self.model_messages(user_text)
        ids = self.prompt_ids(messages)
        if len(ids) > self.context_window - self.generation.max_new_tokens:
            text = (f"(That message is too long for this model's context window of {self.context_window} tokens; "
                    "please send a shorter one.)")
            emit(text)
            return Reply(text, "too_long", level=level)
        user_turn = Turn("user", user_text, safety={"input": record} if level != "none" else None)
        try:
            reply, flagged = self._generate(ids, user_text, emit)
        except Exception as error:  # any failure of the model ends this reply, not the session
            return self._generation_failed(error, user_turn, verdict, level, emit)
        if flagged is not None:
            self.counters.replies_withdrawn += 1
            text = self.policy.response(None)
            emit(("\n" if reply else "") + WITHDRAWN_NOTE + "\n" + text)
            self.turns += [user_turn, Turn("assistant", text, safety={"source": "withdrawn", "output": flagged.as_record()})]
            return Reply(text, "withdrawn", flagged, level)
        if at_least(level, "moderate"):
            self.counters.inputs_with_resources += 1
            note = self.policy.resources_note(verdict.category, about_someone_else=verdict.about_someone_else)
            emit(("\n" if reply else "") + note)
            self.turns += [user_turn, Turn("assistant", f"{reply}\n{note}".strip(), model_content=reply,
                                           safety={"source": "model_with_resources"})]
            return Reply(f"{reply}\n{note}".strip(), "model_with_resources", verdict, level)
        self.turns += [user_turn, Turn("assistant", reply)]
        return Reply(reply, "model", level=level)

    def _generation_failed(self, error: Exception, user_turn: Turn, verdict, level: str,
                           emit: Callable[[str], None]) -> Reply:
        self.counters.generation_errors += 1
        first = (str(error).strip().splitlines() or [""])[0][:200]
        text = f"(no reply: the model failed: {type(error).__name__}{': ' + first if first else ''}; please try again)"
        if at_least(level, "moderate"):  # the resources a moderate message is owed do not depend on the model
            text += "\n" + self.policy.resources_note(verdict.category, about_someone_else=verdict.about_someone_else)
        emit("\n" + text)
        self.turns += [user_turn, Turn("assistant", text, safety={"source": "error"})]
        return Reply(text, "error", verdict, level)

    def _generate(self, ids: list[int], user_text: str, emit: Callable[[str], None]):
        """(released reply text, the flagging ReplyVerdict or None)."""
        import torch

        context = f"{self.crisis_context} {user_text}" if self.crisis_context else user_text
        streamer = screened_streamer(self.tokenizer, emit=emit, context=context)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        kwargs = {"generation_config": generation_config(self.tokenizer, self.generation), **self.generate_kwargs}
        self.counters.model_calls += 1
        with torch.inference_mode():
            self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                                stopping_criteria=_stopping(streamer.flag), **kwargs)
        if not streamer.flag[0]:  # the whole reply, once more, now that it is complete
            final = screen_reply(streamer.text, context=context)
            if final.flagged:
                return streamer.text[:streamer.released], final
        return (streamer.text[:streamer.released] if streamer.flag[0] else streamer.text).strip(), streamer.verdict

    # ------------------------------------------------------------------ saving

    def transcript(self) -> dict[str, Any]:
        return {**self.meta, "system_prompt": self.system_prompt, "locale": self.policy.locale,
                "turns": [{"role": t.role, "content": t.content, **({"safety": t.safety} if t.safety else {})}
                          for t in self.turns],
                "safety_events": {"inputs_flagged": self.counters.inputs_flagged,
                                  "inputs_with_resources": self.counters.inputs_with_resources,
                                  "replies_withdrawn": self.counters.replies_withdrawn,
                                  "generation_errors": self.counters.generation_errors},
                "risk": {"reached": self.risk.level, "per_message": list(self.risk.levels)}}

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the transcript as JSON to ``path`` (atomically); an existing file is replaced only with
        ``force``, a directory never (:class:`SaveRefused`)."""
        from therapy_align.files import atomic_write_json

        path = Path(path)
        if path.is_dir() or path.name in ("", ".", ".."):
            raise SaveRefused("is a directory", file=path, fix=f"give a file name, e.g. /save {path / 'session.json'}")
        if path.exists() and not force:
            raise SaveRefused("exists; not replaced", file=path,
                              fix=f"/save {path} --force (or /save! {path}) replaces it, or choose another name")
        return atomic_write_json(path, self.transcript())
