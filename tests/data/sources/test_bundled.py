"""Bundled sources (scikit-learn's digits and make-regression): fixed splits, offline."""

from __future__ import annotations

from pathlib import Path

import torch

from mlplab import load_dataset
from mlplab.data.sources import DATASETS, Location


def test_digits_bundled_fixed_split() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert (len(a.train), len(a.test)) == (1347, 450)
    assert a.image_shape == (1, 8, 8) and a.train.images.max() == 255
    assert torch.equal(a.test.labels, b.test.labels) and torch.equal(a.train.images, b.train.images)
    assert torch.bincount(a.test.labels).min() >= 43  # stratified: every class 43-46 times
    assert a.origin == "bundled with scikit-learn" and a.reload == {"dataset": "digits"}


def test_make_regression_is_a_fixed_one_feature_regression() -> None:
    data = load_dataset("make-regression")
    assert data.task == "regression" and data.classes == ()
    assert (len(data.train), len(data.test)) == (400, 100)
    assert data.train.images.shape == (400, 1, 1, 1) and data.train.labels.dtype == torch.float32
    assert torch.equal(data.test.labels, load_dataset("make-regression").test.labels)


def test_bundled_sources_are_bundled_wherever_the_data_dir_points(tmp_path: Path) -> None:
    for name in ("digits", "make-regression"):
        source = DATASETS[name]
        assert not source.downloadable
        assert source.locate(tmp_path / "nowhere") == Location(
            "bundled", "bundled with scikit-learn"
        )
