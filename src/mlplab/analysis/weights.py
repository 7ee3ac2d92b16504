"""The learned weights: per-layer statistics and histograms, and the first layer as images.

A hidden unit of the first layer has one weight per input pixel, so its weight vector is
itself an image of the input's shape (C, H, W): the pattern that excites it most. For a
logistic regression the first layer is the output layer and each "unit" is a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..model.mlp import MLP

__all__ = ["FirstLayer", "LayerWeights", "first_layer", "layer_weights"]

HISTOGRAM_BINS = 60


@dataclass(frozen=True)
class LayerWeights:
    """Statistics of one Linear layer's weight matrix (biases excluded)."""

    name: str  # hidden.0, hidden.1, ..., output
    shape: tuple[int, int]  # (out_features, in_features)
    mean: float
    std: float  # population standard deviation (numpy's default, ddof=0)
    min: float
    max: float
    l2: float  # Frobenius norm: sqrt of the sum of squares
    counts: np.ndarray  # int64 (bins,): histogram of the weights
    edges: np.ndarray  # float (bins + 1,): the histogram's bin edges

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def cells(self) -> dict[str, str]:
        """The statistics as table cells (the report's and compare's tables): the shape as
        "out x in", mean, min and max signed."""
        return {
            "shape": f"{self.shape[0]}x{self.shape[1]}",
            "mean": f"{self.mean:+.5f}",
            "std": f"{self.std:.5f}",
            "min": f"{self.min:+.4f}",
            "max": f"{self.max:+.4f}",
            "l2": f"{self.l2:.3f}",
        }

    def to_dict(self) -> dict[str, Any]:
        """The statistics (no histogram) as plain JSON-able values."""
        return {
            "layer": self.name,
            "shape": list(self.shape),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "l2": self.l2,
        }


@dataclass(frozen=True)
class FirstLayer:
    """Some units of the first layer, each unit's weights reshaped to the input's (C, H, W)."""

    weights: np.ndarray  # float32 (n, C, H, W): raw weights, not rescaled
    units: np.ndarray  # int64 (n,): which rows of the weight matrix
    names: tuple[str, ...]  # "unit 17", or the class name for a logistic regression
    norms: np.ndarray  # float (n,): each unit's L2 norm
    layer: str  # hidden.0 or output


def _linear_layers(model: MLP) -> list[tuple[str, torch.nn.Linear]]:
    return [(f"hidden.{i}", block.linear) for i, block in enumerate(model.hidden)] + [
        ("output", model.output)
    ]


@torch.no_grad()
def layer_weights(model: MLP, bins: int = HISTOGRAM_BINS) -> list[LayerWeights]:
    """Statistics and a histogram of every Linear layer's weights, input to output."""
    result = []
    for name, linear in _linear_layers(model):
        w = linear.weight.detach().to("cpu", torch.float64)
        counts, edges = np.histogram(w.numpy().ravel(), bins=bins)
        result.append(
            LayerWeights(
                name=name,
                shape=(int(w.shape[0]), int(w.shape[1])),
                mean=float(w.mean()),
                std=float(w.std(correction=0)),
                min=float(w.min()),
                max=float(w.max()),
                l2=float(torch.linalg.vector_norm(w)),
                counts=counts.astype(np.int64),
                edges=edges,
            )
        )
    return result


@torch.no_grad()
def first_layer(
    model: MLP, n: int = 25, order: str = "norm", classes: tuple[str, ...] | None = None
) -> FirstLayer:
    """``n`` units of the first layer as input-shaped images.

    ``order="norm"`` takes the units with the largest weight norms (the ones that matter
    most to the next layer's input); ``"index"`` the first ``n``. A logistic regression's
    first layer is its output layer: its first ``n`` classes are shown, named by ``classes``.
    """
    name, linear = _linear_layers(model)[0]
    w = linear.weight.detach().to("cpu", torch.float32)
    norms = torch.linalg.vector_norm(w, dim=1)
    is_output = name == "output"
    if is_output or order == "index":
        units = torch.arange(min(n, len(w)))
    else:
        units = torch.argsort(norms, descending=True, stable=True)[:n]
    if is_output and classes is not None:
        labels = tuple(f"class {classes[int(u)]}" for u in units)
    else:
        labels = tuple(f"unit {int(u)}" for u in units)
    images = w[units]
    if c := model.crop:  # the cropped border has no weights: shown as 0
        channels, height, width = model.input_shape
        seen = images.view(len(units), channels, height - 2 * c, width - 2 * c)
        images = torch.nn.functional.pad(seen, (c, c, c, c))
    return FirstLayer(
        weights=images.reshape(len(units), *model.input_shape).numpy(),
        units=units.numpy().astype(np.int64),
        names=labels,
        norms=norms[units].numpy().astype(np.float64),
        layer=name,
    )
