"""Where the data and the tokenizer live.

Resolution order for every source: explicit argument -> environment variable ->
``../shared`` beside the checkout (or beside the working directory) -> upstream download into a
cache directory. Offline, the last step fails with an error that says how to get the files.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from therapy_align.errors import UserError

DATA_ENV = "THERAPY_ALIGN_DATA"
TOKENIZER_ENV = "THERAPY_ALIGN_TOKENIZER"
CACHE_ENV = "THERAPY_ALIGN_CACHE"

_REPO_ROOT = Path(__file__).resolve().parents[2]

# Upstream locations of each data file, relative to the data directory (pinned commits as in
# ../shared/README.md), used only when no local copy is found.
UPSTREAM = {
    "annomi/AnnoMI-full.csv": "https://raw.githubusercontent.com/uccollab/AnnoMI/4293664/AnnoMI-full.csv",
    "annomi/AnnoMI-simple.csv": "https://raw.githubusercontent.com/uccollab/AnnoMI/4293664/AnnoMI-simple.csv",
    "counsel_chat/counsel_chat.csv": "https://raw.githubusercontent.com/nbertagnolli/counsel-chat/e202e19/data/20220401_counsel_chat.csv",
    "epitome/emotional-reactions-reddit.csv": "https://raw.githubusercontent.com/behavioral-data/Empathy-Mental-Health/0e11f98/dataset/emotional-reactions-reddit.csv",
    "epitome/interpretations-reddit.csv": "https://raw.githubusercontent.com/behavioral-data/Empathy-Mental-Health/0e11f98/dataset/interpretations-reddit.csv",
    "epitome/explorations-reddit.csv": "https://raw.githubusercontent.com/behavioral-data/Empathy-Mental-Health/0e11f98/dataset/explorations-reddit.csv",
}


class DataNotFoundError(UserError, FileNotFoundError):
    """A data file (or the tokenizer) is neither local nor downloadable; the message says how to get it."""


def _shared_candidates() -> list[Path]:
    return [_REPO_ROOT.parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: argument, else $THERAPY_ALIGN_DATA, else ../shared/data, else the cache."""
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise DataNotFoundError("data directory does not exist", file=path, field="--data-dir",
                                    fix="pass the directory holding annomi/, epitome/, ...")
        return path
    if os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV])
        if not path.is_dir():
            raise DataNotFoundError("is not a directory", file=path, field=f"${DATA_ENV}",
                                    fix=f"unset ${DATA_ENV} or point it at the data directory")
        return path
    for shared in _shared_candidates():
        if (shared / "data").is_dir():
            return shared / "data"
    return cache_dir()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "therapy_align" / "data"))


def data_file(relative: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of one data file (e.g. ``annomi/AnnoMI-full.csv``), downloading it when not local."""
    path = resolve_data_dir(data_dir) / relative
    if path.is_file():
        return path
    url = UPSTREAM.get(relative)
    if url is None or data_dir is not None:
        raise DataNotFoundError(
            "not found", file=path,
            fix=f"put the file there, pass --data-dir, or set ${DATA_ENV} to a directory holding {relative}",
        )
    target = cache_dir() / relative
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        urllib.request.urlretrieve(url, tmp)
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise DataNotFoundError(
            f"not found, and downloading {url} failed ({err})", file=path,
            fix=f"Offline: copy the file to {path} or set ${DATA_ENV} to a directory holding it",
        ) from err
    tmp.replace(target)
    return target


TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")


def looks_local(ref: str) -> bool:
    """A reference meant as a local path (not a hub id ``owner/name``)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or Path(ref).expanduser().exists()


def check_tokenizer_ref(ref: str, *, field: str = "--tokenizer") -> str:
    """``ref`` unchanged when it is a hub id or a directory holding tokenizer files; else an error
    naming what is missing (before anything loads)."""
    if not looks_local(ref):
        return ref
    path = Path(ref).expanduser()
    if not path.exists():
        raise DataNotFoundError("no such tokenizer directory", file=ref, field=field,
                                fix="give a directory holding tokenizer.model or tokenizer.json, or a hub id")
    if not path.is_dir() or not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise DataNotFoundError(f"not a tokenizer directory (no {' or '.join(TOKENIZER_FILES)})", file=ref,
                                field=field, fix="give the directory of a saved tokenizer, or a hub id")
    return ref


def resolve_tokenizer(tokenizer: str | os.PathLike | None = None) -> str:
    """Tokenizer path or hub id: argument, else $THERAPY_ALIGN_TOKENIZER, else ../shared/tokenizers/llama-2.

    A local path that does not exist, or holds no tokenizer files, raises :class:`DataNotFoundError`."""
    if tokenizer is not None:
        return check_tokenizer_ref(str(tokenizer))
    if os.environ.get(TOKENIZER_ENV):
        return check_tokenizer_ref(os.environ[TOKENIZER_ENV], field=f"${TOKENIZER_ENV}")
    for shared in _shared_candidates():
        if (shared / "tokenizers" / "llama-2" / "tokenizer.model").is_file():
            return str(shared / "tokenizers" / "llama-2")
    # Users with hub access get the real chat tokenizer.
    return "meta-llama/Llama-2-7b-chat-hf"
