"""Imagining a class: the input the model scores highest for it.

Two ways, as in the tutorials:

- :func:`random_search` scores many random-noise images (a batch of ``candidates`` per
  forward pass, ``iterations`` batches) and keeps, for each class, the one with the highest
  probability. It shows how readily an MLP is sure of pure noise.
- :func:`gradient_ascent` starts from the dataset's mean image and climbs the class's
  logit by gradient ascent on the input, with an L2 and a total-variation penalty and
  every step clamped to the valid pixel range: a prototype of the class. (Climbing the
  log-probability instead stalls as soon as the class wins, leaving faint images; the
  penalties are what keep the logit's climb from running to noise.)

Both return an :class:`Imagined` with the images as pixel values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Normalization
from ..errors import ConfigError
from ..model.heads import log_probabilities, probabilities
from ..model.mlp import MLP
from ..progress import progress_bar

__all__ = ["MAX_CLASSES", "Imagined", "gradient_ascent", "random_search"]

MAX_CLASSES = 20  # classes imagined when none are named (figures stay legible)


@dataclass(frozen=True)
class Imagined:
    """One imagined input per target class."""

    method: str  # random | ascent
    images: np.ndarray  # float32 (n, C, H, W): pixel values in [0, 1]
    targets: np.ndarray  # int64 (n,): the class each image was made for
    probabilities: np.ndarray  # float32 (n, K): the model's probabilities for each image
    classes: tuple[str, ...]
    settings: dict[str, Any]  # how it was made (for the caption and analysis.json)

    @property
    def target_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.targets)), self.targets]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"class": self.classes[t], "probability": float(p)}
            for t, p in zip(self.targets, self.target_probability, strict=True)
        ]


def _targets(model: MLP, targets: Sequence[int] | None) -> torch.Tensor:
    if targets is None:
        return torch.arange(min(model.classes, MAX_CLASSES))
    chosen = torch.as_tensor(list(targets), dtype=torch.long)
    if len(chosen) == 0 or int(chosen.min()) < 0 or int(chosen.max()) >= model.classes:
        raise ConfigError(
            f"classes to imagine must be indices 0..{model.classes - 1}; got {list(targets)}"
        )
    return chosen


def _classes(model: MLP, classes: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(classes) if classes is not None else tuple(str(i) for i in range(model.classes))


def _check(name: str, value: int | float, low: float) -> None:
    if not value >= low:
        raise ConfigError(f"imagine {name} must be >= {low:g}; got {value}")


@torch.no_grad()
def random_search(
    model: MLP,
    normalization: Normalization,
    classes: Sequence[str] | None = None,
    *,
    targets: Sequence[int] | None = None,
    candidates: int = 1000,
    iterations: int = 20,
    seed: int = 0,
    temperature: float = 1.0,
) -> Imagined:
    """For each target class, the best of ``candidates * iterations`` uniform-noise images.

    Every candidate is scored for every class in one forward pass; a class keeps the
    candidate with its highest log-probability so far. The probabilities returned are
    calibrated by the run's ``temperature``, as predict shows them.
    """
    _check("candidates", candidates, 1)
    _check("iterations", iterations, 1)
    chosen, scale, offset = _start(model, normalization, targets)
    device, shape = chosen.device, model.input_shape
    generator = torch.Generator(device).manual_seed(seed)
    best_score = torch.full((len(chosen),), -torch.inf, device=device)
    best = torch.zeros((len(chosen), *shape), device=device)
    bar = progress_bar(total=iterations, desc="imagine (random)", unit="batch")
    try:
        for _ in range(iterations):
            pixels = torch.rand((candidates, *shape), generator=generator, device=device)
            log_p = log_probabilities(model.head, model(pixels * (255 * scale) + offset))
            score, which = log_p[:, chosen].max(dim=0)
            better = score > best_score
            best_score = torch.where(better, score, best_score)
            best[better] = pixels[which[better]]
            bar.update()
    finally:
        bar.close()
    probs = probabilities(model.head, model(best * (255 * scale) + offset), temperature)
    settings = {"candidates": candidates, "iterations": iterations, "seed": seed}
    return _imagined("random", model, classes, chosen, best, probs, settings)


def gradient_ascent(
    model: MLP,
    normalization: Normalization,
    classes: Sequence[str] | None = None,
    *,
    targets: Sequence[int] | None = None,
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 10.0,
    tv: float = 5.0,
    seed: int = 0,
    temperature: float = 1.0,
) -> Imagined:
    """For each target class, an input found by Adam ascent on its logit.

    Works in the model's normalized input space, starting at the training mean (0) plus a
    little seeded noise; maximizes ``logit(class) - l2 * mean(x^2) - tv * total_variation(x)``
    (both penalties per pixel, in normalized units; the defaults were chosen by eye on
    MNIST) and clamps every step to the normalized image of [0, 255]. All targets are
    optimized together, as one batch. The probabilities returned are calibrated by the
    run's ``temperature``.
    """
    _check("steps", steps, 1)
    _check("lr", lr, 0)
    _check("l2", l2, 0)
    _check("tv", tv, 0)
    chosen, scale, offset = _start(model, normalization, targets)
    low, high = offset, 255 * scale + offset  # pixel 0 and pixel 255, normalized
    generator = torch.Generator(chosen.device).manual_seed(seed)
    shape = (len(chosen), *model.input_shape)
    x = 0.01 * torch.randn(shape, generator=generator, device=chosen.device)
    x = torch.maximum(torch.minimum(x, high), low).requires_grad_(True)
    adam = _Adam(x, lr)
    rows = torch.arange(len(chosen), device=chosen.device)
    bar = progress_bar(total=steps, desc="imagine (ascent)", unit="step")
    try:
        for _ in range(steps):
            with torch.enable_grad():
                _, hidden = model(x, return_hidden=True)
                logits = model.output(hidden)  # before the head, whatever the head is
                size, roughness = x.pow(2).flatten(1).mean(1), _total_variation(x)
                objective = (logits[rows, chosen] - l2 * size - tv * roughness).sum()
                (gradient,) = torch.autograd.grad(objective, x)
            with torch.no_grad():
                x.add_(adam.step(gradient))  # ascent: up the objective
                x.copy_(torch.maximum(torch.minimum(x, high), low))
            bar.update()
    finally:
        bar.close()
    with torch.no_grad():
        probs = probabilities(model.head, model(x), temperature)
        pixels = ((x - offset) / (255 * scale)).clamp(0, 1)
    settings = {"steps": steps, "lr": lr, "l2": l2, "tv": tv, "seed": seed}
    return _imagined("ascent", model, classes, chosen, pixels, probs, settings)


def _start(
    model: MLP, normalization: Normalization, targets: Sequence[int] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model in eval mode; (target classes, scale, offset) on its device, where
    ``pixel * 255 * scale + offset`` is a [0, 1] pixel as the model sees it."""
    device = next(model.parameters()).device
    model.eval()
    scale, offset = normalization.affine(device)
    return _targets(model, targets).to(device), scale, offset


def _imagined(
    method: str,
    model: MLP,
    classes: Sequence[str] | None,
    chosen: torch.Tensor,
    pixels: torch.Tensor,
    probs: torch.Tensor,
    settings: dict[str, Any],
) -> Imagined:
    """The result as numpy arrays: ``pixels`` in [0, 1], one image per class in ``chosen``."""
    return Imagined(
        method=method,
        images=pixels.cpu().numpy(),
        targets=chosen.cpu().numpy().astype(np.int64),
        probabilities=probs.float().cpu().numpy(),
        classes=_classes(model, classes),
        settings=settings,
    )


class _Adam:
    """Adam by hand (a few tensor ops): torch.optim's first step costs seconds of imports."""

    def __init__(self, x: torch.Tensor, lr: float) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, 0.9, 0.999, 1e-8
        self.m, self.v = torch.zeros_like(x), torch.zeros_like(x)
        self.t = 0

    def step(self, gradient: torch.Tensor) -> torch.Tensor:
        """The next step for ``gradient`` (bias-corrected moments, in place)."""
        self.t += 1
        self.m.mul_(self.beta1).add_(gradient, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(gradient, gradient, value=1 - self.beta2)
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return self.lr * m_hat / (v_hat.sqrt() + self.eps)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1)
    return torch.cat([dy, dx], dim=1).mean(1) if dy.numel() + dx.numel() else x.new_zeros(len(x))
