"""What a model head's outputs mean, in one place.

A head (:data:`mlplab.vocab.HEADS`) is what the model does after its output layer:
``logits`` leaves the values as they are, ``log_softmax`` turns them into log-probabilities,
``softmax`` into probabilities. Whatever reads a model's outputs asks this module what they
mean instead of knowing it itself: the class probabilities and log-probabilities (predict,
serve, the analyses, the test-time views), the training and evaluation loss and its name,
the loss a fresh model should start near, and the name the exported file gives the output.
A new head is one row of :data:`_HEADS`.

A run's temperature ``T`` (:mod:`mlplab.trust.calibration`) scales every head the same way:
the calibrated probabilities are ``softmax(z / T)``, ``z`` being logits whose softmax is the
head's own probabilities (:func:`to_logits`). The rule lives here, low enough for the
analyses, the predictor and the exported model to share it; ``T = 1`` changes nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError, did_you_mean
from ..vocab import HEADS

__all__ = [
    "CLASSIFICATION_LOSSES",
    "OUTPUT_NAMES",
    "Head",
    "expected_initial_loss",
    "from_log_probabilities",
    "from_logits",
    "head",
    "log_probabilities",
    "loss_fn",
    "probabilities",
    "to_logits",
    "with_temperature",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Outputs = Callable[[torch.Tensor], torch.Tensor]


def _nll_on_probabilities(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # nn.NLLLoss on softmax outputs: -mean p(y). The tutorials' "linear softmax" ablation;
    # its gradient vanishes as p(y) -> 0, which is why it trains worse than log-softmax.
    return F.nll_loss(probs, target)


def _log_of_probabilities(probs: torch.Tensor) -> torch.Tensor:
    # a probability that underflowed to 0 gets the smallest normal number's log, not -inf
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


@dataclass(frozen=True)
class Head:
    """One head: how its outputs come from the output layer, what they mean, its loss."""

    name: str
    output_name: str  # what the exported file calls the output
    loss_name: str  # evaluate.json's loss_function
    loss: Loss  # the training and evaluation loss, (outputs, class indices) -> mean
    from_logits: Outputs  # the output layer's values -> this head's outputs
    from_log_probabilities: Outputs  # log-probabilities -> outputs that mean the same
    probabilities: Outputs  # this head's outputs -> class probabilities
    log_probabilities: Outputs  # this head's outputs -> their natural log
    to_logits: Outputs  # this head's outputs -> logits whose softmax is its probabilities

    def initial_loss(self, classes: int) -> float:
        """The loss of uniform predictions over ``classes`` classes."""
        # NLL on probabilities is -mean p(y) = -1/K; the others are the cross-entropy, log K
        return -1.0 / classes if self.name == "softmax" else math.log(classes)


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


# Log-probabilities are valid logits (their softmax gives the probabilities back), so the
# logits and log_softmax heads return them as they are.
_HEADS = {
    row.name: row
    for row in (
        Head(
            name="logits",
            output_name="logits",
            loss_name="cross-entropy",
            loss=F.cross_entropy,
            from_logits=_same,
            from_log_probabilities=_same,
            probabilities=lambda z: torch.softmax(z, dim=1),
            log_probabilities=lambda z: torch.log_softmax(z, dim=1),
            to_logits=_same,
        ),
        Head(
            name="log_softmax",
            output_name="log_probabilities",
            loss_name="nll",
            loss=F.nll_loss,
            from_logits=lambda z: torch.log_softmax(z, dim=1),
            from_log_probabilities=_same,
            probabilities=torch.exp,
            log_probabilities=_same,
            to_logits=_same,
        ),
        Head(
            name="softmax",
            output_name="probabilities",
            loss_name="nll of probabilities",
            loss=_nll_on_probabilities,
            from_logits=lambda z: torch.softmax(z, dim=1),
            from_log_probabilities=torch.exp,
            probabilities=_same,
            log_probabilities=_log_of_probabilities,
            to_logits=_log_of_probabilities,
        ),
    )
}

# head -> the name of its output in an exported file (export writes it)
OUTPUT_NAMES = {name: head.output_name for name, head in _HEADS.items()}
# head -> the name of its loss (evaluate.json's loss_function for a classifier)
CLASSIFICATION_LOSSES = {name: head.loss_name for name, head in _HEADS.items()}

_REGRESSION_LOSSES: dict[str, Loss] = {
    "mse": lambda out, target: F.mse_loss(out.squeeze(1), target),
    "mae": lambda out, target: F.l1_loss(out.squeeze(1), target),
}


def head(name: str) -> Head:
    """The head called ``name``; a ConfigError naming the heads for any other name."""
    if name not in _HEADS:
        raise ConfigError(
            f"model.head must be one of {', '.join(HEADS)}; got {name!r}{did_you_mean(name, HEADS)}"
        )
    return _HEADS[name]


def from_logits(name: str, logits: torch.Tensor) -> torch.Tensor:
    """The outputs of head ``name`` for the output layer's values ``logits`` ``(N, K)``."""
    return head(name).from_logits(logits)


def from_log_probabilities(name: str, log_p: torch.Tensor) -> torch.Tensor:
    """Outputs of head ``name`` that mean the class log-probabilities ``log_p`` ``(N, K)``."""
    return head(name).from_log_probabilities(log_p)


def probabilities(name: str, outputs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Class probabilities ``(N, K)``, rows summing to 1, from the outputs of head ``name``
    (in their own dtype: a caller that wants float32 casts first); with a ``temperature``,
    the calibrated ones, ``softmax(to_logits(outputs) / temperature)``."""
    if temperature == 1.0:
        return head(name).probabilities(outputs)
    return torch.softmax(to_logits(name, outputs) / temperature, dim=1)


def log_probabilities(name: str, outputs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Natural logs of the class probabilities from the outputs of head ``name`` (calibrated
    by ``temperature`` as :func:`probabilities` is); a probability that underflowed to 0 has
    the log of the dtype's smallest normal number."""
    if temperature == 1.0:
        return head(name).log_probabilities(outputs)
    return torch.log_softmax(to_logits(name, outputs) / temperature, dim=1)


def to_logits(name: str, outputs: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is head ``name``'s probabilities: a logits head's outputs, a
    log-softmax head's log-probabilities, a softmax head's log-probabilities (clamped at the
    dtype's smallest normal number, so that a temperature never divides -inf)."""
    return head(name).to_logits(outputs)


def with_temperature(name: str, outputs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Outputs of head ``name`` that mean its calibrated probabilities: ``z / T`` for the
    logits head (calibrated logits), ``log_softmax(z / T)`` for log-softmax, ``softmax(z / T)``
    for softmax, ``z`` being :func:`to_logits`. What the exported model returns."""
    if temperature == 1.0:
        return outputs
    return from_logits(name, to_logits(name, outputs) / temperature)


def loss_fn(name: str, loss: str | None = None, label_smoothing: float = 0.0) -> Loss:
    """The loss of a model with head ``name``: cross-entropy for logits (with
    ``label_smoothing``, the training loss), NLL for log-softmax, NLL on probabilities for
    softmax; for a regression, ``loss`` names its loss (mse or mae) on the single output."""
    if loss is not None:
        return _REGRESSION_LOSSES[loss]
    if label_smoothing:
        return functools.partial(F.cross_entropy, label_smoothing=label_smoothing)
    return head(name).loss


def expected_initial_loss(name: str, classes: int) -> float:
    """The loss of uniform predictions: what a freshly initialized model should be near."""
    return head(name).initial_loss(classes)
