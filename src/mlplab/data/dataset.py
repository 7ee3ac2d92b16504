"""The in-memory form of every dataset: uint8 image tensors and int64 labels per split.

The label rules every classification dataset follows, whatever format it was read from,
live here (:func:`check_class_labels`): the readers' :class:`~mlplab.data.raw.RawSplits`
and :class:`Dataset` both call it, so HDF5, CIFAR, folders, CSV, npz and IDX data, and
datasets built in memory, are held to the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..files.limits import printable

__all__ = ["TASKS", "Dataset", "Split", "check_class_labels", "check_two_classes"]


def check_class_labels(
    where: str,
    classes: Sequence[str],
    labels: Mapping[str, np.ndarray | torch.Tensor],
    *,
    error: type[DataError] = DataError,
) -> None:
    """The label rules of classification: labels are class indices 0..K-1 (K = the number
    of class names), and the training split holds at least two classes.

    ``labels`` maps split names (``"train"``, ``"test"``) to integer arrays or tensors; the
    message starts with ``where`` (the file or dataset). One class cannot be told apart from
    nothing: a model trained on it learns a constant, so it is refused, naming the class.
    """
    k = len(classes)
    for split, values in labels.items():
        if not len(values):
            continue
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= k:
            mask = (values < 0) | (values >= k)
            index = int(
                np.argmax(np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask))
            )
            raise error(
                f"{where}: {split} label {int(values[index])} at index {index} is outside "
                f"0..{k - 1} ({k} classes)"
            )
    check_two_classes(where, labels.get("train"), lambda index: classes[index], error=error)


def check_two_classes(
    where: str,
    train: np.ndarray | torch.Tensor | None,
    name_of: Callable[[int], str] = str,
    *,
    error: type[DataError] = DataError,
) -> None:
    """Refuse training labels that are all one class (``name_of`` names a label)."""
    if train is None or not len(train) or int(train.min()) != int(train.max()):
        return
    only = int(train.min())
    name = printable(name_of(only))
    named = f"class {only}" if name == str(only) else f"class {only} ('{name}')"
    raise error(
        f"{where}: every training label is {named}, the only class found; classification "
        "needs at least two classes: add images of another class (or, to predict a number, "
        "use a CSV table with --target COLUMN)"
    )


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
        check_class_labels(
            f"dataset '{printable(self.name)}' ({printable(self.origin)})",
            self.classes,
            {"train": self.train.labels, "test": self.test.labels},
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
