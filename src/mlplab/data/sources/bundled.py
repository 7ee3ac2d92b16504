"""Datasets that an installed package makes (scikit-learn): they work offline anywhere.

The digits and the one-feature regression set ship with no test split, so each has a fixed,
seeded one: the test set must not move with the user's seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from .base import DIGIT_CLASSES, Arrays, FetchOptions, Location, Source

__all__ = ["DIGITS_SOURCE", "MAKE_REGRESSION_SOURCE", "BundledSource"]

BUNDLED = "bundled with scikit-learn"


@dataclass(frozen=True)
class BundledSource(Source):
    """A dataset made by an installed package (scikit-learn): works offline anywhere."""

    name: str
    description: str
    classes: tuple[str, ...]
    make: Callable[[], tuple[Arrays, Arrays]]  # () -> (train, test)
    task: str = "classification"

    def find(self, data_dir: str | Path | None = None) -> str:
        return BUNDLED

    @property
    def downloadable(self) -> bool:
        return False  # nothing to download: the package makes it

    def locate(self, data_dir: str | Path | None = None) -> Location:
        return Location("bundled", BUNDLED)

    def _load(self, data_dir: str | Path | None, fetch: FetchOptions) -> Dataset:
        train, test = self.make()
        return self._dataset(self.classes, BUNDLED, train, test)


def _digits() -> tuple[Arrays, Arrays]:
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


def _make_regression() -> tuple[Arrays, Arrays]:
    """The linear-regression course opener: one feature, noise 10, a fixed 80/20 split."""
    from sklearn.datasets import make_regression
    from sklearn.model_selection import train_test_split

    x, y = make_regression(n_samples=500, n_features=1, noise=10, random_state=0)
    x = x.astype(np.float32)[:, :, None, None]  # one feature = one channel of a 1x1 "image"
    tr_x, te_x, tr_y, te_y = train_test_split(
        x, y.astype(np.float32), test_size=0.2, random_state=0
    )
    return (tr_x, tr_y), (te_x, te_y)


DIGITS_SOURCE = BundledSource(
    name="digits",
    description="scikit-learn's 8x8 digits (UCI), 1,797 images, fixed 75/25 split; "
    "offline anywhere",
    classes=DIGIT_CLASSES,
    make=_digits,
)

MAKE_REGRESSION_SOURCE = BundledSource(
    name="make-regression",
    description="scikit-learn's make_regression(500 samples, 1 feature, noise 10, seed 0): "
    "the linear-regression opener, fixed 80/20 split",
    classes=(),
    make=_make_regression,
    task="regression",
)
