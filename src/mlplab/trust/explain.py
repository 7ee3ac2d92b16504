"""Explanations: which pixels made a run's model give its answer, computed with Captum.

Three methods (:data:`METHODS`), each giving one number per input pixel, shaped like the
model's input ``(N, C, H, W)``:

- ``integrated-gradients`` (Sundararajan et al. 2017): the gradient averaged along the
  straight path from a baseline image to the input, times (input - baseline). Its
  attributions add up to ``f(input) - f(baseline)`` (completeness); the difference between
  the two, the completeness error, is reported per image and shrinks as ``steps`` grows.
- ``occlusion`` (Zeiler and Fergus 2014): a ``window`` x ``window`` patch of background slid
  by ``stride`` pixels; each pixel gets the mean drop of ``f`` over the patches covering it.
- ``saliency`` (Simonyan et al. 2014): the gradient's magnitude at the input, ``|df/dx|``;
  unsigned, the cheapest, and blind to saturation.

**The baseline is the background in pixel space.** The model takes pixels in [0, 1]
(:class:`mlplab.model.raw_image.RawImageModel`, normalization inside), and "nothing there"
is the colour of the run's training images' background: for MNIST 0 (black), for
photographs often a grey. Zero in *normalized* space would be the training mean, a grey
smudge holding half a digit's evidence, and the attributions would explain the difference
from that smudge. The level comes from the run (the median of its training images' border,
which the rejection of unfamiliar inputs keeps, :mod:`.rejection`); for a run without one,
from each input's own border (:func:`border_levels`). Occlusion patches are that same
background, and so are the deleted pixels of the faithfulness test (:mod:`.deletion`).

**What is attributed: the calibrated log-odds** of the target class,
``log(p / (1 - p))`` with ``p`` the run's calibrated probability (:class:`LogOdds`): the
logit of that probability, ``z_t - logsumexp_{j != t} z_j`` for calibrated logits ``z``.
Not the raw logit ``z_t``: a logit can rise while its class loses (when every logit rises),
the log_softmax and softmax heads have no free logits, and a logit's scale is not the
answer's. Not the log-probability either, though it measures the same evidence: near a
confident answer ``log p`` is 0 to float32's precision (a margin of 20 nats already rounds
``1 - p`` away), so its gradients and occlusion differences vanish exactly, and a map of a
confident answer would be blank. The log-odds carries the same comparison of the target
against the other classes without saturating (it grows with the margin), is in nats,
comparable across runs and temperatures, and maps back to the probability the user sees:
``p = sigmoid(log-odds)``, which the deletion test follows (:mod:`.deletion`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, did_you_mean
from ..extras import require
from ..model import heads

__all__ = [
    "METHODS",
    "STEPS",
    "STRIDE",
    "WINDOW",
    "Attributions",
    "LogOdds",
    "attribute",
    "baseline_images",
    "border_levels",
    "check_options",
    "log_odds",
]

METHODS = ("integrated-gradients", "occlusion", "saliency")
STEPS = 64  # integrated gradients: points on the path (Gauss-Legendre), per image
WINDOW = 4  # occlusion: the patch's side, pixels
STRIDE = 2  # occlusion: how far the patch moves each time, pixels
ROWS = 4096  # images x steps per forward pass (integrated gradients' internal batch)
PATCHES = 64  # occluded copies per forward pass


class LogOdds(nn.Module):
    """Pixels in [0, 1] ``(N, C, H, W)`` -> each class's calibrated log-odds ``(N, K)``,
    ``log(p_k / (1 - p_k))``: the function every method here attributes.

    ``model`` is a :class:`~mlplab.model.raw_image.RawImageModel` (normalization and the run's
    temperature inside), whose outputs are head ``head``'s; ``sigmoid`` of this is their
    probabilities, its argmax their predicted class."""

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return log_odds(heads.to_logits(self.head, self.model(pixels).float()))


def log_odds(z: torch.Tensor) -> torch.Tensor:
    """Logits ``(N, K)`` -> ``log(p_k / (1 - p_k))`` of their softmax, ``z_k - logsumexp(z_j,
    j != k)``, in O(K) a row and stable, gradients included.

    For a class below the row's maximum ``m`` the others include the maximum, so their sum
    ``S - exp(z_k - m)`` (``S = sum exp(z - m) >= 1 + exp(z_k - m)``) is at least 1: no
    cancellation. For the maximum's own class the others are summed directly, the maximum
    masked out. (The same values as masking a ``K x K`` matrix per row, which costs O(K^2):
    ~0.2 GB a 4096-row batch at 100 classes.)"""
    m, top = z.max(1, keepdim=True)
    shifted = torch.exp(z - m)
    rest = shifted.sum(1, keepdim=True) - shifted  # every class but k, relative to exp(m)
    # the maximum's own class: its row's rest may have cancelled; clamped so that this unused
    # branch never puts log(0) (and an infinite gradient) in front of torch.where
    below = m + torch.log(rest.clamp_min(torch.finfo(z.dtype).tiny))
    is_top = torch.zeros_like(z, dtype=torch.bool).scatter_(1, top, True)
    own = z.masked_fill(is_top, -torch.inf).logsumexp(1, keepdim=True)
    return z - torch.where(is_top, own, below)


@dataclass(frozen=True)
class Attributions:
    """What :func:`attribute` found for ``N`` images.

    ``maps``: float32 ``(N, C, H, W)``, each pixel's share of the target's calibrated
    log-odds (nats; for saliency, the gradient's magnitude, per unit of pixel value).
    ``targets``: int64 ``(N,)``, the class explained. ``log_odds`` and ``baseline_log_odds``:
    ``f`` at the input and at the baseline, ``(N,)``.
    ``completeness_error``: integrated gradients only, ``sum(maps) - (f(x) - f(baseline))``
    per image (None for the other methods, which promise no sum).
    """

    method: str
    maps: torch.Tensor
    targets: torch.Tensor
    log_odds: torch.Tensor
    baseline_log_odds: torch.Tensor
    completeness_error: torch.Tensor | None


def check_options(method: str, steps: int, window: int, stride: int, size: tuple[int, int]) -> None:
    """One ConfigError line for a method or option that cannot be used on ``size`` (H, W)."""
    if method not in METHODS:
        raise ConfigError(
            f"explanation method must be one of {', '.join(METHODS)}; got {method!r}"
            f"{did_you_mean(str(method), METHODS)}"
        )
    for name, value in (("steps", steps), ("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")
    if window > min(size):
        raise ConfigError(
            f"window must fit the model's input ({size[0]}x{size[1]} pixels): at most "
            f"{min(size)}; got {window}"
        )
    if stride > window:
        raise ConfigError(
            f"stride must be at most the window ({window}), or pixels between windows are "
            f"never occluded; got {stride}"
        )


def border_levels(images: torch.Tensor) -> torch.Tensor:
    """Per image and channel, the median of the border pixels ``(N, C)``: the background of
    images whose subject does not touch the edge (the ring is 2% of the side, at least one
    pixel: the one the rejection and predict's preprocessing read the paper from)."""
    x = images.float()
    k = max(1, round(0.02 * min(x.shape[-2:])))
    ring = torch.cat(
        [
            x[..., :k, :].flatten(2),
            x[..., -k:, :].flatten(2),
            x[..., k:-k, :k].flatten(2),
            x[..., k:-k, -k:].flatten(2),
        ],
        2,
    )
    return ring.median(2).values


def baseline_images(pixels: torch.Tensor, background: torch.Tensor | None) -> torch.Tensor:
    """The baseline for ``pixels`` (floats in [0, 1], ``(N, C, H, W)``): every pixel the
    background, ``background`` (``(C,)`` in [0, 1], the run's) or, when None, each image's
    own border level (:func:`border_levels`)."""
    n, c = pixels.shape[:2]
    level = border_levels(pixels) if background is None else background.float().expand(n, c)
    return level.to(pixels.device).view(n, c, 1, 1).expand_as(pixels).contiguous()


def attribute(
    model: nn.Module,
    pixels: torch.Tensor,
    *,
    method: str = "integrated-gradients",
    target: int | Sequence[int] | torch.Tensor | None = None,
    background: torch.Tensor | None = None,
    steps: int = STEPS,
    window: int = WINDOW,
    stride: int = STRIDE,
) -> Attributions:
    """Attribute ``model``'s calibrated log-odds of ``target`` to the input pixels.

    ``model``: pixels in [0, 1] -> log-odds (:class:`LogOdds`).
    ``pixels``: uint8 images or floats in [0, 1], ``(N, C, H, W)``. ``target``: a class index
    for every image, one per image, or None for each image's predicted class.
    ``background``: ``(C,)`` in [0, 1], the run's (None: each image's border,
    :func:`baseline_images`). Needs Captum (``pip install 'mlplab[explain]'``).
    """
    x = torch.as_tensor(pixels)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if x.dim() != 4:
        raise ConfigError(f"pixels must be (N, C, H, W); got the shape {tuple(x.shape)}")
    check_options(method, steps, window, stride, tuple(x.shape[-2:]))
    attr = require("captum.attr", "explain", "explanations")
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = x.to(device)
    base = baseline_images(x, background)
    with torch.no_grad():
        out = model(x)
        targets = _targets(target, out)
        fx = out.gather(1, targets[:, None])[:, 0]
        fb = model(base).gather(1, targets[:, None])[:, 0] if len(x) else fx
    error = None
    if not len(x):
        maps = torch.zeros_like(x)
    elif method == "integrated-gradients":
        maps, delta = attr.IntegratedGradients(model).attribute(
            x,
            base,
            target=targets,
            n_steps=steps,
            internal_batch_size=ROWS,
            return_convergence_delta=True,
        )
        error = delta.detach().float()
    elif method == "occlusion":
        c = x.shape[1]
        maps = attr.Occlusion(model).attribute(
            x,
            sliding_window_shapes=(c, window, window),
            strides=(c, stride, stride),
            baselines=base,
            target=targets,
            perturbations_per_eval=PATCHES,
        )
    else:
        maps = attr.Saliency(model).attribute(x.clone().requires_grad_(), target=targets, abs=True)
    return Attributions(
        method=method,
        maps=maps.detach().float().cpu(),
        targets=targets.cpu(),
        log_odds=fx.cpu(),
        baseline_log_odds=fb.cpu(),
        completeness_error=None if error is None else error.cpu(),
    )


def _targets(target: int | Sequence[int] | torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """The class explained per image: the predicted one (None), one index for all, or one each."""
    n, k = out.shape
    if target is None:
        return out.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long).to(out.device).flatten()
    if len(t) == 1:
        t = t.expand(n)
    if len(t) != n:
        raise ConfigError(f"target must be one class index or one per image ({n}); got {len(t)}")
    if len(t) and not bool(((t >= 0) & (t < k)).all()):
        raise ConfigError(f"target must be a class index from 0 to {k - 1}; got {t.tolist()}")
    return t.contiguous()
