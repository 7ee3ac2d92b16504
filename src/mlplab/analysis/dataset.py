"""A dataset on its own, before any training: class balance, typical images, pixel statistics.

Every function takes a :class:`~mlplab.data.Split` (uint8 images, int64 labels) and returns
numpy arrays; :mod:`mlplab.report.explore` turns them into figures and a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Split
from ..errors import ConfigError

__all__ = [
    "Correlations",
    "channel_statistics",
    "class_counts",
    "class_means",
    "intensity_histogram",
    "pairwise_correlations",
    "samples_per_class",
]


def class_counts(split: Split, classes: int) -> np.ndarray:
    """int64 (K,): samples of each class."""
    return torch.bincount(split.labels.cpu(), minlength=classes).numpy().astype(np.int64)


def samples_per_class(split: Split, classes: int, per_class: int = 8, seed: int = 0) -> np.ndarray:
    """int64 (K, per_class): indices of ``per_class`` seeded random samples of each class
    (-1 where a class has fewer)."""
    rng = np.random.default_rng(seed)
    labels = split.labels.cpu().numpy()
    table = np.full((classes, per_class), -1, dtype=np.int64)
    for c in range(classes):
        members = np.flatnonzero(labels == c)
        take = rng.choice(members, size=min(per_class, len(members)), replace=False)
        table[c, : len(take)] = np.sort(take)
    return table


def class_means(split: Split, classes: int) -> np.ndarray:
    """float64 (K, C, H, W): each class's mean image in pixel units [0, 255] (0 when empty)."""
    labels = split.labels.cpu()
    images = split.images.cpu()
    sums = torch.zeros((classes, *images.shape[1:]), dtype=torch.float64)
    for start in range(0, len(labels), 4096):  # bounded memory: float copies of 4,096 images
        sums.index_add_(0, labels[start : start + 4096], images[start : start + 4096].double())
    counts = torch.bincount(labels, minlength=classes).double().clamp(min=1)
    return (sums / counts.view(-1, 1, 1, 1)).numpy()


def intensity_histogram(split: Split) -> np.ndarray:
    """int64 (C, 256): how many pixels of each channel take each value 0..255."""
    images = split.images.cpu()
    return np.stack(
        [
            torch.bincount(images[:, c].reshape(-1), minlength=256).numpy()
            for c in range(images.shape[1])
        ]
    ).astype(np.int64)


def channel_statistics(histogram: np.ndarray) -> list[dict[str, float]]:
    """Mean and standard deviation of each channel in [0, 1] pixel units, from the
    :func:`intensity_histogram` (exact, as :meth:`Normalization.fit` computes them)."""
    levels = np.arange(256) / 255.0
    result = []
    for counts in histogram.astype(np.float64):
        total = counts.sum()
        mean = float((counts * levels).sum() / total) if total else float("nan")
        var = float((counts * (levels - mean) ** 2).sum() / total) if total else float("nan")
        result.append({"mean": mean, "std": var**0.5})
    return result


@dataclass(frozen=True)
class Correlations:
    """Pearson correlations between flattened images: pairs within one class, and pairs
    drawn from the whole split for reference."""

    within: np.ndarray  # float (m,): every pair of the class's sampled images
    across: np.ndarray  # float (m',): every pair of as many images drawn from all classes
    label: int  # the class
    samples: int  # images of the class used

    @property
    def median_within(self) -> float:
        return float(np.median(self.within)) if len(self.within) else float("nan")

    @property
    def median_across(self) -> float:
        return float(np.median(self.across)) if len(self.across) else float("nan")


def pairwise_correlations(
    split: Split, label: int, max_samples: int = 300, seed: int = 0
) -> Correlations:
    """Correlations between every pair of up to ``max_samples`` images of class ``label``,
    and between as many images from the whole split (a baseline: how alike are any two?).
    Blank images (no variation) are left out."""
    labels = split.labels.cpu().numpy()
    members = np.flatnonzero(labels == label)
    if len(members) < 2:
        raise ConfigError(
            f"class {label} has {len(members)} sample(s); correlations need at least 2"
        )
    rng = np.random.default_rng(seed)
    k = min(max_samples, len(members))
    within = rng.choice(members, size=k, replace=False)
    across = rng.choice(len(labels), size=min(k, len(labels)), replace=False)
    images = split.images.cpu()
    return Correlations(
        _pair_correlations(images[torch.from_numpy(np.sort(within))]),
        _pair_correlations(images[torch.from_numpy(np.sort(across))]),
        int(label),
        k,
    )


def _pair_correlations(images: torch.Tensor) -> np.ndarray:
    x = images.flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    norm = torch.linalg.vector_norm(x, dim=1)
    x = x[norm > 0] / norm[norm > 0].unsqueeze(1)
    corr = x @ x.T
    i, j = torch.triu_indices(len(x), len(x), offset=1)
    return corr[i, j].numpy()
