"""The shared shape of the commands that read out trained artifacts' own test splits
(`empeval.epitome_protocol`, `empeval.ceiling`): one or more `--model DIR`, an optional `--json`
file written atomically (its path checked before any scoring), a Markdown table on stdout."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable


def read_out_command(argv: list[str] | None, description: str, read_one: Callable[[Path, argparse.Namespace], dict],
                     markdown: Callable[[list[dict]], str], *,
                     add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                     refuse: Callable[[argparse.Namespace], str | None] | None = None) -> list[dict]:
    """`read_one(model, args)` per `--model`. `add_arguments` adds a command's own options;
    `refuse(args)` returns why they cannot run (a usage error before any work) or None."""
    from therapy_align.files import atomic_write_json, check_output_path

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, action="append", required=True, help="an artifact (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the read-outs here")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    problem = refuse(args) if refuse is not None else None
    if problem:
        parser.error(problem)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = check_output_path(args.json, kind="file") if args.json else None
    results = [read_one(model, args) for model in args.model]
    if out is not None:
        atomic_write_json(out, results)
    print(markdown(results))
    return results
