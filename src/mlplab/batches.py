"""Device batches: the split lives on the device as uint8, batches are sliced from a seeded
permutation, and augmentation is one batched gather per chunk of images.

No per-sample Python runs here: an epoch is a handful of tensor ops per chunk of
``CHUNK`` images plus a slice, a cast and a fused scale-and-shift per batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .data import Split

__all__ = ["augment", "iterate_batches"]

CHUNK = 256  # images gathered and augmented at once: amortizes per-op overhead, stays in cache


def augment(
    images: torch.Tensor, rotation: float, shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Randomly rotate (uniform in ±``rotation`` degrees) and shift (±``shift`` pixels per
    axis) each uint8 image of ``(N, C, H, W)``; nearest neighbour, zero fill.

    Pixel for pixel the same as PIL's ``Image.rotate(angle, NEAREST)`` (torchvision's
    ``RandomRotation(rotation, fill=0)``) followed by ``RandomCrop(size, padding=shift)``,
    done for the whole batch by one gather from a zero-bordered copy.
    """
    if rotation == 0 and shift == 0:
        return images
    n, c, h, w = images.shape
    device = images.device
    angle = (torch.rand(n, 1, 1, generator=generator, device=device) * 2 - 1) * math.radians(
        rotation
    )
    dy = torch.randint(-shift, shift + 1, (n, 1, 1), generator=generator, device=device)
    dx = torch.randint(-shift, shift + 1, (n, 1, 1), generator=generator, device=device)
    # A zero border wide enough that every source pixel lands inside: no masks, no clamps.
    # A point q from the centre moves by at most 2|q|sin(angle/2) and stays within |q| of it.
    radius = math.hypot(h, w) / 2 + shift * math.sqrt(2)
    pad = (
        math.ceil(min(2 * radius * math.sin(math.radians(min(rotation, 180)) / 2) + shift, radius))
        + 1
    )
    hp, wp = h + 2 * pad, w + 2 * pad
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad)).view(n, c, hp * wp)
    # Output pixel p reads the input at R(angle)^-1 (p + d - centre) + centre: a positive
    # angle turns the picture counter-clockwise, as PIL does. The products are separable
    # ((n,1,w) and (n,h,1)); +0.5 then floor (truncation: coordinates are >= 0) rounds.
    ys = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1) - (h - 1) / 2 + dy
    xs = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w) - (w - 1) / 2 + dx
    cos, sin = angle.cos(), angle.sin()
    src_x = (cos * xs + ((w - 1) / 2 + pad + 0.5)) - sin * ys
    src_y = (sin * xs) + (cos * ys + ((h - 1) / 2 + pad + 0.5))
    index = torch.add(src_x.trunc_(), src_y.trunc_(), alpha=wp).long().view(n, 1, h * w)
    return padded.gather(2, index.expand(n, c, h * w)).view(n, c, h, w)


def iterate_batches(
    split: Split,
    batch_size: int,
    scale: torch.Tensor,
    offset: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    rotation: float = 0.0,
    max_shift: int = 0,
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
        images = augment(images, rotation, max_shift, generator)
        for b in range(0, len(labels), batch_size):
            if max_batches is not None and produced >= max_batches:
                return
            produced += 1
            # one cast and a fused multiply-add: x = pixel / (255 std) - mean / std
            yield (
                torch.addcmul(offset, images[b : b + batch_size].float(), scale),
                labels[b : b + batch_size],
            )
