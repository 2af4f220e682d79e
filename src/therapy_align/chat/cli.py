"""The `therapy-align chat` command: a terminal loop around :class:`~therapy_align.chat.session.ChatSession`.

    therapy-align chat --model tiny-base                 # CPU, random tiny model: checks the machinery
    therapy-align chat --model runs/small-sft-annomi80   # CPU: Gemma 3 270M after `recipes/sft_paper.py --preset small`
    therapy-align chat --model gemma-3-270m --max-new-tokens 64   # CPU: the base Gemma (not instruction-tuned)
    therapy-align chat --model runs/sft-annomi80 --prompt new --locale UK

Commands inside the chat: ``/reset`` (forget the conversation), ``/save FILE`` (write the
transcript as JSON), ``/quit`` (or end of input). Input may be piped (one message per line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from therapy_align.errors import UserError, exit_on_user_error
from therapy_align.evaluation.cli import with_spec_options
from therapy_align.evaluation.generation import GenerationSpec

BANNER = """\
therapy_align chat -- a research prototype, NOT a substitute for professional care.
It cannot help in an emergency. If you are in danger or thinking about harming yourself or someone
else, call your local emergency number{emergency} or a crisis line{crisis}.
Nothing you type is stored or sent anywhere unless you /save it.
Commands: /reset  /save FILE  /quit
"""
HELP = "commands: /reset (start over), /save FILE (write the transcript as JSON), /quit"


@with_spec_options(GenerationSpec, "generation")  # --max-new-tokens, --do-sample, --temperature, ...
@exit_on_user_error
def chat(
    model: Annotated[str, typer.Option(help="a registered model (base, tiny-base, gemma-3-270m), a model "
                                                "directory or runs/<sft or rl run>")] = "tiny-base",
    prompt: Annotated[str, typer.Option(help="System prompt: a registered name (standard, new, ...) or a file.")] = "new",
    locale: Annotated[Optional[str], typer.Option(help="Crisis resources: US, UK, IE, CA, AU or INT (default $THERAPY_ALIGN_LOCALE or INT).")] = None,
    policy: Annotated[Optional[Path], typer.Option(help="JSON file adding or replacing locales' crisis resources.")] = None,
    detector: Annotated[Optional[Path], typer.Option(help="Learned crisis detector (default artifacts/safety when "
                                                     "present, else the rules alone).")] = None,
    generation: GenerationSpec = GenerationSpec(),
) -> None:
    """Talk with a model in the terminal: streamed replies, screened input and output, crisis resources."""
    from therapy_align.data.system_prompts import get_system_prompt
    from therapy_align.safety.safe_reply import load_policy

    safe_policy = load_policy(locale, policy)
    try:
        system_prompt = get_system_prompt(prompt)
    except KeyError as err:
        raise UserError(str(err.args[0]), field="--prompt") from None
    out = sys.stdout
    r = safe_policy.resources
    out.write(BANNER.format(emergency=f" ({r.emergency})" if r.emergency[0].isdigit() else "",
                            crisis=f": {r.crisis_line}" if safe_policy.locale != "INT" else f" ({r.crisis_line})"))
    out.write(f"loading {model} and the safety layer ...\n")
    out.flush()
    from therapy_align.safety.learned import load_if_present

    learned, which = load_if_present(detector)
    out.write(which + "\n")
    session = _load_session(model, system_prompt, safe_policy, generation)
    session.learned = learned
    session.meta.update({"model": model, "prompt": prompt})
    run_loop(session, sys.stdin, out, interactive=sys.stdin.isatty())


def _load_session(model_ref, system_prompt, policy, generation: GenerationSpec):
    import logging

    import torch
    from transformers.utils import logging as hf_logging

    from therapy_align.chat.session import ChatSession
    from therapy_align.evaluation.generation import end_replies_at_turn_end
    from therapy_align.safety.semantic import message_bank, reply_bank
    from therapy_align.training.models import ModelReferenceError, load_model_for_inference

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        lm, tokenizer = load_model_for_inference(model_ref)
    except ModelReferenceError as err:
        raise UserError(str(err), field="--model") from None
    except OSError as err:  # e.g. a hub id with no network or no access
        raise UserError(f"cannot load {model_ref!r} ({str(err).splitlines()[0]})", field="--model",
                        fix="give tiny-base, gemma-3-270m, a local model directory or a runs/<name> directory") from None
    lm, tokenizer = end_replies_at_turn_end(lm, tokenizer)  # a base Gemma's reply ends at <end_of_turn>, not <eos>
    message_bank(), reply_bank()  # load MiniLM now, not at the first message
    torch.manual_seed(generation.seed)
    return ChatSession(lm, tokenizer, system_prompt, policy, generation=generation)


def _printable(text: str) -> str:
    """Model text without control characters (a random model emits raw bytes such as NUL)."""
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def run_loop(session, stdin, out, *, interactive: bool = False) -> None:
    """Read messages and commands from ``stdin`` until /quit or end of input."""

    def emit(text: str) -> None:
        out.write(_printable(text))
        out.flush()

    while True:
        if interactive:
            out.write("\nyou> ")
            out.flush()
        line = stdin.readline()
        if not line:
            out.write("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            command, _, argument = text.partition(" ")
            if command == "/quit":
                break
            if command == "/reset":
                session.reset()
                out.write("(conversation cleared)\n")
            elif command == "/save":
                if not argument.strip():
                    out.write("usage: /save FILE\n")
                    continue
                try:
                    path = session.save(Path(argument.strip()).expanduser())
                    out.write(f"(saved {len(session.turns)} turns to {path})\n")
                except OSError as err:
                    out.write(f"(could not save: {err})\n")
            else:
                out.write(HELP + "\n")
            continue
        if not interactive:
            out.write(f"\nyou> {text}\n")
        out.write("assistant> ")
        out.flush()
        session.respond(text, emit)
        out.write("\n")
        out.flush()
    out.write("goodbye. If things get hard, please reach out to someone you trust or a crisis line.\n")
    out.flush()
