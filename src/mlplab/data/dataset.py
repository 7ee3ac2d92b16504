"""The in-memory form of every dataset: uint8 image tensors and int64 labels per split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "Split"]


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

    @classmethod
    def from_numpy(
        cls,
        name: str,
        classes: tuple[str, ...],
        origin: str,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray],
    ) -> Dataset:
        """Wrap arrays as read by a source (uint8 (N, C, H, W) images, integer labels)."""
        return cls(
            name=name,
            train=Split(torch.from_numpy(train[0]), torch.from_numpy(train[1]).long()),
            test=Split(torch.from_numpy(test[0]), torch.from_numpy(test[1]).long()),
            classes=classes,
            origin=origin,
        )
