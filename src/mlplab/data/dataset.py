"""The in-memory form of every dataset: uint8 image tensors and int64 labels per split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import DataError

__all__ = ["TASKS", "Dataset", "Split"]


TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Split:
    """Images as uint8 ``(N, C, H, W)`` and labels as int64 ``(N,)``, on one device.

    Tabular data (regression on a CSV's columns) uses float32 "images" ``(N, F, 1, 1)``:
    each feature is a channel, so per-channel normalization standardizes each feature;
    its targets are float32.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype not in (torch.uint8, torch.float32) or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (or float32 features) of shape (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
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
    # how load_dataset() gets it again ({"dataset": name, ...}); None: built in memory
    reload: dict[str, Any] | None = None
    task: str = "classification"  # or "regression": float targets, no classes

    def __post_init__(self) -> None:
        """Whatever the source: integer labels within the classes, one image shape."""
        if self.task not in TASKS:
            raise DataError(
                f"dataset '{self.name}': task must be one of {', '.join(TASKS)}; got '{self.task}'"
            )
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            shape = lambda s: "x".join(map(str, s.images.shape[1:]))  # noqa: E731
            raise DataError(
                f"dataset '{self.name}' ({self.origin}): train images are {shape(self.train)} "
                f"but test images are {shape(self.test)}; both splits need one shape (C x H x W)"
            )
        if self.task == "regression":
            for split_name, split in (("train", self.train), ("test", self.test)):
                if not split.labels.is_floating_point() or not bool(split.labels.isfinite().all()):
                    raise DataError(
                        f"dataset '{self.name}' ({self.origin}): {split_name} targets must be finite numbers"
                    )
            return
        k = len(self.classes)
        for split_name, split in (("train", self.train), ("test", self.test)):
            labels = split.labels
            if labels.is_floating_point() or labels.dtype == torch.bool:
                raise DataError(
                    f"dataset '{self.name}' ({self.origin}): {split_name} labels must be integers "
                    f"0..{k - 1}, got {labels.dtype}"
                )
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= k):
                bad = int(((labels < 0) | (labels >= k)).nonzero()[0])
                raise DataError(
                    f"dataset '{self.name}' ({self.origin}): {split_name} label {int(labels[bad])} "
                    f"at index {bad} is outside 0..{k - 1} ({k} classes)"
                )

    def info(self) -> dict[str, Any]:
        """What a run records about the data it was trained on (``dataset.json``)."""
        return {
            "name": self.name,
            "origin": self.origin,
            "image_shape": list(self.image_shape),
            "classes": list(self.classes),
            "task": self.task,
            "reload": self.reload,
        }

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
        reload: dict[str, Any] | None = None,
        task: str = "classification",
    ) -> Dataset:
        """Wrap arrays as read by a source: uint8 (N, C, H, W) images and integer labels,
        or, for regression, float32 (N, F, 1, 1) features and float targets."""
        convert = (
            (lambda y: torch.from_numpy(y).float())
            if task == "regression"
            else (lambda y: torch.from_numpy(y).long())
        )
        return cls(
            name=name,
            train=Split(torch.from_numpy(train[0]), convert(train[1])),
            test=Split(torch.from_numpy(test[0]), convert(test[1])),
            classes=classes,
            origin=origin,
            reload=reload,
            task=task,
        )
