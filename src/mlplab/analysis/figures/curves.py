"""Training curves: one run's loss and accuracy per epoch, and several runs overlaid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..curves import Curves
from .base import TEST, TRAIN, VAL, class_colors, empty, integer_epochs, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["compare_curves_figure", "curves_figure"]

MARKED = 20  # epochs up to which every epoch is a marker and a tick


def curves_figure(curves: Curves) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training and validation; the kept (best)
    epoch is marked and the kept weights' test score is drawn at it."""
    figure = new_figure(10, 3.8)
    if len(curves.epochs) == 0:
        return empty(figure, "no epochs recorded (metrics.jsonl is empty)")
    loss_ax, acc_ax = figure.subplots(1, 2)
    test_accuracy = None if curves.test_accuracy is None else curves.test_accuracy * 100
    _one_run(loss_ax, curves, curves.train_loss, curves.val_loss, curves.test_loss, "loss")
    _one_run(
        acc_ax,
        curves,
        curves.train_accuracy * 100,
        curves.val_accuracy * 100,
        test_accuracy,
        "accuracy (%)",
    )
    loss_ax.set_title("loss (lower is better)")
    acc_ax.set_title("accuracy (higher is better)")
    if curves.name:
        figure.suptitle(curves.name)
    return figure


def _one_run(
    ax: Axes,
    curves: Curves,
    train: np.ndarray,
    val: np.ndarray,
    test: float | None,
    what: str,
) -> None:
    """One panel of :func:`curves_figure`: training, validation, the kept epoch, its test score."""
    marker = "o" if len(curves.epochs) <= MARKED else None
    ax.plot(curves.epochs, train, color=TRAIN, marker=marker, ms=3, label="train")
    if curves.has_validation:
        ax.plot(curves.epochs, val, color=VAL, marker=marker, ms=3, label="validation")
    if curves.best_epoch is not None:
        kept = f"kept: epoch {curves.best_epoch}"
        ax.axvline(curves.best_epoch, color="0.5", ls=":", lw=1, label=kept)
        if test is not None:
            text = f"{test:.2f}%" if "accuracy" in what else f"{test:.4f}"
            star = {"marker": "*", "ms": 13, "color": TEST, "ls": "none"}
            ax.plot([curves.best_epoch], [test], **star, label=f"test {text}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(what)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if len(curves.epochs) <= MARKED:
        ax.set_xticks(curves.epochs)
    else:
        integer_epochs(ax)


def compare_curves_figure(runs: Sequence[Curves]) -> Figure:
    """Validation (solid) and training (dashed) loss and accuracy of several runs, overlaid."""
    figure = new_figure(11, 4.2)
    loss_ax, acc_ax = figure.subplots(1, 2)
    for curves, color in zip(runs, class_colors(max(len(runs), 1)), strict=False):
        label = curves.name
        if curves.test_accuracy is not None:
            label += f" (test {curves.test_accuracy:.2%})"
        _overlay(loss_ax, curves, curves.train_loss, curves.val_loss, color, label)
        accuracy = (curves.train_accuracy * 100, curves.val_accuracy * 100)
        _overlay(acc_ax, curves, *accuracy, color, label)
    loss_ax.set_title("loss: validation solid, training dashed")
    acc_ax.set_title("accuracy (%): validation solid, training dashed")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        integer_epochs(ax)
    acc_ax.legend(fontsize=8)
    return figure


def _overlay(
    ax: Axes,
    curves: Curves,
    train: np.ndarray,
    val: np.ndarray,
    color: tuple[float, float, float, float],
    label: str,
) -> None:
    """One run in a panel of :func:`compare_curves_figure`, its kept epoch a dot."""
    ax.plot(curves.epochs, train, color=color, ls="--", lw=1, alpha=0.8)
    if curves.has_validation:
        ax.plot(curves.epochs, val, color=color, lw=2, label=label)
    else:
        ax.plot([], [], color=color, lw=2, label=label)
    if curves.best_epoch is not None and curves.has_validation:
        i = int(np.searchsorted(curves.epochs, curves.best_epoch))
        if i < len(val):
            ax.plot([curves.best_epoch], [val[i]], marker="o", color=color, ms=6)
