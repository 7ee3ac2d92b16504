"""Explanations: where the model looked for its most confident mistakes, its mean attribution
per class, and the deletion test's curves.

The numbers come from :mod:`mlplab.analysis.explanations`; this module only draws them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..explanations import Explanations
from .base import TEST, WRONG, display, empty_figure, new_figure, no_ticks

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["explanations_figure"]

COLUMNS = 10  # panels a row (mistakes; classes: the first ten)
CELL = 1.1  # inches a panel
HEAT = "bwr"  # red: for the class, blue: against, white: nothing
STRENGTH = 0.85  # the overlay's opacity at the image's largest magnitude


def explanations_figure(explanations: Explanations) -> Figure:
    """Top: the most confident mistakes with the attribution of the (wrong) predicted class
    over them; middle: the mean attribution of each class over its images (first ten
    classes); bottom: the deletion test, most-attributed pixels first against random."""
    e = explanations
    if e.off is not None:
        return empty_figure(e.off)
    mistakes, means = len(e.maps), min(len(e.class_means), COLUMNS)
    cols = max(mistakes, means, 1)
    rows = [r for r, n in (("mistakes", mistakes), ("means", means)) if n]
    figure = new_figure(max(cols * CELL, 6.0), CELL * 1.35 * len(rows) + 2.6)
    spec = figure.add_gridspec(len(rows) + 1, cols, height_ratios=[1.35] * len(rows) + [2.3])
    for r, row in enumerate(rows):
        for i in range(cols):
            ax = figure.add_subplot(spec[r, i])
            if row == "mistakes" and i < mistakes:
                _overlay(ax, e.images[i], e.maps[i])
                ax.set_title(
                    f"true {e.true[i]}\npred {e.predicted[i]} ({e.probability[i]:.2f})",
                    fontsize=7,
                    color=WRONG,
                )
            elif row == "means" and i < means:
                _heat(ax, e.class_means[i])
                ax.set_title(f"{e.classes[i]} (n={e.class_counts[i]})", fontsize=7)
            else:
                ax.set_axis_off()
    ax = figure.add_subplot(spec[len(rows), :])
    _deletion(ax, e)
    return figure


def _heat(ax: Axes, heat: np.ndarray) -> None:
    top = float(np.abs(heat).max()) or 1.0
    ax.imshow(heat, cmap=HEAT, vmin=-top, vmax=top, interpolation="nearest")
    no_ticks(ax)


def _overlay(ax: Axes, image: np.ndarray, heat: np.ndarray) -> None:
    """The heat over the image, each pixel as opaque as its share of the largest magnitude."""
    from matplotlib import colormaps

    array, kwargs = display(image)
    ax.imshow(array, interpolation="nearest", **kwargs)
    t = heat / (float(np.abs(heat).max()) or 1.0)
    rgba = colormaps[HEAT]((t + 1) / 2)
    rgba[..., 3] = np.abs(t) * STRENGTH
    ax.imshow(rgba, interpolation="nearest")
    no_ticks(ax)


def _deletion(ax: Axes, e: Explanations) -> None:
    d = e.deletion
    if d is None or not d.images:
        ax.text(0.5, 0.5, "no images for the deletion test", ha="center", va="center")
        ax.set_axis_off()
        return
    x = 100 * d.fractions
    ax.plot(x, d.attributed, color=TEST, label=f"most attributed first (area {d.area:.3f})")
    ax.plot(
        x, d.random, color="#8c959f", ls="--", label=f"random pixels (area {d.random_area:.3f})"
    )
    ax.set_xlabel("pixels set to the background (%)")
    ax.set_ylabel("probability of the class")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 100)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"Deletion test, {d.images} test images", fontsize=9)
