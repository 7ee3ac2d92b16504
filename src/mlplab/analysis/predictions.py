"""What a model says about every sample of a split: probabilities, logits, the last hidden layer.

:func:`predict_split` runs the model over a split in batches (the same batches, in the same
order, as :func:`mlplab.training.metrics.evaluate_split`, so its accuracy is the run's own) and
keeps everything the other analyses need on the host as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Normalization, Split
from ..model import heads
from ..model.heads import loss_fn
from ..model.mlp import MLP
from ..training.batches import iterate_batches

__all__ = ["Predictions", "predict_split"]


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on a split, one row per sample, in the split's order."""

    images: np.ndarray  # uint8 (N, C, H, W): the raw pixels, for showing samples
    labels: np.ndarray  # int64 (N,): true classes
    predicted: np.ndarray  # int64 (N,): argmax of the model's outputs
    probabilities: np.ndarray  # float32 (N, K): rows sum to 1, calibrated by the temperature
    log_probabilities: np.ndarray  # float32 (N, K): their natural log
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


@torch.no_grad()
def predict_split(
    model: MLP,
    split: Split,
    normalization: Normalization,
    classes: tuple[str, ...] | None = None,
    *,
    batch_size: int = 1000,
    temperature: float = 1.0,
) -> Predictions:
    """Run ``model`` (eval mode) over ``split`` in batches of ``batch_size``; see
    :class:`Predictions`. The probabilities are calibrated by the run's ``temperature``
    (:mod:`mlplab.trust.calibration`); the predicted classes, logits and loss are the model's."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outputs = _batch_outputs(model, split.to(device), normalization, batch_size, temperature)
    finally:
        model.train(was_training)
    k = model.classes
    return Predictions(
        images=split.images.cpu().numpy(),
        labels=split.labels.cpu().numpy().astype(np.int64),
        predicted=outputs.classes("predicted"),
        probabilities=outputs.numpy("probabilities", k),
        log_probabilities=outputs.numpy("log_probabilities", k),
        logits=outputs.numpy("logits", k),
        hidden=outputs.numpy("hidden", model.hidden_sizes[-1]) if model.hidden_sizes else None,
        loss=outputs.mean_loss(len(split)),
        classes=tuple(classes) if classes is not None else tuple(str(i) for i in range(k)),
    )


class _Outputs:
    """The per-batch tensors of :func:`predict_split`, kept on the device until the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.loss_sums: list[torch.Tensor] = []

    def add(self, **tensors: torch.Tensor) -> None:
        for name, tensor in tensors.items():
            self.parts.setdefault(name, []).append(tensor)

    def numpy(self, name: str, width: int) -> np.ndarray:
        """The batches of ``name`` as one float32 array (``(0, width)`` for an empty split)."""
        if not self.parts.get(name):
            return np.zeros((0, width), dtype=np.float32)
        return torch.cat(self.parts[name]).float().cpu().numpy()

    def classes(self, name: str) -> np.ndarray:
        """The batches of ``name`` (class indices) as one int64 array."""
        if not self.parts.get(name):
            return np.zeros(0, dtype=np.int64)
        return torch.cat(self.parts[name]).cpu().numpy().astype(np.int64)

    def mean_loss(self, n: int) -> float:
        """The mean loss over ``n`` samples, summed in float64 on the host."""
        return float(torch.stack(self.loss_sums).cpu().double().sum()) / n if n else float("nan")


def _batch_outputs(
    model: MLP, split: Split, normalization: Normalization, batch_size: int, temperature: float
) -> _Outputs:
    """The model's outputs on each batch, in :func:`evaluate_split`'s batches and order."""
    scale, offset = normalization.affine(split.images.device)
    criterion = loss_fn(model.head)
    outputs = _Outputs()
    for x, y in iterate_batches(split, batch_size, scale, offset):
        out, h = model(x, return_hidden=True)
        outputs.loss_sums.append(criterion(out, y) * len(y))
        log_p = heads.log_probabilities(model.head, out, temperature)
        outputs.add(
            predicted=out.argmax(1),
            probabilities=heads.probabilities(model.head, out, temperature),
            log_probabilities=log_p,
            # the output layer's values; a model with test-time views has them for each
            # view only, so its logits are the averaged prediction's (its own
            # log-probabilities, which softmax back to it), not the plain image's
            logits=heads.log_probabilities(model.head, out) if model.tta else model.output(h),
        )
        if model.hidden_sizes:
            outputs.add(hidden=h)
    return outputs
