"""Single predictions: the most confident mistakes, a sample of predictions, and what the
model thought of each class for a few samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..mistakes import Picked
from .base import MAX_BARS, RIGHT, WRONG, empty_figure, grid, new_figure, show

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["mistakes_figure", "probabilities_figure", "samples_figure"]


def mistakes_figure(picked: Picked) -> Figure:
    """A grid of wrong predictions, each titled with the true class (its probability) and the
    predicted class (its probability)."""
    if len(picked) == 0:
        return empty_figure("no mistakes: every sample was predicted right")
    figure, axes = grid(len(picked), picked.images.shape[1:], title_lines=2, cell=1.35)
    for i, ax in enumerate(axes):
        show(ax, picked.images[i])
        true, predicted = picked.classes[picked.labels[i]], picked.classes[picked.predicted[i]]
        title = (
            f"true {true} ({picked.true_probability[i]:.2f})\n"
            f"pred {predicted} ({picked.predicted_probability[i]:.2f})"
        )
        ax.set_title(title, fontsize=7, color=WRONG)
    return figure


def samples_figure(picked: Picked) -> Figure:
    """A grid of predictions, green when right and red when wrong (wrong ones also name the
    true class)."""
    if len(picked) == 0:
        return empty_figure("no samples to show")
    shape = picked.images.shape[1:]
    figure, axes = grid(len(picked), shape, cols=min(len(picked), 9), title_lines=2, cell=1.15)
    for i, ax in enumerate(axes):
        show(ax, picked.images[i])
        ok = bool(picked.correct[i])
        color = RIGHT if ok else WRONG
        title = f"{picked.classes[picked.predicted[i]]} ({picked.predicted_probability[i]:.2f})"
        title += "\n" if ok else f"\ntrue {picked.classes[picked.labels[i]]}"
        ax.set_title(title, fontsize=7, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(2)
    return figure


def probabilities_figure(
    picked: Picked, top: int = MAX_BARS, empty: str = "no samples to show"
) -> Figure:
    """For each sample: the image, the model's probability for each class, and the
    log-probabilities (which show how far the true class was from winning). Beyond ``top``
    classes only the ``top`` most likely are drawn."""
    n = len(picked)
    if n == 0:
        return empty_figure(empty)
    figure = new_figure(11, 1.9 * n + 0.3)
    axes = figure.subplots(n, 3, squeeze=False, width_ratios=[1, 3, 3])
    for i in range(n):
        _sample_row(axes[i], picked, i, top)
    axes[0][1].set_title("probabilities (green: true class, red: predicted)", fontsize=9)
    axes[0][2].set_title("log-probabilities (0 = certain)", fontsize=9)
    return figure


def _sample_row(axes: Sequence[Axes], picked: Picked, i: int, top: int) -> None:
    """Sample ``i``'s row of :func:`probabilities_figure`: the image, then the probabilities and
    the log-probabilities of the classes shown."""
    image_ax, p_ax, logp_ax = axes
    show(image_ax, picked.images[i])
    t, p = int(picked.labels[i]), int(picked.predicted[i])
    image_ax.set_title(f"true {picked.classes[t]}\npred {picked.classes[p]}", fontsize=8)
    shown = _shown_classes(picked.probabilities[i], t, top)
    colors = [RIGHT if c == t else WRONG if c == p else "0.6" for c in shown]
    names = [picked.classes[c] for c in shown]
    x = np.arange(len(shown))
    p_ax.bar(x, picked.probabilities[i, shown], color=colors)
    p_ax.set_ylim(0, 1)
    p_ax.set_ylabel("probability", fontsize=8)
    logp = picked.log_probabilities[i, shown]
    logp_ax.bar(x, logp, color=colors)
    logp_ax.set_ylabel("log-probability", fontsize=8)
    floor = float(np.min(logp[np.isfinite(logp)], initial=-1.0))
    logp_ax.set_ylim(min(floor * 1.05, -1.0), 0)
    for ax in (p_ax, logp_ax):
        ax.set_xticks(x, names, fontsize=7, rotation=90 if max(map(len, names)) > 2 else 0)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=7)


def _shown_classes(probabilities: np.ndarray, true: int, top: int) -> np.ndarray:
    """The classes a bar chart shows, in class order: all of them, or beyond ``top`` the
    ``top`` most likely, always with the true class."""
    if len(probabilities) <= top:
        return np.arange(len(probabilities))
    shown = np.argsort(-probabilities, kind="stable")[:top]
    if true not in shown:
        shown[-1] = true
    return np.sort(shown)
