"""The learned weights: the first layer's units as images, and each layer's histogram (one
run, or several runs overlaid)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...errors import ConfigError
from ..weights import FirstLayer, LayerWeights
from .base import TRAIN, class_colors, empty_figure, grid, no_ticks, panels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIRST_LAYER_MODES",
    "compare_weights_figure",
    "first_layer_figure",
    "weight_histograms_figure",
]

FIRST_LAYER_MODES = ("auto", "rgb", "channels")
PANELS_PER_ROW = 8  # units x channels in a row of the per-channel view
STATISTICS_BOX = {  # a histogram's statistics: top right, over a white box
    "ha": "right",
    "va": "top",
    "fontsize": 8,
    "family": "monospace",
    "bbox": {"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"},
}


def first_layer_figure(first: FirstLayer, mode: str = "auto") -> Figure:
    """The first layer's units as input-shaped images.

    One channel: a diverging map per unit, symmetric about 0 (red positive, blue negative).
    Three channels: ``mode="rgb"`` (the ``auto`` choice) shows each unit as a colour image,
    min-max normalized per unit; ``"channels"`` shows each channel of each unit as its own
    diverging map.
    """
    if mode not in FIRST_LAYER_MODES:
        raise ConfigError(
            f"first-layer mode must be one of {', '.join(FIRST_LAYER_MODES)}; got '{mode}'"
        )
    n, c = len(first.units), first.weights.shape[1]
    if n == 0:
        return empty_figure("no units")
    if mode == "channels" or c not in (1, 3):  # rgb needs 3 channels; 1 is always one map
        cols = c * min(n, max(1, PANELS_PER_ROW // c))
        figure, axes = grid(n * c, first.weights.shape[1:], cols=cols)
        for u in range(n):
            for ch in range(c):
                ax = axes[u * c + ch]
                _diverging(ax, first.weights[u, ch])
                ax.set_title(f"{first.names[u]} ch{ch}", fontsize=7)
        return figure
    figure, axes = grid(n, first.weights.shape[1:])
    for u, ax in enumerate(axes):
        w = first.weights[u]
        if c == 3:
            low, high = float(w.min()), float(w.max())
            rgb = np.transpose((w - low) / ((high - low) or 1.0), (1, 2, 0))
            ax.imshow(rgb, interpolation="nearest")
            no_ticks(ax)
        else:
            _diverging(ax, w[0])
        ax.set_title(first.names[u], fontsize=7)
    return figure


def _diverging(ax: Axes, weights: np.ndarray) -> None:
    """One (H, W) weight map, red positive and blue negative, symmetric about 0."""
    limit = float(np.abs(weights).max()) or 1.0
    ax.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    no_ticks(ax)


def weight_histograms_figure(layers: Sequence[LayerWeights]) -> Figure:
    """A histogram of each layer's weights with its mean, std, min, max and L2 norm."""
    figure, axes = panels(len(layers), 4.2, 3.2)
    for ax, layer in zip(axes, layers, strict=False):
        ax.stairs(layer.counts, layer.edges, fill=True, color=TRAIN, alpha=0.8)
        ax.axvline(layer.mean, color="black", lw=1, ls=":")
        ax.set_title(f"{layer.name}  {layer.shape[0]}x{layer.shape[1]}", fontsize=10)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
        statistics = (
            f"mean {layer.mean:+.4f}\nstd {layer.std:.4f}\nmin {layer.min:+.3f}\n"
            f"max {layer.max:+.3f}\nL2 {layer.l2:.2f}"
        )
        ax.text(0.98, 0.97, statistics, transform=ax.transAxes, **STATISTICS_BOX)
        ax.grid(alpha=0.3)
    return figure


def compare_weights_figure(runs: dict[str, Sequence[LayerWeights]]) -> Figure:
    """Each layer's weight histogram (as a density) for several runs, overlaid by layer
    position; each panel's legend gives every run's layer, shape, std and L2 norm."""
    depth = max((len(v) for v in runs.values()), default=0)
    figure, axes = panels(depth, 4.4, 3.3, extra=0.5)
    colors = class_colors(max(len(runs), 1))
    for layers, color in zip(runs.values(), colors, strict=False):
        for ax, layer in zip(axes, layers, strict=False):
            density = layer.counts / max(layer.counts.sum(), 1) / np.diff(layer.edges)
            shape = f"{layer.shape[0]}x{layer.shape[1]}"
            label = f"{layer.name} {shape}: std {layer.std:.3f}, L2 {layer.l2:.1f}"
            ax.stairs(density, layer.edges, color=color, lw=1.5, label=label)
    for i, ax in enumerate(axes[:depth]):
        ax.set_title(f"layer {i + 1}", fontsize=10)
        ax.set_xlabel("weight")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    handles = [
        axes[0].plot([], [], color=c, lw=2, label=n)[0] for n, c in zip(runs, colors, strict=False)
    ]
    figure.legend(handles=handles, loc="outside upper center", fontsize=8, ncols=min(len(runs), 3))
    return figure
