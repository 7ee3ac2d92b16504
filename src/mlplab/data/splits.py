"""The seeded train/validation split and normalization statistics (training split only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import DataConfig
    from .dataset import Dataset, Split

__all__ = [
    "Normalization",
    "configured_splits",
    "run_splits",
    "split_train_val",
    "stratified_pick",
    "subset",
]


def stratified_pick(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` samples drawn at random (seeded) with each class in proportion.

    Every class gets ``k * count / n`` rounded by largest remainder (so the total is exactly
    ``k``); within a class the samples come from a seeded permutation. Returned sorted, so
    a subset keeps the source's order.
    """
    n = len(labels)
    labels = labels.to("cpu")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    if labels.is_floating_point():  # regression targets have no classes to keep in proportion
        return order[:k].sort().values
    _, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * k / n
    share = exact.floor().long()
    short = k - int(share.sum())
    if short:  # largest remainders first; ties broken at random (seeded)
        shuffled = torch.randperm(len(counts), generator=generator)
        rank = shuffled[torch.argsort((exact - share)[shuffled], descending=True, stable=True)]
        share[rank[:short]] += 1
    # A stable sort of the permutation by label puts each class's samples in seeded order.
    by_class = order[torch.argsort(labels[order], stable=True)]
    picks, start = [], 0
    for count, take in zip(counts.tolist(), share.tolist(), strict=True):
        picks.append(by_class[start : start + take])
        start += count
    return torch.cat(picks).sort().values if picks else torch.zeros(0, dtype=torch.long)


def subset(train: Split, limit: int | None, seed: int) -> Split:
    """A seeded, class-stratified ``limit`` samples of ``train`` (all of it when None)."""
    if limit is None or limit >= len(train):
        return train
    return train[stratified_pick(train.labels, limit, seed)]


def split_train_val(train: Split, val_size: float, seed: int) -> tuple[Split, Split]:
    """Hold out a seeded, class-stratified ``val_size`` (fraction < 1, or count) of ``train``.

    The same ``seed`` and size always pick the same samples, whatever ``train.seed`` is,
    and the validation split has the training split's class proportions.
    """
    n = len(train)
    n_val = round(val_size * n) if val_size < 1 else int(val_size)
    if not 0 <= n_val < n:
        raise ConfigError(
            f"data.val_size={val_size:g} holds out {n_val} of {n} training samples; "
            f"it must leave at least one for training (use a fraction such as 0.1)"
        )
    held_out = stratified_pick(train.labels, n_val, seed)
    keep = torch.ones(n, dtype=torch.bool)
    keep[held_out] = False
    return train[keep.nonzero().flatten()], train[held_out]


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``x = (pixel / 255 - mean) / std``; mean and std in [0, 1] pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: torch.Tensor, kind: str = "standard") -> Normalization:
        """Statistics of uint8 images ``(N, C, H, W)``: exact, from a 256-bin histogram."""
        channels = images.shape[1]
        if images.is_floating_point():  # tabular features, not pixels: see _fit_features
            return cls._fit_features(images, kind)
        if kind == "none":
            return cls((0.0,) * channels, (1.0,) * channels)
        if kind == "symmetric":
            return cls((0.5,) * channels, (0.5,) * channels)
        means, stds = [], []
        levels = torch.arange(256, dtype=torch.float64) / 255
        for c in range(channels):
            counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
            total = counts.sum()
            mean = (counts * levels).sum() / total
            var = (counts * (levels - mean) ** 2).sum() / total
            means.append(float(mean))
            stds.append(max(float(var.sqrt()), 1e-6))  # a blank channel must not divide by 0
        return cls(tuple(means), tuple(stds))

    @classmethod
    def _fit_features(cls, features: torch.Tensor, kind: str) -> Normalization:
        """Per-feature statistics of float features ``(N, F, 1, 1)``, stored in the same
        pixel/255 units as images' so that ``affine`` gives ``(value - mean) / std``."""
        if kind == "symmetric":
            raise ConfigError(
                "data.normalize=symmetric maps pixels 0..255 to [-1, 1]; tabular features "
                "need standard (per-feature mean and std) or none"
            )
        f = features.shape[1]
        if kind == "none":
            return cls((0.0,) * f, (1 / 255,) * f)
        values = features.double().transpose(0, 1).reshape(f, -1)
        mean, std = values.mean(1), values.std(1, correction=0)
        # a feature constant in training is centred, not scaled (scikit-learn's
        # StandardScaler does the same): dividing by a ~0 std would multiply any other value
        # it takes later by ~1e12
        std = torch.where(std > 1e-9 * (1 + mean.abs()), std, torch.ones_like(std))
        return cls(tuple((mean / 255).tolist()), tuple((std / 255).tolist()))

    def affine(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, offset) of shape (C, 1, 1) so that ``x = pixel * scale + offset``."""
        std = torch.tensor(self.std, dtype=torch.float32, device=device).view(-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        return 1 / (255 * std), -mean / std

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        return cls(tuple(d["mean"]), tuple(d["std"]))


def run_splits(
    data: Dataset, limit: int | None, val_size: float, split_seed: int
) -> tuple[Split, Split, Split]:
    """The (train, val, test) splits a run uses: the stratified ``limit`` subset of the
    official training split, its stratified validation hold-out, and the official test."""
    train, val = split_train_val(subset(data.train, limit, split_seed), val_size, split_seed)
    return train, val, data.test


def configured_splits(data: Dataset, section: DataConfig) -> tuple[Split, Split, Split]:
    """The (train, val, test) splits of ``data`` that a run with the ``data`` config
    ``section`` trains, validates and is scored on: training, lr-find, evaluate and the
    report all take them from here, so they are the same samples everywhere."""
    return run_splits(data, section.limit, section.val_size, section.split_seed)
