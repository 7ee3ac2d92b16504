"""What the model computes: 2-D maps (PCA, t-SNE) of its layers, one point per sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..representations import Embedding
from .base import MAX_LEGEND, class_colors, new_figure, no_ticks

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["embedding_figure"]

LAYER_NAMES = {"logits": "output logits", "hidden": "last hidden layer"}


def embedding_figure(embeddings: dict[str, Embedding] | Sequence[Embedding]) -> Figure:
    """Scatter plots of 2-D maps (e.g. logits and last hidden layer), one point per sample,
    coloured by true class; an empty map shows its note instead."""
    maps = list(embeddings.values()) if isinstance(embeddings, dict) else list(embeddings)
    figure = new_figure(6 * len(maps), 5.6)
    axes = figure.subplots(1, len(maps), squeeze=False)[0]
    drawn = [m for m in maps if not m.empty]
    classes = drawn[0].classes if drawn else ()  # a legend only for points drawn
    colors = class_colors(len(classes))
    for ax, m in zip(axes, maps, strict=True):
        _scatter(ax, m, colors)
    if classes and len(classes) <= MAX_LEGEND:
        handles = [
            axes[0].scatter([], [], color=colors[c], s=25, label=name)
            for c, name in enumerate(classes)
        ]
        figure.legend(handles=handles, loc="outside right center", fontsize=8, title="class")
    elif classes:
        note = f"{len(classes)} classes: colours run through the class order (no legend)"
        figure.suptitle(note, fontsize=9)
    return figure


def _scatter(ax: Axes, m: Embedding, colors: list[tuple[float, float, float, float]]) -> None:
    """One map in its panel, or its note when it has no points."""
    what = LAYER_NAMES.get(m.layer, m.layer)
    title = f"{'t-SNE' if m.method == 'tsne' else 'PCA'} of the {what}"
    if m.empty:
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        centre = {"ha": "center", "va": "center", "transform": ax.transAxes}
        ax.text(0.5, 0.5, m.note, wrap=True, fontsize=10, **centre)
        return
    point_size = max(1.5, min(12.0, 6000 / len(m.points)))
    order = np.random.default_rng(0).permutation(len(m.points))  # no class drawn on top
    point_colors = [colors[c] for c in m.labels[order]]
    x, y = m.points[order, 0], m.points[order, 1]
    ax.scatter(x, y, s=point_size, linewidths=0, c=point_colors, alpha=0.8, rasterized=True)
    if m.explained_variance:
        ax.set_xlabel(f"PC1 ({m.explained_variance[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({m.explained_variance[1]:.0%} of variance)")
    else:
        no_ticks(ax)
    ax.set_title(title + (f"\n{m.note}" if m.note else ""), fontsize=10)
