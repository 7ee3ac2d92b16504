"""Robustness: accuracy against severity, one panel per corruption, one line per run.

The numbers come from :mod:`mlplab.analysis.robustness` (a run's ``robustness.json``); this
module only draws them. Severity 0 is the clean test split, so every line starts at the
run's test accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..robustness import Robustness
from .base import TEST, class_colors, empty_figure, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["robustness_figure"]

COLUMNS = 5  # panels a row: MNIST-C's 15 corruptions in 3 rows
CELL = (2.5, 2.0)  # inches per panel


def robustness_figure(results: Robustness | Mapping[str, Robustness]) -> Figure:
    """Accuracy (%) against severity (0: clean) for each corruption, one panel each; a run's
    :class:`Robustness`, or several by name (``compare``), one colour per run. A single run's
    panel titles give its mean accuracy over the severities."""
    runs = {"": results} if isinstance(results, Robustness) else dict(results)
    names = list(dict.fromkeys(n for r in runs.values() for n in r.corruptions))
    if not names:
        return empty_figure("no corruptions were scored (robustness.json has none)")
    cols = min(len(names), COLUMNS)
    rows = math.ceil(len(names) / cols)
    figure = new_figure(CELL[0] * cols, CELL[1] * rows + (0.4 if len(runs) > 1 else 0.2))
    axes = figure.subplots(rows, cols, squeeze=False, sharex=True, sharey=True).ravel()
    colors = [TEST] if len(runs) == 1 else class_colors(len(runs))
    for ax, name in zip(axes, names, strict=False):
        for (label, result), color in zip(runs.items(), colors, strict=True):
            cells = result.corruptions.get(name)
            if not cells:
                continue
            levels = [0, *sorted(cells)]
            accuracy = [result.clean.accuracy] + [cells[s].accuracy for s in sorted(cells)]
            ax.plot(
                levels,
                [a * 100 for a in accuracy],
                "o-",
                color=color,
                ms=3,
                lw=1.4,
                label=label or None,
            )
        title = name.replace("_", " ")
        if len(runs) == 1:
            only = next(iter(runs.values()))
            if name in only.corruptions:
                title += f" ({only.mean_over_severities(name):.1%})"
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xticks(range(6))
        ax.set_ylim(0, 102)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    for i, ax in enumerate(axes[: len(names)]):
        if i % cols == 0:
            ax.set_ylabel("accuracy (%)", fontsize=8)
        if i + cols >= len(names):
            ax.set_xlabel("severity (0: clean)", fontsize=8)
    if len(runs) > 1:
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(
            handles,
            labels,
            loc="outside upper center",
            ncols=min(len(runs), 4),
            fontsize=8,
            frameon=False,
        )
    return figure
