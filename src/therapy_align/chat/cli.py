"""The `therapy-align chat` command: a terminal loop around :class:`~therapy_align.chat.session.ChatSession`.

    therapy-align chat --model tiny-base                 # CPU, random tiny model: checks the machinery
    therapy-align chat --model runs/small-sft-annomi80   # CPU: Gemma 3 270M after `recipes/sft_paper.py --preset small`
    therapy-align chat --model gemma-3-270m --max-new-tokens 64   # CPU: the base Gemma (not instruction-tuned)
    therapy-align chat --model runs/sft-annomi80 --prompt new --locale UK

Commands inside the chat: ``/reset`` (forget the conversation), ``/save FILE`` (write the
transcript as JSON; an existing file only with ``/save FILE --force`` or ``/save! FILE``), ``/help``,
``/quit`` (or end of input). Input may be piped (one message per line).

Every line is screened before anything else is done with it, commands included; a line starting
with "/" that is no command is a message like any other. Bytes that are not UTF-8 are read as the
replacement character, and an error while handling a line is shown on one line: the session and its
transcript go on.
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
Commands: /reset  /save FILE  /help  /quit
"""
HELP = ("commands: /reset (start over), /save FILE (write the transcript as JSON; an existing file is "
        "replaced only with /save FILE --force or /save! FILE), /help (this), /quit (or end of input). "
        "Any other line, even one starting with /, is a message to the assistant.")
COMMANDS = ("/reset", "/save", "/save!", "/help", "/quit")
FORCE_FLAG = "--force"


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
    replace_bad_bytes(out)
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

    replace_bad_bytes(stdin)
    while True:
        if interactive:
            out.write("\nyou> ")
            out.flush()
        try:
            line = stdin.readline()
        except UnicodeDecodeError:  # a stream that could not be told to replace bad bytes
            out.write("(that line was not readable text; please type it again)\n")
            continue
        if not line:
            out.write("\n")
            break
        text = line.strip()
        if not text:
            continue
        try:
            if handle_line(session, text, out, emit, interactive=interactive) == "/quit":
                break
        except Exception as error:  # one bad line must not end the session (or lose its transcript)
            out.write(f"\n(error: {_one_line(error)}; the conversation goes on)\n")
            out.flush()
    out.write("goodbye. If things get hard, please reach out to someone you trust or a crisis line.\n")
    out.flush()


def replace_bad_bytes(stream) -> None:
    """Make a text stream use U+FFFD for bytes its encoding cannot read (a Windows-1252 paste on stdin)
    and ``?`` for characters it cannot write (a terminal that is not UTF-8), where the stream can be
    reconfigured (``sys.stdin``/``sys.stdout`` can)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="replace")
        except (OSError, ValueError):  # a closed or already-read stream keeps its decoder
            pass


def handle_line(session, text: str, out, emit, *, interactive: bool = False) -> str | None:
    """Act on one non-empty line; returns the command run, if any. The safety screen comes first for
    every line: a command line that the screen withholds (``/save I'm going to end it tonight``) is
    answered with the safe response and the command is not run (except ``/quit``, which still ends)."""
    from therapy_align.safety.levels import WITHHELD_LEVELS, higher

    command, _, argument = text.partition(" ")
    name = command.lower()
    if not text.startswith("/"):
        _answer(session, text, out, emit, interactive=interactive)  # respond() screens before anything else
        return None
    # The line is screened whole and without its first word: a leading "/word" must not change how
    # the words after it are read (the detector reads some words, "quit" among them, as negation).
    level = session.input_level(text)
    if argument.strip():
        level = higher(level, session.input_level(argument))
    withheld = level in WITHHELD_LEVELS
    if withheld or name not in COMMANDS:
        note = None if withheld else f"({command} is not a command; it goes to the assistant as a message. /help lists the commands)"
        _answer(session, text, out, emit, interactive=interactive, note=note, floor=level)
        return "/quit" if name == "/quit" else None
    if name == "/quit":
        return name
    if name == "/reset":
        session.reset()
        out.write("(conversation cleared)\n")
    elif name == "/help":
        out.write(HELP + "\n")
    else:
        _save(session, argument, out, force=name == "/save!")
    return name


def _save(session, argument: str, out, *, force: bool) -> None:
    from therapy_align.chat.session import SaveRefused

    target = argument.strip()
    if target == FORCE_FLAG or target.endswith(" " + FORCE_FLAG) or target.startswith(FORCE_FLAG + " "):
        force = True
        target = target.removeprefix(FORCE_FLAG).removesuffix(FORCE_FLAG).strip()
    if not target:
        out.write("usage: /save FILE (an existing FILE is replaced only with /save FILE --force)\n")
        return
    if target.endswith(("/", "\\")):
        out.write(f"(not saved: {target} names a directory; give a file name, e.g. /save {target}session.json)\n")
        return
    try:
        path = session.save(Path(target).expanduser(), force=force)
    except SaveRefused as refused:
        out.write(f"(not saved: {refused})\n")
        return
    except (OSError, ValueError) as err:
        out.write(f"(could not save: {_one_line(err)})\n")
        return
    out.write(f"(saved {len(session.turns)} turns to {path})\n")


def _answer(session, text: str, out, emit, *, interactive: bool, note: str | None = None, floor: str = "none") -> None:
    if not interactive:
        out.write(f"\nyou> {text}\n")
    if note:
        out.write(note + "\n")
    out.write("assistant> ")
    out.flush()
    session.respond(text, emit, floor=floor)
    out.write("\n")
    out.flush()


def _one_line(error: BaseException) -> str:
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
