"""Where datasets come from: the registry, where their files are looked for, how they load.

Data-directory resolution for file-based datasets, first complete folder wins:

1. ``data_dir`` (``--data-dir`` / ``data.data_dir``): ``<dir>/<name>/`` or ``<dir>/<TorchvisionName>/raw/``
2. ``MLPLAB_DATA_DIR``: the same two layouts
3. the folders the torchvision tutorials leave behind: ``./data/<TorchvisionName>/raw``,
   ``./.data/<TorchvisionName>/raw``
4. the user cache: ``$MLPLAB_CACHE_DIR`` or ``$XDG_CACHE_HOME/mlplab`` or ``~/.cache/mlplab``,
   then ``<cache>/<name>/``; missing files are downloaded there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError, DownloadError, did_you_mean
from ..dataset import Dataset
from ..download import download_file, verify_local
from ..idx import read_idx_pair
from .files import CIFAR10_SOURCE, USPS_SOURCE, FileSource

__all__ = ["DATASETS", "BundledSource", "IdxSource", "cache_dir", "get_source", "search_dirs"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


VERIFIED = "verified.json"  # in the cache: local copies already checked against their digests


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


@dataclass(frozen=True)
class IdxSource:
    """A dataset stored as four IDX files (MNIST's layout), downloadable from mirrors."""

    name: str
    torchvision_name: str
    description: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    # split -> ((images file, SHA-256 of its decompressed content), (labels file, SHA-256))
    files: dict[str, tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=dict)

    def file_names(self) -> list[str]:
        return [name for pair in self.files.values() for name, _ in pair]

    def find(self, data_dir: str | Path | None = None) -> Path | None:
        """The first folder holding every file (gzip or not), or None."""
        for folder in search_dirs(self.name, self.torchvision_name, data_dir):
            if all(_existing(folder, f) for f in self.file_names()):
                return folder
        return None

    def load(
        self,
        data_dir: str | Path | None = None,
        *,
        download: bool = True,
        mirror: str | None = None,
        verify: bool = True,
    ) -> Dataset:
        folder = self.find(data_dir)
        if folder is None:
            folder = self._download(data_dir, download, mirror)
        if verify:
            for pair in self.files.values():
                for filename, sha256 in pair:
                    verify_local(_existing(folder, filename), sha256, self.name,  # type: ignore[arg-type]
                                 cache_dir() / VERIFIED)  # fmt: skip
        arrays = {}
        for split, ((images_file, _), (labels_file, _)) in self.files.items():
            images, labels = read_idx_pair(
                _existing(folder, images_file), _existing(folder, labels_file), len(self.classes)
            )
            arrays[split] = (images[:, None] if images.ndim == 3 else images, labels)
        return Dataset.from_numpy(
            self.name, self.classes, str(folder), arrays["train"], arrays["test"],
            reload={"dataset": self.name},
        )  # fmt: skip

    def _download(self, data_dir: str | Path | None, download: bool, mirror: str | None) -> Path:
        looked = ", ".join(str(d) for d in search_dirs(self.name, self.torchvision_name, data_dir))
        target = cache_dir() / self.name
        how = (
            f"put {', '.join(self.file_names())} (gzip or not) into {target}, or into <dir>/{self.name}/ "
            "and pass --data-dir <dir> or set MLPLAB_DATA_DIR=<dir>"
        )
        if not download:
            raise DataError(
                f"dataset '{self.name}' not found (looked in {looked}) and downloads are off; {how}"
            )
        mirror = mirror or os.environ.get("MLPLAB_MIRROR")
        mirrors = (mirror,) if mirror else self.mirrors
        try:
            for pair in self.files.values():
                for filename, sha256 in pair:
                    if _existing(target, filename) is None:
                        download_file(filename + ".gz", sha256, target, mirrors)
        except DownloadError as exc:
            raise DownloadError(
                f"dataset '{self.name}' not found (looked in {looked}) and {exc}. "
                f"Fix: {how}, or set MLPLAB_MIRROR to a mirror you can reach"
            ) from None
        return target


@dataclass(frozen=True)
class BundledSource:
    """A dataset made by an installed package (scikit-learn): works offline anywhere."""

    name: str
    description: str
    classes: tuple[str, ...]
    make: Callable[[], tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]
    task: str = "classification"

    def find(self, data_dir: str | Path | None = None) -> str:
        return "bundled with scikit-learn"

    def load(
        self,
        data_dir: str | Path | None = None,
        *,
        download: bool = True,
        mirror: str | None = None,
        verify: bool = True,
    ) -> Dataset:
        train, test = self.make()
        return Dataset.from_numpy(self.name, self.classes, self.find(), train, test,
                                  reload={"dataset": self.name}, task=self.task)  # fmt: skip


def _digits() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 0..16 gray levels -> 0..255, so every dataset enters the pipeline as uint8
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    # A fixed, stratified 75/25 test split: the dataset ships none, and the test set
    # must not move with the user's seed.
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, labels, test_size=0.25, random_state=0, stratify=labels
    )
    return (tr_x, tr_y), (te_x, te_y)


def _make_regression() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The linear-regression course opener: one feature, noise 10, a fixed 80/20 split."""
    from sklearn.datasets import make_regression
    from sklearn.model_selection import train_test_split

    x, y = make_regression(n_samples=500, n_features=1, noise=10, random_state=0)
    x = x.astype(np.float32)[:, :, None, None]  # one feature = one channel of a 1x1 "image"
    tr_x, te_x, tr_y, te_y = train_test_split(
        x, y.astype(np.float32), test_size=0.2, random_state=0
    )
    return (tr_x, tr_y), (te_x, te_y)


def _existing(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / filename, folder / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return None


DATASETS: dict[str, IdxSource | BundledSource | FileSource] = {
    "mnist": IdxSource(
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
    ),
    "fashion-mnist": IdxSource(
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
    ),
    "digits": BundledSource(
        name="digits",
        description="scikit-learn's 8x8 digits (UCI), 1,797 images, fixed 75/25 split; offline anywhere",
        classes=DIGIT_CLASSES,
        make=_digits,
    ),
    "make-regression": BundledSource(
        name="make-regression",
        description="scikit-learn's make_regression(500 samples, 1 feature, noise 10, seed 0): "
        "the linear-regression opener, fixed 80/20 split",
        classes=(),
        make=_make_regression,
        task="regression",
    ),
}


DATASETS["usps"] = USPS_SOURCE
DATASETS["cifar10"] = CIFAR10_SOURCE


def get_source(name: str) -> IdxSource | BundledSource | FileSource:
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset '{name}'{did_you_mean(name, DATASETS)}; available: {', '.join(DATASETS)}"
        )
    return DATASETS[name]
