"""Studies of the real small model (Gemma 3 270M): held-out loss, replies side by side, multi-turn
intervals. Findings: docs/results.md."""

from __future__ import annotations

from pathlib import Path


def emit(text: str, target: Path | None) -> str:
    """Print a study's markdown and, when asked, write it to ``target`` as well."""
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    print(text)
    return text
