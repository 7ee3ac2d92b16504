"""Datasets as uint8 tensors: sources and formats in, :class:`Dataset` out.

``load_dataset("mnist")`` finds (or downloads) the files and returns the official train
and test splits as uint8 image tensors ``(N, C, H, W)`` and int64 labels; the seeded
train/validation split and the normalization statistics come from :mod:`.splits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .sources import DATASETS, get_source
from .splits import Normalization, split_train_val

__all__ = ["DATASETS", "Dataset", "Normalization", "Split", "load_dataset", "split_train_val"]


@dataclass(frozen=True)
class Split:
    """Images as uint8 ``(N, C, H, W)`` and labels as int64 ``(N,)``, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 of shape (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: slice | torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    """A dataset's official train and test splits, its class names, and where it came from."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    origin: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"Dataset('{self.name}', train={len(self.train)}, test={len(self.test)}, "
            f"image={c}x{h}x{w}, classes={len(self.classes)}, origin='{self.origin}')"
        )


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
) -> Dataset:
    """Load a dataset's train and test splits as uint8 tensors (CPU).

    Files are looked for in ``data_dir``, ``$MLPLAB_DATA_DIR``, the torchvision tutorial
    folders and the user cache, and downloaded into the cache when missing (see
    :mod:`mlplab.data.sources`).
    """
    source = get_source(name)
    raw = source.load(data_dir, download=download, mirror=mirror)
    return Dataset(
        name=name,
        train=Split(torch.from_numpy(raw.train_images), torch.from_numpy(raw.train_labels)),
        test=Split(torch.from_numpy(raw.test_images), torch.from_numpy(raw.test_labels)),
        classes=source.classes,
        origin=raw.origin,
    )
