"""The Source interface and what every source shares: where files are looked for, the cache,
the download with its not-found errors, and the location `mlplab datasets` lists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlplab.data.dataset import Dataset
from mlplab.data.sources.base import (
    FetchOptions,
    Location,
    Source,
    cache_dir,
    download_missing,
    search_dirs,
)
from mlplab.errors import DataError, DownloadError


def test_search_dirs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path / "env"))
    assert search_dirs("mnist", "MNIST", tmp_path / "flag") == [
        tmp_path / "flag" / "mnist",
        tmp_path / "flag" / "MNIST" / "raw",
        tmp_path / "env" / "mnist",
        tmp_path / "env" / "MNIST" / "raw",
        Path("data/MNIST/raw"),
        Path(".data/MNIST/raw"),
        tmp_path / "cache" / "mnist",
    ]
    monkeypatch.delenv("MLPLAB_DATA_DIR")
    assert search_dirs("mnist", "MNIST")[0] == Path("data/MNIST/raw")


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == tmp_path / "cache"  # MLPLAB_CACHE_DIR, set for every test
    monkeypatch.delenv("MLPLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mlplab"


def test_fetch_options_default_to_loads_keywords() -> None:
    assert FetchOptions() == FetchOptions(download=True, mirror=None, verify=True)


LOOKED = [Path("a"), Path("b")]


def test_downloads_off_say_where_it_looked_and_try_nothing() -> None:
    def get(mirrors: tuple[str, ...]) -> Path:
        raise AssertionError("downloads are off: nothing may be fetched")

    with pytest.raises(DataError) as err:
        download_missing("toy", LOOKED, "put it there", FetchOptions(download=False), ("m/",), get)
    assert (
        str(err.value)
        == "dataset 'toy' not found (looked in a, b) and downloads are off; put it there"
    )
    assert not isinstance(err.value, DownloadError)


def test_mirror_given_then_environment_then_the_sources_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[tuple[str, ...]] = []

    def get(mirrors: tuple[str, ...]) -> Path:
        tried.append(mirrors)
        return Path("got")

    own = ("https://own/",)
    download_missing("toy", LOOKED, "", FetchOptions(), own, get)
    monkeypatch.setenv("MLPLAB_MIRROR", "http://env/")
    download_missing("toy", LOOKED, "", FetchOptions(), own, get)
    download_missing("toy", LOOKED, "", FetchOptions(mirror="http://given/"), own, get)
    assert tried == [own, ("http://env/",), ("http://given/",)]


def test_a_failed_download_is_one_line_with_the_fix() -> None:
    def get(mirrors: tuple[str, ...]) -> Path:
        raise DownloadError("tried m/x.gz (refused)")

    with pytest.raises(DownloadError) as err:
        download_missing("toy", LOOKED, "put x into c", FetchOptions(), ("m/",), get)
    assert str(err.value) == (
        "dataset 'toy' not found (looked in a, b) and tried m/x.gz (refused). "
        "Fix: put x into c, or set MLPLAB_MIRROR to a mirror you can reach"
    )


@dataclasses.dataclass(frozen=True)
class Toy(Source):
    """The least a source needs: where it is found, whether it downloads, how it loads."""

    name: str = "toy"
    description: str = "a toy"
    classes: tuple[str, ...] = ("a", "b")
    at: Path | None = None
    downloads: bool = True
    loads: list[FetchOptions] = dataclasses.field(default_factory=list)

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        return self.at

    @property
    def downloadable(self) -> bool:
        return self.downloads

    def _load(self, data_dir: str | Path | None, fetch: FetchOptions) -> Dataset:
        self.loads.append(fetch)
        raise DataError("not loaded")


def test_location_of_a_source_found_missing_or_not_downloadable(tmp_path: Path) -> None:
    assert Toy(at=tmp_path / "x").locate() == Location("found", str(tmp_path / "x"))
    assert Toy().locate() == Location("missing", f"downloads to {tmp_path / 'cache' / 'toy'}")
    assert Toy(downloads=False).locate() == Location(
        "missing", "not downloadable: see docs/formats.md"
    )


def test_load_hands_its_keywords_to_the_source() -> None:
    toy = Toy()
    for call in (lambda: toy.load(), lambda: toy.load(download=False, mirror="m", verify=False)):
        with pytest.raises(DataError, match="not loaded"):
            call()
    assert toy.loads == [FetchOptions(), FetchOptions(download=False, mirror="m", verify=False)]


def test_a_source_must_say_how_it_is_found_and_loaded() -> None:
    class Half(Source):
        def find(self, data_dir: str | Path | None = None) -> None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]
