"""Named system prompts. ``standard`` and ``new`` are the paper's two (§4), verbatim."""

from __future__ import annotations

from pathlib import Path

# Paper §4, "The standard sys prompt" (Llama-2-chat's default system prompt).
STANDARD = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially "
    "unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of "
    "answering something not correct. If you don't know the answer to a question, please don't "
    "share false information."
)

# Paper §4: the "New" prompt "was based on the standard and had an extension".
NEW_EXTENSION = (
    "You must answer in an empathic way and help the user explore what he is feeling by asking "
    "meaningful questions, be aware of what the user is feeling and provide complete and "
    "well-thought-out responses without truncation."
)
NEW = STANDARD + "\n\n" + NEW_EXTENSION

SYSTEM_PROMPTS: dict[str, str] = {"standard": STANDARD, "new": NEW}


def get_system_prompt(name_or_file: str) -> str:
    """A registered prompt by name, or the text of a file path."""
    if name_or_file in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[name_or_file]
    path = Path(name_or_file)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    raise KeyError(
        f"unknown system prompt {name_or_file!r}: not a file, and not one of "
        f"{', '.join(sorted(SYSTEM_PROMPTS))}"
    )
