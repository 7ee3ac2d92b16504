"""Metrics of a model on a split: loss, accuracy, per-class accuracy.

:func:`evaluate_split` is what the training loop calls every epoch; :func:`evaluate`
takes only a run directory, rebuilds the best model from it and scores the test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .batches import iterate_batches
from .data import Split, load_dataset
from .losses import loss_fn
from .model import MLP
from .run import Run

__all__ = ["Scores", "evaluate", "evaluate_split"]


@dataclass
class Scores:
    """Loss and accuracy on a split, with the per-class picture."""

    loss: float
    accuracy: float  # fraction in [0, 1]
    samples: int
    per_class_accuracy: list[float] = field(default_factory=list)  # recall of each class

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
) -> Scores:
    """Score ``model`` on a device split (never augmented), in eval mode."""
    was_training = model.training
    model.eval()
    criterion = loss_fn(model.head)
    total_loss = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    predictions, labels = [], []
    for x, y in iterate_batches(split, batch_size, scale, offset, max_batches=max_batches):
        out = model(x)
        total_loss += criterion(out, y).double() * len(y)
        predictions.append(out.argmax(1))
        labels.append(y)
    model.train(was_training)
    pred, true = torch.cat(predictions), torch.cat(labels)
    n, hit = len(true), pred == true
    correct = torch.bincount(true[hit], minlength=model.classes)
    counts = torch.bincount(true, minlength=model.classes).clamp_(min=1)
    return Scores(
        loss=float(total_loss) / n,
        accuracy=float(hit.sum()) / n,
        samples=n,
        per_class_accuracy=(correct.double() / counts).tolist(),
    )


def evaluate(
    run_dir: str | Path, *, data_dir: str | Path | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Score a run's best weights on its dataset's test split.

    Returns ``{"loss", "accuracy", "samples", "per_class_accuracy", "classes", "dataset"}``.
    """
    run = Run.open(run_dir)
    config = run.config()
    model, normalization, classes = run.load_model(device)
    data = load_dataset(
        config.data.dataset,
        data_dir or config.data.data_dir,
        download=config.data.download,
        mirror=config.data.mirror,
    )
    scale, offset = normalization.affine(device)
    scores = evaluate_split(
        model, data.test.to(device), scale, offset, batch_size=config.train.eval_batch_size
    )
    return {**scores.to_dict(), "classes": list(classes), "dataset": config.data.dataset}
