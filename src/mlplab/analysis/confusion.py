"""Confusion matrix, per-class precision/recall/F1/support and the most confused pairs.

All counts come from scikit-learn (``confusion_matrix``, ``precision_recall_fscore_support``);
rows are true classes and columns predicted classes, both in the dataset's class order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Confusion", "confusion", "most_confused"]


@dataclass(frozen=True)
class Confusion:
    """The confusion picture of one split."""

    counts: np.ndarray  # int64 (K, K): counts[i, j] = samples of true class i predicted as j
    precision: np.ndarray  # float (K,): of the samples predicted as j, the fraction truly j
    recall: np.ndarray  # float (K,): of the samples of class i, the fraction predicted i
    f1: np.ndarray  # float (K,): harmonic mean of precision and recall
    support: np.ndarray  # int64 (K,): samples of each true class
    classes: tuple[str, ...]

    @property
    def normalized(self) -> np.ndarray:
        """Row-normalized counts: each true class's predictions as fractions (empty rows 0)."""
        rows = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, rows, out=np.zeros(self.counts.shape), where=rows > 0)

    @property
    def samples(self) -> int:
        return int(self.counts.sum())

    @property
    def accuracy(self) -> float:
        """The accuracy the matrix implies: its trace over its total."""
        return float(np.trace(self.counts)) / self.samples if self.samples else float("nan")

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class: class, precision, recall, f1, support (a table for JSON or pandas)."""
        return [
            {
                "class": name,
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, name in enumerate(self.classes)
        ]

    def most_confused(self, top: int = 10) -> list[dict[str, Any]]:
        """See :func:`most_confused`."""
        return most_confused(self.counts, self.classes, top)

    def __repr__(self) -> str:
        return (
            f"Confusion({len(self.classes)} classes, {self.samples} samples, "
            f"accuracy={self.accuracy:.4f})"
        )


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> Confusion:
    """The confusion matrix and per-class scores of ``predicted`` against ``labels``.

    Classes that never occur get zero rows; precision of a class never predicted and
    recall of a class absent from ``labels`` are 0 (scikit-learn's ``zero_division=0``).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # slow import

    order = list(range(len(classes)))
    counts = confusion_matrix(labels, predicted, labels=order).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=order, zero_division=0
    )
    return Confusion(counts, precision, recall, f1, support.astype(np.int64), tuple(classes))


def most_confused(
    counts: np.ndarray, classes: tuple[str, ...], top: int = 10
) -> list[dict[str, Any]]:
    """The ``top`` (true, predicted) pairs with the most mistakes, most first.

    Only pairs with at least one mistake; ties are ordered by true, then predicted class
    index. Each entry: true, predicted (names), true_index, predicted_index, count, and
    fraction (of the true class's samples).
    """
    off = counts.copy()
    np.fill_diagonal(off, 0)
    true, pred = np.nonzero(off)
    values = off[true, pred]
    order = np.lexsort((pred, true, -values))[:top]  # last key sorts first
    support = counts.sum(axis=1)
    return [
        {
            "true": classes[t],
            "predicted": classes[p],
            "true_index": int(t),
            "predicted_index": int(p),
            "count": int(off[t, p]),
            "fraction": float(off[t, p] / support[t]),
        }
        for t, p in zip(true[order], pred[order], strict=True)
    ]
