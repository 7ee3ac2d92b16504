"""The loss that matches each model head, and its expected value at initialization."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["expected_initial_loss", "loss_fn"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _nll_on_probabilities(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # nn.NLLLoss on softmax outputs: -mean p(y). The tutorials' "linear softmax" ablation;
    # its gradient vanishes as p(y) -> 0, which is why it trains worse than log-softmax.
    return F.nll_loss(probs, target)


_LOSSES: dict[str, Loss] = {
    "logits": F.cross_entropy,
    "log_softmax": F.nll_loss,
    "softmax": _nll_on_probabilities,
}


_REGRESSION_LOSSES: dict[str, Loss] = {
    "mse": lambda out, target: F.mse_loss(out.squeeze(1), target),
    "mae": lambda out, target: F.l1_loss(out.squeeze(1), target),
}


def loss_fn(head: str, regression: str | None = None, label_smoothing: float = 0.0) -> Loss:
    """Cross-entropy for logits (with ``label_smoothing``, the training loss), NLL for
    log-softmax, NLL on probabilities for softmax; for a regression (``regression`` = mse or
    mae) that loss on the single output."""
    if regression:
        return _REGRESSION_LOSSES[regression]
    if label_smoothing:
        return functools.partial(F.cross_entropy, label_smoothing=label_smoothing)
    return _LOSSES[head]


def expected_initial_loss(head: str, classes: int) -> float:
    """The loss of uniform predictions: what a freshly initialized model should be near."""
    return -1.0 / classes if head == "softmax" else math.log(classes)
