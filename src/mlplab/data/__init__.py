"""Datasets as uint8 tensors: sources and formats in, :class:`Dataset` out.

``load_dataset("mnist")`` finds (or downloads) the files and returns the official train
and test splits as uint8 image tensors ``(N, C, H, W)`` and int64 labels; the seeded
train/validation split and the normalization statistics come from :mod:`.splits`.
"""

from __future__ import annotations

from pathlib import Path

from .dataset import Dataset, Split
from .sources import DATASETS, get_source
from .splits import Normalization, split_train_val

__all__ = ["DATASETS", "Dataset", "Normalization", "Split", "load_dataset", "split_train_val"]


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    verify: bool = True,
) -> Dataset:
    """Load a dataset's train and test splits as uint8 tensors (CPU).

    Files are looked for in ``data_dir``, ``$MLPLAB_DATA_DIR``, the torchvision tutorial
    folders and the user cache, and downloaded into the cache when missing (see
    :mod:`mlplab.data.sources`). Local copies of known datasets are checked against their
    published checksums the first time they are used (``verify``); the check is remembered.
    """
    return get_source(name).load(data_dir, download=download, mirror=mirror, verify=verify)
