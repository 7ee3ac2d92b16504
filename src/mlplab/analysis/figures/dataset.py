"""A dataset on its own, before any training: class counts, samples and mean image of each
class, the pixel-intensity histogram, and how alike two images of a class are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..dataset import Correlations
from .base import TRAIN, VAL, class_ticks, grid, new_figure, no_ticks, show

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "class_counts_figure",
    "class_means_figure",
    "class_samples_figure",
    "correlations_figure",
    "intensity_figure",
]

RGB = (("red", "#cf222e"), ("green", "#1a7f37"), ("blue", "#0969da"))  # channel: name, colour


def class_counts_figure(
    train: np.ndarray, test: np.ndarray | None, classes: Sequence[str]
) -> Figure:
    """Samples per class in the training and test splits."""
    k = len(classes)
    figure = new_figure(min(max(6, 0.4 * k + 2), 16), 3.4)
    ax = figure.subplots()
    x = np.arange(k)
    if test is None:
        ax.bar(x, train, 0.8, label=f"train ({int(train.sum()):,})", color=TRAIN)
    else:
        ax.bar(x - 0.2, train, 0.4, label=f"train ({int(train.sum()):,})", color=TRAIN)
        ax.bar(x + 0.2, test, 0.4, label=f"test ({int(test.sum()):,})", color=VAL)
    class_ticks(ax, classes, "x")
    ax.set_ylabel("samples")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def class_samples_figure(images: np.ndarray, table: np.ndarray, classes: Sequence[str]) -> Figure:
    """Rows of samples, one row per class (``table[k]`` indexes ``images``; -1 is a gap)."""
    k, per = table.shape
    _, h, w = images.shape[1:]
    cell = 0.9  # inches per sample
    figure = new_figure(per * cell + 1.2, k * cell * h / w + 0.3)
    axes = figure.subplots(k, per, squeeze=False)
    for c in range(k):
        for j in range(per):
            ax = axes[c][j]
            if table[c, j] >= 0:
                show(ax, images[table[c, j]])
            else:
                no_ticks(ax)
            if j == 0:
                ax.set_ylabel(classes[c], fontsize=8, rotation=0, ha="right", va="center")
    return figure


def class_means_figure(means: np.ndarray, classes: Sequence[str]) -> Figure:
    """Each class's mean image (pixel units 0..255 shown on one shared scale)."""
    figure, axes = grid(len(means), means.shape[1:], cols=min(len(means), 10))
    for ax, mean, name in zip(axes, means, classes, strict=False):
        show(ax, (mean / 255.0).astype(np.float32))
        ax.set_title(name, fontsize=8)
    return figure


def intensity_figure(histogram: np.ndarray) -> Figure:
    """How many pixels take each value 0..255 (log count axis), per channel."""
    figure = new_figure(7, 3.4)
    ax = figure.subplots()
    gray = len(histogram) == 1
    if len(histogram) == 3:
        channels = RGB
    else:
        channels = tuple((f"channel {c}", "0.3") for c in range(len(histogram)))
    for counts, (name, color) in zip(histogram, channels, strict=True):
        edges = np.arange(257) - 0.5
        alpha = 0.8 if gray else 1.0
        ax.stairs(counts, edges, label=name, color=color, fill=gray, alpha=alpha)
    ax.set_yscale("log")
    ax.set_xlim(-1, 256)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("pixels (log scale)")
    ax.grid(alpha=0.3)
    if not gray:
        ax.legend(fontsize=8)
    return figure


def correlations_figure(correlations: Correlations, classes: Sequence[str]) -> Figure:
    """Distribution of the correlation between two images of the same class, against two
    images drawn from any class."""
    figure = new_figure(7, 3.4)
    ax = figure.subplots()
    bins = np.linspace(-1, 1, 81)
    name = classes[correlations.label]
    for values, median, label, color in (
        (correlations.within, correlations.median_within, f"two images of class {name}", TRAIN),
        (correlations.across, correlations.median_across, "two images of any class", VAL),
    ):
        if len(values):
            label = f"{label} (median {median:.2f})"
            ax.hist(values, bins=bins, density=True, alpha=0.6, color=color, label=label)
    ax.set_xlabel("Pearson correlation of the pixels")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure
