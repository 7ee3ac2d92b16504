"""Device batches: the split lives on the device as uint8, batches are sliced from a seeded
permutation, and augmentation is one batched gather per chunk of images.

No per-sample Python runs here: an epoch is a handful of tensor ops per chunk of
``CHUNK`` images plus a slice, a cast and a fused scale-and-shift per batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import torch

from .data import Split

__all__ = ["augment", "iterate_batches", "rotation_angles"]

CHUNK = 256  # images gathered and augmented at once: amortizes per-op overhead, stays in cache


ANGLE_STEP = 0.02  # degrees between the precomputed rotations (at most MAX_ANGLES of them)
MAX_ANGLES = 1025  # 28x28: 1025 rotations x 784 int64 indices = 6.4 MB, built once per shape


def augment(
    images: torch.Tensor,
    rotation: float,
    shift: int,
    generator: torch.Generator | None = None,
    hflip: bool = False,
) -> torch.Tensor:
    """Randomly rotate (uniform in ±``rotation`` degrees) then shift (±``shift`` pixels per
    axis) each uint8 image of ``(N, C, H, W)``; nearest neighbour, zero fill.

    The tutorial's ``RandomRotation(rotation, fill=0)`` followed by
    ``RandomCrop(size, padding=shift)`` (PIL, nearest), in that order, pixel for pixel, with
    angles drawn from a grid ``ANGLE_STEP`` apart. Each angle's source map is computed once
    (over the frame enlarged by the shift) and cached; a batch is then one lookup of every
    output pixel's source in those maps and one gather of the pixels. ``hflip`` then
    mirrors a random half of the images left-right (torchvision's ``RandomHorizontalFlip``).
    """
    if hflip:
        images = _rotate_and_shift(images, rotation, shift, generator)
        flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    return _rotate_and_shift(images, rotation, shift, generator)


def _rotate_and_shift(
    images: torch.Tensor, rotation: float, shift: int, generator: torch.Generator | None
) -> torch.Tensor:
    if rotation == 0 and shift == 0:
        return images
    n, c, h, w = images.shape
    maps, pad = _rotation_maps(h, w, float(rotation), shift, images.device)
    hp, wp = h + 2 * pad, w + 2 * pad
    which = torch.randint(0, len(maps), (n, 1), generator=generator, device=images.device)
    dy = torch.randint(-shift, shift + 1, (n, 1), generator=generator, device=images.device)
    dx = torch.randint(-shift, shift + 1, (n, 1), generator=generator, device=images.device)
    # Output pixel p shows the rotated frame at p + d: its entry in the enlarged map.
    window = _window(h, w, shift, images.device)
    at = which * maps.shape[1] + window + (dy * (w + 2 * shift) + dx)
    index = maps.take(at).view(n, 1, h * w).expand(n, c, h * w)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad)).view(n, c, hp * wp)
    return padded.gather(2, index).view(n, c, h, w)


def rotation_angles(rotation: float) -> torch.Tensor:
    """The grid of angles (degrees) that :func:`augment` draws from, uniformly."""
    steps = min(MAX_ANGLES // 2, math.ceil(rotation / ANGLE_STEP))
    return torch.linspace(-rotation, rotation, 2 * steps + 1, dtype=torch.float64)


@functools.lru_cache(maxsize=16)
def _window(h: int, w: int, shift: int, device: torch.device) -> torch.Tensor:
    """Flat indices of the original frame's pixels within the frame enlarged by ``shift``."""
    ys = torch.arange(h).view(h, 1) + shift
    xs = torch.arange(w).view(1, w) + shift
    return (ys * (w + 2 * shift) + xs).view(1, h * w).to(device)


@functools.lru_cache(maxsize=16)
def _rotation_maps(
    h: int, w: int, rotation: float, shift: int, device: torch.device
) -> tuple[torch.Tensor, int]:
    """For each angle and each point q of the frame enlarged by ``shift`` on every side, the
    flat index (into the image with a zero border of ``pad``) of the pixel that the rotated
    image shows at q: rounded R(angle)^-1 (q - centre) + centre, as PIL computes it, or a
    border pixel (zero) when q lies outside the frame. A positive angle turns the picture
    counter-clockwise."""
    # A point q from the centre moves by at most 2|q|sin(angle/2) and stays within |q| of
    # it: with this border every source pixel of a point in the frame lies inside it.
    radius = math.hypot(h, w) / 2
    pad = math.ceil(min(2 * radius * math.sin(math.radians(min(rotation, 180)) / 2), radius)) + 1
    wp = w + 2 * pad
    angle = torch.deg2rad(rotation_angles(rotation)).view(-1, 1, 1)
    qy = torch.arange(-shift, h + shift).view(1, -1, 1)
    qx = torch.arange(-shift, w + shift).view(1, 1, -1)
    ys, xs = qy.double() - (h - 1) / 2, qx.double() - (w - 1) / 2
    src_x = torch.round(angle.cos() * xs - angle.sin() * ys + (w - 1) / 2).long() + pad
    src_y = torch.round(angle.sin() * xs + angle.cos() * ys + (h - 1) / 2).long() + pad
    index = src_y * wp + src_x
    outside = (qy < 0) | (qy >= h) | (qx < 0) | (qx >= w)  # the crop's zero padding
    index = torch.where(outside, torch.zeros_like(index), index)  # flat 0: a border pixel
    return index.view(len(angle), -1).to(device), pad


def iterate_batches(
    split: Split,
    batch_size: int,
    scale: torch.Tensor,
    offset: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    rotation: float = 0.0,
    max_shift: int = 0,
    hflip: bool = False,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield normalized float batches ``(B, C, H, W)`` and labels from a device split.

    With a ``generator`` the order is a fresh seeded permutation (and augmentation is
    drawn from it); without one the order is the split's own (evaluation).
    """
    n = len(split)
    order = (
        torch.randperm(n, generator=generator, device=split.labels.device)
        if generator is not None
        else None
    )
    chunk = max(batch_size, CHUNK // batch_size * batch_size)
    produced = 0
    for start in range(0, n, chunk):
        if order is None:
            images, labels = (
                split.images[start : start + chunk],
                split.labels[start : start + chunk],
            )
        else:
            index = order[start : start + chunk]
            images, labels = split.images[index], split.labels[index]
        if generator is not None:  # training: augmented; evaluation never is
            images = augment(images, rotation, max_shift, generator, hflip)
        for b in range(0, len(labels), batch_size):
            if max_batches is not None and produced >= max_batches:
                return
            produced += 1
            # one cast and a fused multiply-add: x = pixel / (255 std) - mean / std
            yield (
                torch.addcmul(offset, images[b : b + batch_size].float(), scale),
                labels[b : b + batch_size],
            )
