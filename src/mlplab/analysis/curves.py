"""The training history as arrays: loss and accuracy per epoch, the best epoch, the test score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Curves", "curves"]


@dataclass(frozen=True)
class Curves:
    """Per-epoch curves of one run (NaN where a value was not recorded, e.g. no validation)."""

    epochs: np.ndarray  # int64 (E,)
    train_loss: np.ndarray
    val_loss: np.ndarray
    train_accuracy: np.ndarray  # fractions in [0, 1]
    val_accuracy: np.ndarray
    lr: np.ndarray
    best_epoch: int | None  # the epoch whose weights were kept (train.select)
    test_loss: float | None  # the kept weights on the test split
    test_accuracy: float | None
    name: str = ""

    @property
    def has_validation(self) -> bool:
        return bool(np.isfinite(self.val_loss).any())


def curves(
    history: list[dict[str, Any]], summary: dict[str, Any] | None = None, name: str = ""
) -> Curves:
    """Arrays from ``run.metrics()`` (and the test figures and best epoch of ``run.summary()``).

    A record without an epoch number (``metrics.jsonl`` allows null; a damaged or foreign
    file) is left out, as the notebook's curves do, rather than failing the whole figure."""
    summary = summary or {}
    history = [r for r in history if isinstance(r.get("epoch"), int) and r["epoch"] >= 0]

    def column(key: str) -> np.ndarray:
        return np.array(
            [np.nan if r.get(key) is None else float(r[key]) for r in history], dtype=np.float64
        )

    best = summary.get("best_epoch")
    return Curves(
        epochs=np.array([int(r["epoch"]) for r in history], dtype=np.int64),
        train_loss=column("train_loss"),
        val_loss=column("val_loss"),
        train_accuracy=column("train_accuracy"),
        val_accuracy=column("val_accuracy"),
        lr=column("lr"),
        best_epoch=int(best) if best is not None else None,
        test_loss=summary.get("test_loss"),
        test_accuracy=summary.get("test_accuracy"),
        name=name,
    )
