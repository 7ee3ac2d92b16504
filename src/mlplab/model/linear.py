"""The linear models' own summary: a fitted line, next to scikit-learn's least squares.

A regression with one input feature and no hidden layer is the course opener's
``y = slope * x + intercept``. The model sees standardized inputs ``(x - mean) / std``, so
its line in the data's own units is ``slope = w / std`` and ``intercept = b - w mean / std``;
:func:`line_fit` reports it next to ``sklearn.linear_model.LinearRegression`` fitted on the
same training split, and draws both over the data (``line.png`` in the run directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import Dataset, Normalization, Split
from ..files.atomic import atomic_write
from ..progress import logger
from .mlp import MLP

if TYPE_CHECKING:  # scikit-learn loads only when a line is fitted
    from sklearn.linear_model import LinearRegression

__all__ = ["describe", "is_line", "line_fit"]

PLOT = "line.png"


def is_line(model: MLP, data: Dataset) -> bool:
    """A regression on one feature with no hidden layer: a straight line."""
    return data.task == "regression" and not model.hidden_sizes and data.image_shape == (1, 1, 1)


def line_fit(
    model: MLP, normalization: Normalization, train: Split, run_dir: Path
) -> dict[str, Any]:
    """The model's slope and intercept in the data's units, scikit-learn's, and the plot."""
    from sklearn.linear_model import LinearRegression

    w, b = float(model.output.weight.detach()), float(model.output.bias.detach())
    mean, std = normalization.mean[0] * 255, normalization.std[0] * 255  # stored in pixel/255 units
    slope, intercept = w / std, b - w * mean / std
    x = train.images.reshape(-1, 1).cpu().double().numpy()
    y = train.labels.cpu().double().numpy()
    reference = LinearRegression().fit(x, y)
    fit = {
        "slope": slope,
        "intercept": intercept,
        "sklearn_slope": float(reference.coef_[0]),
        "sklearn_intercept": float(reference.intercept_),
        "plot": _plot(x[:, 0], y, (slope, intercept), reference, run_dir),
    }
    return fit


def describe(fit: dict[str, Any]) -> str:
    return (
        f"line     y = {fit['slope']:.4f} x + {fit['intercept']:.4f}   "
        f"(scikit-learn's least squares: {fit['sklearn_slope']:.4f} x + {fit['sklearn_intercept']:.4f})"
    )


def _plot(
    x: np.ndarray,
    y: np.ndarray,
    line: tuple[float, float],
    reference: LinearRegression,
    run_dir: Path,
) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("line     (no plot: matplotlib is missing; pip install 'mlplab[report]')")
        return None
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.scatter(x, y, s=10, alpha=0.5, label="training data")
    grid = np.linspace(x.min(), x.max(), 2)
    ax.plot(
        grid,
        line[0] * grid + line[1],
        color="C3",
        lw=2,
        label=f"mlplab: y = {line[0]:.2f} x + {line[1]:.2f}",
    )
    ax.plot(
        grid,
        reference.predict(grid[:, None]),
        color="k",
        ls="--",
        lw=1,
        label=f"scikit-learn: y = {reference.coef_[0]:.2f} x + {reference.intercept_:.2f}",
    )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize=8)
    ax.set_title("The fitted line over the training data")
    fig.tight_layout()
    atomic_write(run_dir / PLOT, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return PLOT
