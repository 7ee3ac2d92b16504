"""Calibration: the reliability diagram before and after the run's temperature.

The numbers come from :mod:`mlplab.trust.calibration` (per-bin counts, mean confidence and
accuracy, ECE, NLL, Brier); this module only draws them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...trust.calibration import Scores
from .base import TEST, TRAIN, WRONG, empty_figure, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["reliability_figure"]


def reliability_figure(before: Scores, after: Scores) -> Figure:
    """Two reliability diagrams side by side, the model's own probabilities (``before``) and
    the calibrated ones (``after``): per confidence bin, the fraction predicted right against
    the diagonal of perfect calibration, the gap in red; the confidence histogram under each."""
    if before.reliability.samples == 0:
        return empty_figure("no test samples: nothing to calibrate")
    figure = new_figure(10, 5.2)
    axes = figure.subplots(2, 2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    titles = ("the model's own (T = 1)", f"calibrated (T = {after.temperature:.3g})")
    for column, (scores, title) in enumerate(zip((before, after), titles, strict=True)):
        _diagram(axes[0, column], scores, title, legend=column == 0)
        _histogram(axes[1, column], scores)
    return figure


def _diagram(ax: Axes, scores: Scores, title: str, *, legend: bool) -> None:
    r = scores.reliability
    left, width = np.array(r.edges[:-1]), np.diff(r.edges)
    filled = np.array(r.counts) > 0
    accuracy, confidence = np.array(r.accuracy)[filled], np.array(r.confidence)[filled]
    left, width = left[filled], width[filled]
    ax.bar(left, accuracy, width, align="edge", color=TRAIN, edgecolor="white", label="accuracy")
    # the gap, hatched, from the accuracy to the mean confidence (above: overconfident)
    ax.bar(
        left,
        np.abs(confidence - accuracy),
        width,
        bottom=np.minimum(confidence, accuracy),
        align="edge",
        facecolor="none",
        edgecolor=WRONG,
        hatch="//",
        linewidth=0.8,
        label="gap to the mean confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction right")
    ax.set_title(
        f"{title}\nECE {r.ece:.2%}   NLL {scores.nll:.4f}   Brier {scores.brier:.4f}", fontsize=10
    )
    if legend:
        ax.legend(loc="upper left", fontsize=8)


def _histogram(ax: Axes, scores: Scores) -> None:
    r = scores.reliability
    from matplotlib.ticker import FuncFormatter, NullFormatter

    counts = np.array(r.counts)
    filled = counts > 0
    left, width = np.array(r.edges[:-1])[filled], np.diff(r.edges)[filled]
    ax.bar(left, counts[filled], width, align="edge", color=TEST, edgecolor="white")
    # log scale: most samples sit in the top bin, the others still show; at least a decade
    # (1 to 10), so that whole-number labels appear at the powers of ten
    ax.set_yscale("log")
    ax.set_ylim(0.7, max(10.0, float(counts.max()) * 2))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence (the predicted class's probability)")
    ax.set_ylabel("samples")
