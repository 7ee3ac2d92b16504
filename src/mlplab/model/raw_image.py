"""A run's model with its normalization built in: what predict, serve and export all run.

The model trained on normalized inputs; an image file, an upload or an exported model's
caller has pixels in [0, 1]. :class:`RawImageModel` puts the two together once, so the
predictor (:mod:`mlplab.inference.predictor`) and the exporter
(:mod:`mlplab.inference.export`) run the very same function.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data import Normalization
from .mlp import MLP

__all__ = ["RawImageModel"]


class RawImageModel(nn.Module):
    """A run's model with its normalization built in: takes pixels in [0, 1], ``(N, C, H, W)``.

    ``forward(pixels) = model(pixels * 255 * scale + offset)``: the affine map the training
    loop applies to uint8 pixels (``Normalization.affine``). Multiplying by 255 first gives
    back the exact integer for every ``k / 255``, so the model sees bit for bit what it saw
    in training.
    """

    def __init__(self, model: MLP, normalization: Normalization) -> None:
        super().__init__()
        scale, offset = normalization.affine()
        self.model = model
        self.input_shape = model.input_shape
        self.head = model.head
        self.register_buffer("scale", scale)  # (C, 1, 1), per 0-255 pixel level
        self.register_buffer("offset", offset)  # (C, 1, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels * 255 * self.scale + self.offset)
