"""What a model says about every sample of a split: probabilities, logits, the last hidden layer.

:func:`predict` runs the model over a split in batches (the same batches, in the same
order, as :func:`mlplab.training.metrics.evaluate_split`, so its accuracy is the run's own) and
keeps everything the other analyses need on the host as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Normalization, Split
from ..model.heads import loss_fn
from ..model.mlp import MLP
from ..training.batches import iterate_batches

__all__ = ["Predictions", "predict", "probabilities_from"]


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on a split, one row per sample, in the split's order."""

    images: np.ndarray  # uint8 (N, C, H, W): the raw pixels, for showing samples
    labels: np.ndarray  # int64 (N,): true classes
    predicted: np.ndarray  # int64 (N,): argmax of the model's outputs
    probabilities: np.ndarray  # float32 (N, K): rows sum to 1
    log_probabilities: np.ndarray  # float32 (N, K): natural log
    logits: np.ndarray  # float32 (N, K): the output layer before the head (test-time views: log p)
    hidden: np.ndarray | None  # float32 (N, H): last hidden layer; None for logistic regression
    loss: float  # mean loss of the model's own head (as in training and summary.json)
    classes: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        """Fraction right, computed exactly as :func:`evaluate_split` does."""
        n = len(self.labels)
        return float((self.predicted == self.labels).sum()) / n if n else float("nan")

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, per sample."""
        return self.probabilities[np.arange(len(self.labels)), self.predicted]

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        hidden = "none" if self.hidden is None else str(self.hidden.shape[1])
        return (
            f"Predictions({len(self)} samples, {len(self.classes)} classes, "
            f"accuracy={self.accuracy:.4f}, loss={self.loss:.4f}, hidden={hidden})"
        )


def probabilities_from(outputs: torch.Tensor, head: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, log-probabilities) from the outputs of a model with ``head``."""
    if head == "logits":
        log_p = torch.log_softmax(outputs, dim=1)
        return log_p.exp(), log_p
    if head == "log_softmax":
        return outputs.exp(), outputs
    return outputs, outputs.clamp_min(torch.finfo(outputs.dtype).tiny).log()  # softmax


@torch.no_grad()
def predict(
    model: MLP,
    split: Split,
    normalization: Normalization,
    classes: tuple[str, ...] | None = None,
    *,
    batch_size: int = 1000,
) -> Predictions:
    """Run ``model`` (eval mode) over ``split`` in batches of ``batch_size``; see :class:`Predictions`."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    split = split.to(device)
    scale, offset = normalization.affine(device)
    criterion = loss_fn(model.head)
    keep_hidden = len(model.hidden) > 0
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("pred", "p", "logp", "z", "h")}
    loss_sums = []
    for x, y in iterate_batches(split, batch_size, scale, offset):
        out, h = model(x, return_hidden=True)
        loss_sums.append(criterion(out, y) * len(y))
        p, logp = probabilities_from(out, model.head)
        parts["pred"].append(out.argmax(1))
        parts["p"].append(p)
        parts["logp"].append(logp)
        # the output layer's values; a model with test-time views has them for each view
        # only, so its logits are the averaged prediction's (log-probabilities, which
        # softmax back to it), not the plain image's
        parts["z"].append(logp if model.tta else model.output(h))
        if keep_hidden:
            parts["h"].append(h)
    model.train(was_training)
    k = model.classes

    def cat(name: str, width: int) -> np.ndarray:
        if not parts[name]:
            return np.zeros((0, width), dtype=np.float32)
        return torch.cat(parts[name]).float().cpu().numpy()

    n = len(split)
    return Predictions(
        images=split.images.cpu().numpy(),
        labels=split.labels.cpu().numpy().astype(np.int64),
        predicted=torch.cat(parts["pred"]).cpu().numpy().astype(np.int64)
        if n
        else np.zeros(0, dtype=np.int64),
        probabilities=cat("p", k),
        log_probabilities=cat("logp", k),
        logits=cat("z", k),
        hidden=cat("h", model.hidden_sizes[-1]) if keep_hidden else None,
        loss=float(torch.stack(loss_sums).cpu().double().sum()) / n if n else float("nan"),
        classes=tuple(classes) if classes is not None else tuple(str(i) for i in range(k)),
    )
