"""Rejection: the ood_score's histograms, the run's test split against each set of images
unlike it, with the threshold.

The numbers come from :mod:`mlplab.analysis.rejection` (scores, histogram counts, AUROC,
rejected fractions); this module only draws them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..rejection import DECADES, Rejection, ScoredSet
from .base import TEST, WRONG, empty_figure, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["rejection_figure"]

INSIDE = "#8c959f"  # the run's own split: gray, behind every panel
OTHER = TEST  # the set unlike it
COLUMNS = 4  # panels a row
LAST = 0.4  # width of the last bin (0.999 to 1), in decades of 1 - score: wide enough to see


def rejection_figure(rejection: Rejection) -> Figure:
    """One panel per set unlike the run's images: the share of the inside split (gray) and of
    the set (purple) in each bin of the ood_score, log scale, with the threshold (red, dashed);
    the title gives the set's AUROC against the inside split and the fraction rejected."""
    if rejection.off is not None:
        return empty_figure(rejection.off)
    inside = rejection.inside
    if inside is None or not rejection.outside:
        return empty_figure("no images to tell apart: the run's split or the other sets are empty")
    figure, axes = _grid(len(rejection.outside))
    floor = _floor(rejection)
    n = len(rejection.outside)
    for i, (ax, other) in enumerate(zip(axes, rejection.outside, strict=True)):
        _panel(ax, rejection, inside, other, floor)
        if i % COLUMNS:  # the same axes everywhere: labelled on the left and at the bottom
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
        if i + COLUMNS < n:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith(inside.name))
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]  # the split first
    figure.legend(handles, labels, loc="outside upper center", ncols=3, fontsize=9, frameon=False)
    return figure


def _grid(n: int) -> tuple[Figure, list[Axes]]:
    """``n`` panels, :data:`COLUMNS` a row."""
    cols = min(n, COLUMNS)
    rows = math.ceil(n / cols)
    figure = new_figure(3.1 * cols, 2.5 * rows + 0.4)  # 0.4 in: the legend above
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return figure, axes[:n]


def _floor(rejection: Rejection) -> float:
    """The log axis' bottom: below one image of the largest set."""
    largest = max(s.samples for s in rejection.sets)
    return 0.5 / max(largest, 1)


def _position(score: np.ndarray | float) -> np.ndarray:
    """Where a score sits on the x axis: ``-log10(1 - score)``, each decade closer to 1 one
    unit further right; 0.999 and above in the last bin, 1 at its right edge."""
    score = np.asarray(score, dtype=np.float64)
    tail = np.maximum(1 - score, 10.0**-DECADES)
    return np.where(score >= 1, DECADES + LAST, -np.log10(tail))


def _share(s: ScoredSet) -> np.ndarray:
    return s.counts / max(s.samples, 1)


def _panel(
    ax: Axes, rejection: Rejection, inside: ScoredSet, other: ScoredSet, floor: float
) -> None:
    from matplotlib import ticker  # the report extra: imported where drawn

    edges = _position(rejection.edges)
    threshold = 1.0 if rejection.threshold is None else rejection.threshold
    left, width = edges[:-1], np.diff(edges)
    ax.bar(
        left,
        _share(inside),
        width,
        align="edge",
        color=INSIDE,
        alpha=0.6,
        label=f"{inside.name} ({inside.samples:,})",
    )
    ax.stairs(_share(other), edges, color=OTHER, linewidth=1.6, label="the panel's set")
    ax.axvline(
        float(_position(threshold)),
        color=WRONG,
        linestyle="--",
        linewidth=1.2,
        label=f"threshold {threshold:.4f}: above it, rejected",
    )
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(ticker.NullLocator())  # log minor ticks: half the drawing time
    ax.set_ylim(floor, 1.5)
    ax.set_xlim(0, DECADES + LAST)
    ticks = [*range(DECADES + 1), DECADES + LAST]
    ax.set_xticks(ticks, [*(f"{1 - 10.0**-k:g}" for k in range(DECADES + 1)), "1"])
    area = "AUROC -" if other.auroc is None else f"AUROC {other.auroc:.4f}"
    rejected = other.rejected_fraction
    share = "-" if rejected is None else f"{rejected:.1%}"
    ax.set_title(f"{other.name}\n{area}   rejected {share}", fontsize=9)
    ax.set_xlabel("ood_score (each tick ten times closer to 1)", fontsize=8)
    ax.set_ylabel("share of the set per bin", fontsize=8)
    ax.tick_params(labelsize=8)
