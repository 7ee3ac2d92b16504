"""A run's model with its normalization built in: what predict, serve and export all run.

The model trained on normalized inputs; an image file, an upload or an exported model's
caller has pixels in [0, 1]. :class:`RawImageModel` puts the two together once, so the
predictor (:mod:`mlplab.inference.predictor`) and the exporter
(:mod:`mlplab.inference.export`) run the very same function, calibrated by the run's
temperature in the head's own rule (:func:`mlplab.model.heads.with_temperature`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Normalization
from . import heads
from .mlp import MLP

__all__ = ["RawImageModel"]


class RawImageModel(nn.Module):
    """A run's model with its normalization built in: takes pixels in [0, 1], ``(N, C, H, W)``.

    ``forward(pixels) = model(pixels * 255 * scale + offset)``: the affine map the training
    loop applies to uint8 pixels (``Normalization.affine``). Multiplying by 255 first gives
    back the exact integer for every ``k / 255``, so the model sees bit for bit what it saw
    in training.

    With a ``temperature`` T (``model.json``'s, :mod:`mlplab.trust.calibration`) the outputs
    mean the calibrated probabilities ``softmax(z / T)``: calibrated logits ``z / T`` for the
    logits head, ``log_softmax(z / T)`` and ``softmax(z / T)`` for the others. The predicted
    class is the same at every temperature.
    """

    def __init__(self, model: MLP, normalization: Normalization, temperature: float = 1.0) -> None:
        super().__init__()
        scale, offset = normalization.affine()
        self.model = model
        self.input_shape = model.input_shape
        self.head = model.head
        self.temperature = float(temperature)  # a constant of the traced or exported graph
        self.register_buffer("scale", scale)  # (C, 1, 1), per 0-255 pixel level
        self.register_buffer("offset", offset)  # (C, 1, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        outputs = self.model(pixels * 255 * self.scale + self.offset)
        return heads.with_temperature(self.head, outputs, self.temperature)
