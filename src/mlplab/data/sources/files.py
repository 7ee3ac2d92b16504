"""Named datasets stored as one file or folder that a format reader reads: CIFAR-10 and USPS.

A :class:`FileSource` looks for any of its ``candidates`` (file or folder names) in the
folders of :func:`.base.search_dirs`, and also directly in ``data_dir``,
``$MLPLAB_DATA_DIR``, ``./data`` and ``./.data``, where torchvision leaves
``cifar-10-batches-py``. When none is found it downloads its archive into
``<cache>/<name>/``, checked against the published digest, or, with nothing to download
(USPS), says where to put the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError, FormatError
from ..cifar import CIFAR10_ARCHIVE, CIFAR10_CLASSES, CIFAR10_MD5, CIFAR10_URL, read_cifar
from ..dataset import Dataset
from ..download import download_file
from ..hdf5 import read_usps
from ..raw import RawSplits
from .base import (
    DIGIT_CLASSES,
    FetchOptions,
    Source,
    cache_dir,
    download_missing,
    not_found,
    search_dirs,
    verify_once,
)

__all__ = ["CIFAR10_SOURCE", "USPS_SOURCE", "FileSource"]


@dataclass(frozen=True)
class FileSource(Source):
    """A dataset read from one file or folder by a format reader; downloadable with ``url``."""

    name: str
    torchvision_name: str  # for the <dir>/<TorchvisionName>/raw layout of search_dirs
    description: str
    classes: tuple[str, ...]
    candidates: tuple[str, ...]  # names looked for in every search folder, in this order
    reader: Callable[[Path], RawSplits]
    url: str | None = None  # the archive downloaded into <cache>/<name>/ when nothing is found
    digest: str | None = None  # download_file's digest of that archive ("md5:<hex>")
    manual: str = ""  # what to put where by hand, for the not-found error

    def search_folders(self, data_dir: str | Path | None = None) -> list[Path]:
        roots = [data_dir, os.environ.get("MLPLAB_DATA_DIR"), "data", ".data"]
        folders = search_dirs(self.name, self.torchvision_name, data_dir)
        return folders + [Path(r).expanduser() for r in roots if r]

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        """The first candidate file or folder found, or None."""
        for folder in self.search_folders(data_dir):
            for candidate in self.candidates:
                if (folder / candidate).exists():
                    return folder / candidate
        return None

    @property
    def downloadable(self) -> bool:
        return bool(self.url and self.digest)

    def _load(self, data_dir: str | Path | None, fetch: FetchOptions) -> Dataset:
        path = self.find(data_dir)
        if path is None:
            path = self._download(data_dir, fetch)
        elif fetch.verify and self.url and self.digest and path.name == self._archive():
            verify_once(path, self.digest, self.name)
        raw = self.reader(path)
        if raw.test is None:
            raise FormatError(f"{path}: no test split; the {self.name} files have one")
        return self._dataset(raw.classes, str(path), raw.train, raw.test)

    def _archive(self) -> str:
        """The file name of the downloadable archive."""
        return (self.url or "").rsplit("/", 1)[-1]

    def _download(self, data_dir: str | Path | None, fetch: FetchOptions) -> Path:
        looked = self.search_folders(data_dir)
        target = cache_dir() / self.name
        how = self.manual.format(cache=target, name=self.name)
        if not self.url or not self.digest:
            raise DataError(f"{not_found(self.name, looked)}; {how}")
        base, digest = self.url.rsplit("/", 1)[0], self.digest

        def get(mirrors: tuple[str, ...]) -> Path:
            return download_file(self._archive(), digest, target, mirrors)

        return download_missing(self.name, looked, how, fetch, (base,), get)


CIFAR10_SOURCE = FileSource(
    name="cifar10",
    torchvision_name="CIFAR10",
    description="CIFAR-10 photos, 32x32 RGB, 50,000 train / 10,000 test, 10 classes "
    "(Krizhevsky 2009)",
    classes=CIFAR10_CLASSES,
    candidates=(
        "cifar-10-batches-bin",
        "cifar-10-batches-py",
        CIFAR10_ARCHIVE,
        "cifar-10-python.tar.gz",
    ),
    reader=read_cifar,
    url=CIFAR10_URL,
    digest=f"md5:{CIFAR10_MD5}",
    manual=(
        f"put {CIFAR10_ARCHIVE} (or cifar-10-batches-bin/ or cifar-10-batches-py/) into "
        "{cache}, or into <dir>/{name}/ and pass --data-dir <dir> or set MLPLAB_DATA_DIR=<dir>"
    ),
)

USPS_SOURCE = FileSource(
    name="usps",
    torchvision_name="USPS",
    description="USPS zip-code digits, 16x16 gray, 7,291 train / 2,007 test (Hull 1994; usps.h5)",
    classes=DIGIT_CLASSES,
    candidates=("usps.h5",),
    reader=read_usps,
    manual=(
        "it is not downloaded automatically: put usps.h5 (groups train/ and test/ with data "
        "N x 256 and target N) into {cache}, or into <dir>/{name}/ and pass --data-dir <dir> "
        "or set MLPLAB_DATA_DIR=<dir>"
    ),
)
