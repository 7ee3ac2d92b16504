"""The seeded train/validation split and normalization statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlplab import Normalization, Split, load_dataset, split_train_val
from mlplab.data.splits import subset
from mlplab.errors import ConfigError


def numbered(n: int) -> Split:
    return Split(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))


def test_split_sizes_disjoint_and_complete() -> None:
    train, val = split_train_val(numbered(1000), 0.1, seed=0)
    assert (len(train), len(val)) == (900, 100)
    assert sorted(train.labels.tolist() + val.labels.tolist()) == list(range(1000))
    train, val = split_train_val(numbered(1000), 250, seed=0)
    assert (len(train), len(val)) == (750, 250)


def test_split_is_seeded() -> None:
    _, a = split_train_val(numbered(1000), 0.1, seed=0)
    _, b = split_train_val(numbered(1000), 0.1, seed=0)
    _, c = split_train_val(numbered(1000), 0.1, seed=1)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


def test_no_validation() -> None:
    train, val = split_train_val(numbered(10), 0, seed=0)
    assert (len(train), len(val)) == (10, 0)


def test_split_is_stratified() -> None:
    labels = torch.tensor([0] * 700 + [1] * 200 + [2] * 100)
    split = Split(torch.zeros(1000, 1, 1, 1, dtype=torch.uint8), labels)
    for seed in range(5):
        train, val = split_train_val(split, 0.1, seed=seed)
        assert torch.bincount(val.labels).tolist() == [70, 20, 10]
        assert torch.bincount(train.labels).tolist() == [630, 180, 90]


def test_limit_is_a_seeded_stratified_subset() -> None:
    labels = torch.tensor([0] * 500 + [1] * 300 + [2] * 200)
    split = Split(torch.arange(1000).to(torch.uint8).view(1000, 1, 1, 1), labels)
    a, b, c = subset(split, 100, 0), subset(split, 100, 0), subset(split, 100, 1)
    assert torch.bincount(a.labels).tolist() == [50, 30, 20]
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert subset(split, None, 0) is split and subset(split, 5000, 0) is split


def test_split_too_large() -> None:
    with pytest.raises(
        ConfigError,
        match="data.val_size=10 holds out 10 of 10 training samples; it must leave at least one",
    ):
        split_train_val(numbered(10), 10, seed=0)


def test_normalization_matches_numpy() -> None:
    images = torch.randint(0, 256, (50, 3, 5, 5), dtype=torch.uint8)
    norm = Normalization.fit(images)
    pixels = images.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(norm.mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(norm.std, pixels.std(axis=(0, 2, 3)), rtol=1e-12)
    scale, offset = norm.affine()
    x = images.float() * scale + offset
    expected = (pixels - pixels.mean(axis=(0, 2, 3))[:, None, None]) / pixels.std(axis=(0, 2, 3))[
        :, None, None
    ]
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_fixed_normalizations() -> None:
    images = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    for kind, expected in (("symmetric", [-1.0, 1.0]), ("none", [0.0, 1.0])):
        scale, offset = Normalization.fit(images, kind).affine()
        assert (images.float() * scale + offset).flatten().tolist() == pytest.approx(expected)


def test_mnist_statistics(mnist_dir: Path) -> None:
    data = load_dataset("mnist", mnist_dir)
    full = Normalization.fit(data.train.images)
    assert full.mean[0] == pytest.approx(0.130660, abs=1e-6)  # the published figures
    assert full.std[0] == pytest.approx(0.308108, abs=1e-6)
    train, val = split_train_val(data.train, 0.1, seed=0)
    assert (len(train), len(val)) == (54000, 6000)
    published = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(data.train.labels).tolist() == published
    val_counts = torch.bincount(val.labels, minlength=10)
    assert (val_counts + torch.bincount(train.labels, minlength=10)).tolist() == published
    # stratified: every class holds out its own tenth, to within the rounding of one sample
    assert ((val_counts - torch.tensor(published) / 10).abs() <= 1).all(), val_counts
    split_stats = Normalization.fit(train.images)
    assert split_stats.mean[0] == pytest.approx(0.1307, abs=5e-4) and split_stats.std[
        0
    ] == pytest.approx(0.3081, abs=5e-4)
    assert split_stats != full  # computed from the training split only


def test_a_feature_constant_in_training_is_centred_not_blown_up() -> None:
    """A tabular feature that never varies in training (a blank pixel column, a fixed flag)
    gets std 1, as scikit-learn's StandardScaler gives it: a later value 5 where training
    always had 3 is 2 after normalization, not 2e12."""
    features = torch.stack([torch.full((6,), 3.0), torch.arange(6.0)], 1).view(6, 2, 1, 1)
    scale, offset = Normalization.fit(features).affine()
    later = torch.tensor([5.0, 2.5]).view(2, 1, 1) / 255  # affine takes pixel/255 units
    x = later * 255 * scale + offset
    assert x.flatten().tolist() == pytest.approx([2.0, 0.0], abs=1e-6)
