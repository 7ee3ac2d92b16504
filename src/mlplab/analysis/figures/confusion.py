"""Test scores by class: the confusion matrix and per-class precision, recall and F1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..confusion import Confusion
from .base import TEST, TRAIN, VAL, class_ticks, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_figure", "per_class_figure"]

COUNTED = 20  # classes up to which every cell of the matrix carries its count
BARS = 40  # classes up to which per-class scores are bars (points beyond)


def confusion_figure(confusion: Confusion) -> Figure:
    """Row-normalized confusion matrix (colour: fraction of the true class) with the counts
    written in each non-empty cell (up to 20 classes)."""
    k = len(confusion.classes)
    side = min(max(4.5, 0.45 * k + 2), 11)
    figure = new_figure(side + 1.2, side)
    ax = figure.subplots()
    normalized = confusion.normalized
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    if k <= COUNTED:
        size = 8 if k <= 12 else 6
        for i, j in zip(*np.nonzero(confusion.counts), strict=True):
            color = "white" if normalized[i, j] > 0.5 else "black"
            count = f"{confusion.counts[i, j]}"
            ax.text(j, i, count, ha="center", va="center", fontsize=size, color=color)
    class_ticks(ax, confusion.classes, "x")
    class_ticks(ax, confusion.classes, "y")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{confusion.samples:,} samples, accuracy {confusion.accuracy:.2%}")
    return figure


def per_class_figure(confusion: Confusion) -> Figure:
    """Precision, recall and F1 of each class, side by side."""
    k = len(confusion.classes)
    figure = new_figure(min(max(6, 0.45 * k + 2), 16), 3.6)
    ax = figure.subplots()
    x = np.arange(k)
    scores = (
        (confusion.precision, "precision", TRAIN),
        (confusion.recall, "recall", VAL),
        (confusion.f1, "F1", TEST),
    )
    width = 0.27
    for shift, (values, name, color) in zip((-width, 0, width), scores, strict=True):
        if k <= BARS:
            ax.bar(x + shift, values, width, label=name, color=color)
        else:
            ax.plot(x, values, marker=".", ls="none", label=name, color=color)
    low = float(min(confusion.precision.min(), confusion.recall.min(), confusion.f1.min()))
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    class_ticks(ax, confusion.classes, "x")
    ax.set_xlabel("class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure
