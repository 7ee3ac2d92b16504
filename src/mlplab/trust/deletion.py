"""Faithfulness, measured: the deletion test of an explanation.

An attribution map claims "these pixels made the answer". The deletion test (Petsiuk et al.
2018, "RISE"; Samek et al. 2017) checks the claim: set the k% most-attributed pixels to the
background, for k from 0 to 100, and follow the probability of the class the model gave the
intact image. A faithful map makes it fall fast; pixels deleted in a random order are the
control. Each curve is the mean over the images; its area (the mean probability over k,
trapezoids) sums it up: lower is more faithful, and the map is worth something when its area
is below the random one.

A pixel is a position (all of its channels deleted together), ranked by its attribution
summed over the channels, most positive first (for saliency, which is unsigned, largest
first). "Background" is the baseline of :mod:`.explain`: the run's training images' border
level in pixel space, so a deleted pixel is one the model has seen empty a million times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["FRACTIONS", "Deletion", "deletion_curve"]

FRACTIONS = tuple(i / 20 for i in range(21))  # of the pixels deleted: 0%, 5%, ..., 100%
CHUNK = 1024  # images per forward pass


@dataclass(frozen=True)
class Deletion:
    """The deletion curves of one method on ``images`` images: the mean probability of the
    originally predicted class after deleting ``fractions`` of the pixels, most-attributed
    first (``attributed``) and in a seeded random order (``random``), and their areas."""

    method: str
    images: int
    fractions: np.ndarray
    attributed: np.ndarray
    random: np.ndarray

    @property
    def area(self) -> float:
        """Area under the attributed curve (mean probability over k; lower: more faithful)."""
        return _area(self.fractions, self.attributed)

    @property
    def random_area(self) -> float:
        return _area(self.fractions, self.random)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "images": self.images,
            "fractions": [round(float(f), 4) for f in self.fractions],
            "attributed": [round(float(p), 6) for p in self.attributed],
            "random": [round(float(p), 6) for p in self.random],
            "area": round(self.area, 6),
            "random_area": round(self.random_area, 6),
        }


def _area(x: np.ndarray, y: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum()) if len(x) > 1 else float("nan")


@torch.no_grad()
def deletion_curve(
    model: nn.Module,
    pixels: torch.Tensor,
    maps: torch.Tensor,
    baseline: torch.Tensor,
    *,
    method: str = "",
    fractions: tuple[float, ...] = FRACTIONS,
    seed: int = 0,
) -> Deletion:
    """The deletion test of ``maps`` (``(N, C, H, W)``, from :func:`.explain.attribute`).

    ``model``: pixels in [0, 1] -> log-odds (:class:`.explain.LogOdds`, whose sigmoid is the
    probability); ``pixels``: uint8 or floats in [0, 1], ``(N, C, H, W)``; ``baseline``: the background
    image of each (:func:`.explain.baseline_images`). The class followed is each image's
    predicted one; the random order is drawn from ``seed``.
    """
    x = torch.as_tensor(pixels)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    n, _, h, w = x.shape
    device = next(iter(model.parameters()), torch.empty(0)).device
    x, baseline = x.to(device), baseline.to(device).expand_as(x)
    targets = torch.cat([model(c).argmax(1) for c in x.split(CHUNK)]) if n else torch.empty(0)
    score = maps.to(device).float().sum(1).flatten(1)  # (N, H*W)
    ranked = score.argsort(dim=1, descending=True, stable=True)
    g = torch.Generator().manual_seed(seed)
    shuffled = torch.rand(n, h * w, generator=g).argsort(1).to(device)
    curves = {
        name: np.array(
            [_mean_probability(model, x, baseline, order, f, targets) for f in fractions]
        )
        for name, order in (("attributed", ranked), ("random", shuffled))
    }
    return Deletion(method, n, np.array(fractions), curves["attributed"], curves["random"])


def _mean_probability(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    order: torch.Tensor,
    fraction: float,
    targets: torch.Tensor,
) -> float:
    """The mean probability of ``targets`` once the first ``fraction`` of each image's pixels
    in ``order`` are set to the baseline."""
    if not len(x):
        return float("nan")
    n, _, h, w = x.shape
    k = round(fraction * h * w)
    mask = torch.zeros(n, h * w, dtype=torch.bool, device=x.device)
    mask.scatter_(1, order[:, :k], True)
    deleted = torch.where(mask.view(n, 1, h, w), baseline, x)
    probs = torch.cat([model(chunk).sigmoid() for chunk in deleted.split(CHUNK)])
    return float(probs.gather(1, targets[:, None]).mean())
