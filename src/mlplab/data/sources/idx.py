"""Datasets stored as four IDX files (MNIST's layout): MNIST and Fashion-MNIST.

Each file is looked for, gzip or not, in the folders of :func:`.base.search_dirs`; a folder
counts only when it holds all four. Missing files are downloaded from the mirrors into
``<cache>/<name>/``, each checked against the SHA-256 of its decompressed content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DataError
from ..dataset import Dataset
from ..download import download_file
from ..idx import read_idx_pair
from .base import (
    DIGIT_CLASSES,
    FetchOptions,
    Source,
    cache_dir,
    download_missing,
    search_dirs,
    verify_once,
)

__all__ = ["FASHION_MNIST_SOURCE", "MNIST_SOURCE", "IdxSource"]


@dataclass(frozen=True)
class IdxSource(Source):
    """A dataset stored as four IDX files (MNIST's layout), downloadable from mirrors."""

    name: str
    torchvision_name: str  # for the <dir>/<TorchvisionName>/raw layout of search_dirs
    description: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    # split -> ((images file, SHA-256 of its decompressed content), (labels file, SHA-256))
    files: dict[str, tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=dict)

    def digests(self) -> list[tuple[str, str]]:
        """(file name, SHA-256 of its content) of every file, train first."""
        return [file for pair in self.files.values() for file in pair]

    def file_names(self) -> list[str]:
        return [name for name, _ in self.digests()]

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        """The first folder holding every file (gzip or not), or None."""
        for folder in search_dirs(self.name, self.torchvision_name, data_dir):
            if all(_existing(folder, f) for f in self.file_names()):
                return folder
        return None

    @property
    def downloadable(self) -> bool:
        return True  # from self.mirrors, or the mirror the user names

    def _load(self, data_dir: str | Path | None, fetch: FetchOptions) -> Dataset:
        folder = self.find(data_dir)
        if folder is None:
            folder = self._download(data_dir, fetch)
        if fetch.verify:
            for filename, sha256 in self.digests():
                verify_once(_present(folder, filename), sha256, self.name)
        arrays = {}
        for split, ((images_file, _), (labels_file, _)) in self.files.items():
            images, labels = read_idx_pair(
                _present(folder, images_file), _present(folder, labels_file), len(self.classes)
            )
            arrays[split] = (images[:, None] if images.ndim == 3 else images, labels)
        return self._dataset(self.classes, str(folder), arrays["train"], arrays["test"])

    def _download(self, data_dir: str | Path | None, fetch: FetchOptions) -> Path:
        target = cache_dir() / self.name
        how = (
            f"put {', '.join(self.file_names())} (gzip or not) into {target}, or into "
            f"<dir>/{self.name}/ and pass --data-dir <dir> or set MLPLAB_DATA_DIR=<dir>"
        )

        def get(mirrors: tuple[str, ...]) -> Path:
            for filename, sha256 in self.digests():
                if _existing(target, filename) is None:
                    download_file(filename + ".gz", sha256, target, mirrors)
            return target

        looked = search_dirs(self.name, self.torchvision_name, data_dir)
        return download_missing(self.name, looked, how, fetch, self.mirrors, get)


def _existing(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / filename, folder / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _present(folder: Path, filename: str) -> Path:
    """The file found or downloaded a moment ago (gzip or not)."""
    path = _existing(folder, filename)
    if path is None:  # removed since: say which file, not a TypeError
        raise DataError(f"{folder}: {filename} (gzip or not) is gone; it was there a moment ago")
    return path


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

MNIST_SOURCE = IdxSource(
    name="mnist",
    torchvision_name="MNIST",
    description="MNIST handwritten digits, 28x28 gray, 60,000 train / 10,000 test (CC BY-SA 3.0)",
    classes=DIGIT_CLASSES,
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files={
        "train": (
            (
                "train-images-idx3-ubyte",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            (
                "train-labels-idx1-ubyte",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
        ),
        "test": (
            (
                "t10k-images-idx3-ubyte",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
    },
)

FASHION_MNIST_SOURCE = IdxSource(
    name="fashion-mnist",
    torchvision_name="FashionMNIST",
    description="Fashion-MNIST clothing, 28x28 gray, 60,000 train / 10,000 test (MIT, Zalando SE)",
    classes=FASHION_CLASSES,
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    files={
        "train": (
            (
                "train-images-idx3-ubyte",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            (
                "train-labels-idx1-ubyte",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
        ),
        "test": (
            (
                "t10k-images-idx3-ubyte",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            (
                "t10k-labels-idx1-ubyte",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ),
    },
)
