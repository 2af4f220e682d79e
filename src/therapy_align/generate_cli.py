"""`therapy-align generate` and `therapy-align sweep` (placeholder until generation lands)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the generation commands to the main app."""
