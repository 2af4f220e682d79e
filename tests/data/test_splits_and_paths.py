import pytest

from therapy_align.paths import DATA_ENV, DataNotFoundError, data_file, resolve_data_dir
from therapy_align.data.splits import split_transcript_ids


def test_split_is_seeded_disjoint_and_order_free():
    ids = [str(i) for i in range(110)]
    train, heldout = split_transcript_ids(ids, seed=0)
    assert (len(train), len(heldout)) == (88, 22)
    assert not set(train) & set(heldout) and set(train) | set(heldout) == set(ids)
    assert split_transcript_ids(reversed(ids), seed=0) == (train, heldout)
    assert split_transcript_ids(ids, seed=1) != (train, heldout)


def test_argument_beats_environment(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "arg").mkdir()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"


def test_missing_file_in_explicit_dir_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"AnnoMI-full.csv: not found.*--data-dir.*THERAPY_ALIGN_DATA"):
        data_file("annomi/AnnoMI-full.csv", tmp_path)


def test_offline_download_fails_with_a_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(DATA_ENV, str(empty))
    monkeypatch.setenv("THERAPY_ALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlretrieve", _offline)
    with pytest.raises(DataNotFoundError, match=r"AnnoMI-simple.csv: not found, and downloading https://.*failed.*Offline: copy the file"):
        data_file("annomi/AnnoMI-simple.csv")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()], "no partial download left behind"


def _offline(url, filename):
    import urllib.error

    open(filename, "wb").write(b"partial")
    raise urllib.error.URLError("no network")
