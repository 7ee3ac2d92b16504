"""What every figure shares: a new Figure without pyplot, PNG bytes, the palette, image panels
and class ticks.

Figures are built without pyplot (no global state, no display needed: the Agg canvas renders
them), so they work the same in a script, a server and a notebook, where they show inline.
matplotlib is the ``report`` extra: ``pip install 'mlplab[report]'``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import __version__
from ...extras import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MAX_BARS",
    "MAX_LEGEND",
    "RIGHT",
    "TEST",
    "TRAIN",
    "VAL",
    "WRONG",
    "new_figure",
    "save_png",
]

RIGHT, WRONG = "#1a7f37", "#cf222e"  # green and red that stay apart for most colour vision
TRAIN, VAL, TEST = "#0969da", "#bc4c00", "#8250df"
MAX_TICKS = 30  # class tick labels drawn at most (every k-th beyond that)
MAX_BARS = 20  # classes in a probability bar chart (the most likely, beyond that)
MAX_LEGEND = 20  # classes named in a scatter's legend
DPI = 100  # pixels per inch of a new figure and of its PNG


def new_figure(width: float, height: float) -> Figure:
    """A new Figure (no pyplot), sized in inches, laid out by the constrained engine."""
    figure_module = require("matplotlib.figure", "report", "the report")
    return figure_module.Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(figure: Figure, path: str | Path | None, dpi: int = DPI) -> bytes:
    """Render ``figure`` as PNG bytes (and write them to ``path`` unless it is None)."""
    buffer = io.BytesIO()
    # the mark that lets a later figure replace this one, and nothing else (files.atomic)
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": f"mlplab {__version__}"})
    data = buffer.getvalue()
    if path is not None:
        from ...files.atomic import write_bytes_atomic

        write_bytes_atomic(path, data)
    return data


def class_colors(k: int) -> list[tuple[float, float, float, float]]:
    """``k`` colours that tell classes (or runs) apart: tab10, tab20, then a continuous map."""
    import matplotlib

    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(k)]
    return [matplotlib.colormaps["turbo"](i / max(k - 1, 1)) for i in range(k)]


def display(image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """(array, imshow arguments) for one (C, H, W) image: uint8 pixels or floats in [0, 1].
    1 channel: gray; 3: RGB; any other count: the channels' mean, gray."""
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    if image.shape[0] == 3:
        return np.transpose(image / scale, (1, 2, 0)).clip(0, 1), {}
    gray = image.mean(0) / scale if image.shape[0] != 1 else image[0] / scale
    return gray, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}


def show(ax: Axes, image: np.ndarray) -> None:
    """One image in a panel, pixels as squares, no ticks."""
    array, kwargs = display(image)
    ax.imshow(array, interpolation="nearest", **kwargs)
    no_ticks(ax)


def no_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def grid(
    n: int,
    image_shape: Sequence[int],
    cols: int | None = None,
    cell: float = 1.25,
    title_lines: int = 1,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` image panels in rows of ``cols``, each ``cell`` inches wide,
    tall enough for the image's aspect and ``title_lines`` lines of title."""
    n = max(n, 1)
    cols = cols or min(n, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    _, h, w = image_shape
    height = cell * h / w + 0.17 * title_lines
    figure = new_figure(cols * cell, rows * height + 0.3)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return figure, axes[:n]


def panels(n: int, width: float, height: float, extra: float = 0.0) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` plot panels, at most 3 a row, each ``width`` x ``height`` inches
    (``extra`` inches more for a legend above); the spare panels of the last row are hidden."""
    cols = min(max(n, 1), 3)
    rows = math.ceil(max(n, 1) / cols)
    figure = new_figure(width * cols, height * rows + extra)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return figure, axes


def class_ticks(ax: Axes, classes: Sequence[str], axis: str) -> None:
    """Class names as tick labels (every k-th beyond MAX_TICKS), turned when they are long."""
    k = len(classes)
    step = max(1, math.ceil(k / MAX_TICKS))
    ticks = list(range(0, k, step))
    labels = [classes[i] for i in ticks]
    if axis == "x":
        ax.set_xticks(ticks, labels, rotation=90 if max(map(len, labels), default=0) > 2 else 0)
    else:
        ax.set_yticks(ticks, labels)


def empty(figure: Figure, text: str) -> Figure:
    """``figure`` with only ``text`` in its middle: what a figure with nothing to draw shows."""
    figure.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)
    return figure


def empty_figure(text: str) -> Figure:
    """A small figure saying there is nothing to draw."""
    return empty(new_figure(6, 1.5), text)


def integer_epochs(ax: Axes) -> None:
    """Whole-number ticks on an epoch axis."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
