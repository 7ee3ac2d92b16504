"""Which samples to look at: the most confident mistakes, and a seeded sample of predictions.

Both return a :class:`Picked`: the samples' indices into the split and everything a figure
needs to show them (pixels, true and predicted class, both probabilities, every class's
probability and log-probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .predictions import Predictions

__all__ = ["Picked", "most_confident_mistakes", "pick", "sample_predictions"]


@dataclass(frozen=True)
class Picked:
    """Some samples of a split with the model's verdict on each."""

    indices: np.ndarray  # int64 (n,): positions in the split
    images: np.ndarray  # uint8 (n, C, H, W)
    labels: np.ndarray  # int64 (n,)
    predicted: np.ndarray  # int64 (n,)
    probabilities: np.ndarray  # float32 (n, K)
    log_probabilities: np.ndarray  # float32 (n, K)
    classes: tuple[str, ...]

    @property
    def true_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.indices)), self.labels]

    @property
    def predicted_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.indices)), self.predicted]

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.predicted

    def __len__(self) -> int:
        return len(self.indices)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per sample: index, true, predicted (names) and their probabilities."""
        return [
            {
                "index": int(i),
                "true": self.classes[t],
                "predicted": self.classes[p],
                "true_probability": float(pt),
                "predicted_probability": float(pp),
            }
            for i, t, p, pt, pp in zip(
                self.indices,
                self.labels,
                self.predicted,
                self.true_probability,
                self.predicted_probability,
                strict=True,
            )
        ]


def pick(predictions: Predictions, indices: np.ndarray) -> Picked:
    """The samples at ``indices`` of ``predictions``."""
    indices = np.asarray(indices, dtype=np.int64)
    return Picked(
        indices=indices,
        images=predictions.images[indices],
        labels=predictions.labels[indices],
        predicted=predictions.predicted[indices],
        probabilities=predictions.probabilities[indices],
        log_probabilities=predictions.log_probabilities[indices],
        classes=predictions.classes,
    )


def most_confident_mistakes(predictions: Predictions, n: int = 25) -> Picked:
    """The ``n`` wrong predictions with the highest predicted-class probability, highest first
    (ties: the lower true-class probability first, then the split's order)."""
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    confidence = predictions.confidence[wrong]
    true_p = predictions.probabilities[wrong, predictions.labels[wrong]]
    order = np.lexsort((wrong, true_p, -confidence))[:n]
    return pick(predictions, wrong[order])


def sample_predictions(predictions: Predictions, n: int = 36, seed: int = 0) -> Picked:
    """``n`` samples drawn at random (seeded), in the split's order: right and wrong as they
    come."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(predictions), size=min(n, len(predictions)), replace=False)
    return pick(predictions, np.sort(chosen))
