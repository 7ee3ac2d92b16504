"""What every named dataset is: the :class:`Source` interface, and where sources look for files.

The registry (:mod:`.registry`) holds sources of three kinds, each a :class:`Source`: IDX
files (:mod:`.idx`, the MNIST family), one file or folder read by a format reader
(:mod:`.files`, CIFAR-10 and USPS) and sets a package makes (:mod:`.bundled`). Each kind
imports only this module, and the registry imports the kinds.

Data-directory resolution for file-based datasets, first complete folder wins:

1. ``data_dir`` (``--data-dir`` / ``data.data_dir``): ``<dir>/<name>/`` or
   ``<dir>/<TorchvisionName>/raw/``
2. ``MLPLAB_DATA_DIR``: the same two layouts
3. the folders the torchvision tutorials leave behind: ``./data/<TorchvisionName>/raw``,
   ``./.data/<TorchvisionName>/raw``
4. the user cache: ``$MLPLAB_CACHE_DIR`` or ``$XDG_CACHE_HOME/mlplab`` or ``~/.cache/mlplab``,
   then ``<cache>/<name>/``; missing files are downloaded there.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError, DownloadError
from ..dataset import Dataset
from ..download import verify_local

__all__ = [
    "DIGIT_CLASSES",
    "Arrays",
    "FetchOptions",
    "Location",
    "Source",
    "cache_dir",
    "download_missing",
    "not_found",
    "search_dirs",
    "verify_once",
]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
VERIFIED = "verified.json"  # in the cache: local copies already checked against their digests

Arrays = tuple[np.ndarray, np.ndarray]  # (images or features, labels or targets) of one split


def cache_dir() -> Path:
    """The user cache that downloads go to."""
    if os.environ.get("MLPLAB_CACHE_DIR"):
        return Path(os.environ["MLPLAB_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mlplab"


def search_dirs(name: str, torchvision_name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for a dataset's files, in order (see the module docstring)."""
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get("MLPLAB_DATA_DIR")):
        if root:
            root = Path(root).expanduser()
            dirs += [root / name, root / torchvision_name / "raw"]
    dirs += [Path("data") / torchvision_name / "raw", Path(".data") / torchvision_name / "raw"]
    dirs.append(cache_dir() / name)
    return dirs


def verify_once(path: Path, digest: str, dataset: str) -> None:
    """Check a local copy against its published digest, remembered in the cache once passed."""
    verify_local(path, digest, dataset, cache_dir() / VERIFIED)


@dataclass(frozen=True)
class FetchOptions:
    """What :meth:`Source.load` may do about missing or unchecked files (its keywords)."""

    download: bool = True  # download missing files into the cache
    mirror: str | None = (
        None  # a base URL to download from; None: $MLPLAB_MIRROR, else the source's
    )
    verify: bool = True  # check local copies against their published digests (once per copy)


@dataclass(frozen=True)
class Location:
    """Where a dataset is, as ``mlplab datasets`` lists it."""

    status: str  # "found", "missing" or "bundled"
    where: str  # the file or folder found, where a download goes, or what to do by hand


def not_found(name: str, looked: list[Path]) -> str:
    """The opening of every not-found error: the dataset and each folder looked in."""
    return f"dataset '{name}' not found (looked in {', '.join(str(d) for d in looked)})"


def download_missing(
    name: str,
    looked: list[Path],
    how: str,
    fetch: FetchOptions,
    mirrors: tuple[str, ...],
    get: Callable[[tuple[str, ...]], Path],
) -> Path:
    """``get(mirrors)``: the downloaded file or folder, from ``fetch.mirror`` or
    ``$MLPLAB_MIRROR`` when set. When downloads are off or fail, the error names the folders
    ``looked`` in and ``how`` to put the files there by hand."""
    if not fetch.download:
        raise DataError(f"{not_found(name, looked)} and downloads are off; {how}")
    mirror = fetch.mirror or os.environ.get("MLPLAB_MIRROR")
    try:
        return get((mirror,) if mirror else mirrors)
    except DownloadError as exc:
        raise DownloadError(
            f"{not_found(name, looked)} and {exc}. Fix: {how}, "
            "or set MLPLAB_MIRROR to a mirror you can reach"
        ) from None


class Source(ABC):
    """A named dataset of the registry: it says where it is, and loads its official splits."""

    name: str
    description: str
    classes: tuple[str, ...]
    task: str = "classification"

    def load(
        self,
        data_dir: str | Path | None = None,
        *,
        download: bool = True,
        mirror: str | None = None,
        verify: bool = True,
    ) -> Dataset:
        """The official train and test splits as uint8 tensors (CPU).

        Files are looked for from ``data_dir`` on (see the module docstring), downloaded into
        the cache when missing (``download``; from ``mirror`` when given) and checked against
        their published digests the first time they are used (``verify``).
        """
        return self._load(data_dir, FetchOptions(download, mirror, verify))

    @abstractmethod
    def _load(self, data_dir: str | Path | None, fetch: FetchOptions) -> Dataset:
        """:meth:`load`'s work: find (or fetch) the files and read them."""

    @abstractmethod
    def find(self, data_dir: str | Path | None = None) -> Path | str | None:
        """Where the data is found now (a file or folder; a sentence when not on disk), or None."""

    @property
    @abstractmethod
    def downloadable(self) -> bool:
        """Whether :meth:`load` downloads what it does not find."""

    def locate(self, data_dir: str | Path | None = None) -> Location:
        """Where this dataset is: found (where), or missing (where a download goes, or why not)."""
        found = self.find(data_dir)
        if found is not None:
            return Location("found", str(found))
        if self.downloadable:
            return Location("missing", f"downloads to {cache_dir() / self.name}")
        return Location("missing", "not downloadable: see docs/formats.md")

    def _dataset(
        self, classes: tuple[str, ...], origin: str, train: Arrays, test: Arrays
    ) -> Dataset:
        # reload: what a run directory records so that the same dataset loads again
        return Dataset.from_numpy(
            self.name, classes, origin, train, test, reload={"dataset": self.name}, task=self.task
        )
