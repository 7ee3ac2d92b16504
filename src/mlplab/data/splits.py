"""The seeded train/validation split and normalization statistics (training split only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from .dataset import Split

__all__ = ["Normalization", "split_train_val"]


def split_train_val(train: Split, val_size: float, seed: int) -> tuple[Split, Split]:
    """Hold out a seeded random ``val_size`` (fraction < 1, or count) of ``train``.

    The same ``seed`` and size always pick the same samples, whatever ``train.seed`` is.
    """
    n = len(train)
    n_val = round(val_size * n) if val_size < 1 else int(val_size)
    if not 0 <= n_val < n:
        raise ConfigError(
            f"data.val_size={val_size:g} holds out {n_val} of {n} training samples; "
            f"it must leave at least one for training (use a fraction such as 0.1)"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return train[order[n_val:].sort().values], train[order[:n_val].sort().values]


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``x = (pixel / 255 - mean) / std``; mean and std in [0, 1] pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: torch.Tensor, kind: str = "standard") -> Normalization:
        """Statistics of uint8 images ``(N, C, H, W)``: exact, from a 256-bin histogram."""
        channels = images.shape[1]
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
