"""Imagining a class: the inputs the model scores highest for each class, one row per method."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..imagine import Imagined
from .base import empty_figure, grid, show

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["imagine_figure"]

METHOD_NAMES = {"random": "random noise search", "ascent": "gradient ascent"}
COLUMNS = 10  # classes in a row; more classes wrap onto further rows of the same method


def imagine_figure(*imagined: Imagined) -> Figure:
    """One row per method (random-noise search, gradient ascent), one column per class; each
    image titled with the model's probability for its class."""
    methods = [m for m in imagined if len(m.targets)]
    if not methods:
        return empty_figure("nothing imagined")
    n = max(len(m.targets) for m in methods)
    cols = min(n, COLUMNS)
    per_method = cols * math.ceil(n / cols)  # panels of one method, its spare ones blank
    shape = methods[0].images.shape[1:]
    figure, axes = grid(per_method * len(methods), shape, cols=cols, cell=1.15, title_lines=1)
    for r, m in enumerate(methods):
        row = axes[r * per_method : (r + 1) * per_method]
        for i, ax in enumerate(row[: len(m.targets)]):
            show(ax, m.images[i])
            ax.set_title(f"{m.classes[m.targets[i]]} ({m.target_probability[i]:.2f})", fontsize=7)
            if i % cols == 0:
                ax.set_ylabel(METHOD_NAMES.get(m.method, m.method), fontsize=8)
        for ax in row[len(m.targets) :]:
            ax.set_axis_off()
    return figure
