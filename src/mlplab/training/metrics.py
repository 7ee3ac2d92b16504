"""Metrics of a model on a split: what the training loop computes every epoch.

:func:`evaluate_split` scores a model on one device split; :func:`mlplab.analysis.evaluate.
evaluate` does the same from a run directory alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..data import Split
from ..model.heads import loss_fn
from ..model.mlp import MLP
from .batches import iterate_batches

__all__ = ["Scores", "evaluate_split"]


@dataclass
class Scores:
    """Loss and accuracy on a split, with the per-class picture."""

    loss: float
    accuracy: float | None  # fraction in [0, 1]; None for a regression
    samples: int
    per_class_accuracy: list[float] = field(default_factory=list)  # recall of each class
    r2: float | None = None  # regression only: coefficient of determination
    rmse: float | None = None
    mae: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate_split(
    model: MLP,
    split: Split,
    scale: torch.Tensor,
    offset: torch.Tensor,
    *,
    batch_size: int = 1000,
    max_batches: int | None = None,
    loss: str | None = None,
) -> Scores:
    """Score ``model`` on a device split (never augmented), in eval mode.

    ``loss`` names a regression's loss (mse or mae: scored by R², RMSE and MAE); None
    scores a classifier by its head's loss (:mod:`mlplab.model.heads`) and accuracy.

    Works on every device: per-batch loss sums stay on the device in float32 (MPS has no
    float64) and are added up on the host, exactly, once.
    """
    was_training = model.training
    model.eval()
    regression = loss is not None
    criterion = loss_fn(model.head, loss)
    loss_sums, predictions, labels = [], [], []
    for x, y in iterate_batches(split, batch_size, scale, offset, max_batches=max_batches):
        out = model(x)
        loss_sums.append(criterion(out, y) * len(y))
        predictions.append(out[:, 0] if regression else out.argmax(1))
        labels.append(y)
    model.train(was_training)
    if not labels:
        return Scores(loss=float("nan"), accuracy=float("nan"), samples=0)
    pred, true = torch.cat(predictions).cpu(), torch.cat(labels).cpu()
    total_loss = math.fsum(torch.stack(loss_sums).tolist())  # one transfer, summed exactly
    if regression:
        return _regression_scores(total_loss, pred.numpy(), true.numpy())
    n, hit = len(true), pred == true
    correct = torch.bincount(true[hit], minlength=model.classes).tolist()
    counts = torch.bincount(true, minlength=model.classes).tolist()
    return Scores(
        loss=total_loss / n,
        accuracy=int(hit.sum()) / n,
        samples=n,
        per_class_accuracy=[k / max(m, 1) for k, m in zip(correct, counts, strict=True)],
    )


def _regression_scores(total_loss: float, pred: Any, true: Any) -> Scores:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    n = len(true)
    return Scores(
        loss=total_loss / n,
        accuracy=None,
        samples=n,
        r2=float(r2_score(true, pred)) if n > 1 else float("nan"),
        rmse=float(mean_squared_error(true, pred) ** 0.5),
        mae=float(mean_absolute_error(true, pred)),
    )
