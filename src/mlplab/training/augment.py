"""Augmentation of training images: batched tensor ops on uint8 ``(N, C, H, W)`` chunks on
the device, drawn from the session's seeded generator (:mod:`.batches` calls it per chunk).

The exact nearest-neighbour rotation and integer shift of :func:`augment` (the tutorial's
PIL transforms, pixel for pixel: one gather through cached per-angle source maps), the
bilinear :func:`warp` (rotation, zoom, shift and elastic distortion in one resampling), the
left-right flip and the random erasing of :func:`erase`; :class:`Augmentation` is the
``augment`` config section's choice among them. No per-sample Python runs here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..config import AugmentConfig
from ..model.views import affine_grid, affine_theta

__all__ = ["Augmentation", "augment", "erase", "rotation_angles", "warp"]


ANGLE_STEP = 0.02  # degrees between the precomputed rotations (at most MAX_ANGLES of them)
MAX_ANGLES = 1025  # 28x28: 1025 rotations x 784 int32 indices = 3.2 MB, built once per shape


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
    images = _rotate_and_shift(images, rotation, shift, generator)
    return _mirror_half(images, generator) if hflip else images


def _mirror_half(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def _rotate_and_shift(
    images: torch.Tensor, rotation: float, shift: int, generator: torch.Generator | None
) -> torch.Tensor:
    if rotation == 0 and shift == 0:
        return images
    n, c, h, w = images.shape
    maps = _rotation_maps(h, w, float(rotation), shift, images.device)
    wide = w + 2 * shift
    which = torch.randint(0, len(maps), (n,), generator=generator, device=images.device)
    dy = torch.randint(-shift, shift + 1, (n,), generator=generator, device=images.device)
    dx = torch.randint(-shift, shift + 1, (n,), generator=generator, device=images.device)
    # Output pixel p shows the rotated frame at p + d: an image's sources are the h x w
    # window at (dy, dx) of its angle's map over the frame enlarged by the shift. Every
    # such window is one stretch of the flat maps, from its first entry to its last, so
    # one index_select of whole rows of a strided view (a row starting at every entry, no
    # copy) fetches them all, and a strided view of those rows drops the columns between.
    # Indices are int32 (half the memory traffic) unless the maps outgrow it.
    span = (h - 1) * wide + w
    starts = maps.view(-1).unfold(0, span, 1)
    first = which * maps.shape[1] + (dy + shift) * wide + (dx + shift)
    rows = starts.index_select(0, first.to(torch.int32 if maps.numel() < 2**31 else torch.int64))
    index = rows.as_strided((n, 1, h, w), (span, 0, wide, 1)).expand(n, c, h, w)
    # each image's pixels, flat, and one zero after them: the source of every point that
    # comes from outside the image (a contiguous copy; a zero border was a strided one, 5x
    # slower)
    flat = torch.cat([images.view(n, c, h * w), images.new_zeros(n, c, 1)], 2)
    return flat.view(n, c, 1, h * w + 1).expand(n, c, h, h * w + 1).gather(3, index)


@dataclass(frozen=True)
class Augmentation:
    """What happens to each training image (the ``augment`` config section): the exact
    nearest-neighbour rotation and integer shift of :func:`augment`, or, once ``scale`` or
    ``elastic`` is set, the bilinear :func:`warp` that does all of it in one resampling;
    then, with ``erase``, the random erasing of :func:`erase`."""

    rotation: float = 0.0
    shift: int = 0
    hflip: bool = False
    scale: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0
    erase: float = 0.0

    # the fields that turn something on (elastic_sigma only shapes the elastic part)
    SWITCHES: ClassVar[tuple[str, ...]] = (
        "rotation",
        "shift",
        "hflip",
        "scale",
        "elastic",
        "erase",
    )

    @classmethod
    def of(cls, section: AugmentConfig) -> Augmentation:
        return cls(**{f.name: getattr(section, f.name) for f in dataclasses.fields(cls)})

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.SWITCHES)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.scale or self.elastic:
            images = warp(images, self, generator)
        else:
            images = augment(images, self.rotation, self.shift, generator, self.hflip)
        return erase(images, self.erase, generator) if self.erase else images


def warp(
    images: torch.Tensor, aug: Augmentation, generator: torch.Generator | None
) -> torch.Tensor:
    """Bilinear random distortion of uint8 ``(N, C, H, W)`` images, zero fill: a rotation
    (uniform in ±``aug.rotation`` degrees), a zoom (uniform factor in 1 ± ``aug.scale``) and
    a shift (uniform in ±``aug.shift`` pixels per axis) about the centre, plus an elastic
    displacement (Simard et al. 2003: uniform noise in [-1, 1] per pixel and axis, smoothed
    by a Gaussian of ``aug.elastic_sigma`` pixels, times ``aug.elastic`` pixels); then the
    optional left-right flip. One ``grid_sample`` per chunk, rounded back to uint8."""
    n, _, h, w = images.shape
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        size = shape or (n,)
        return torch.rand(size, generator=generator, device=device) * (high - low) + low

    angle = torch.deg2rad(uniform(-aug.rotation, aug.rotation))
    zoom = uniform(1 - aug.scale, 1 + aug.scale)
    shift_x, shift_y = uniform(-aug.shift, aug.shift), uniform(-aug.shift, aug.shift)
    grid = affine_grid(affine_theta(angle, zoom, shift_x, shift_y, h, w), h, w)
    if aug.elastic:
        noise = uniform(-1.0, 1.0, n * 2, h, w)
        # the separable Gaussian blur (zero padding) as two plain matrix products with
        # banded matrices: along the rows, then, transposed, along the columns
        noise = (noise @ _blur(w, aug.elastic_sigma, device)).transpose(1, 2)
        noise = (noise @ _blur(h, aug.elastic_sigma, device)).transpose(1, 2)
        # pixels to grid units, as float32 scalars: no tensor goes to the device (a GPU
        # would wait for the copy)
        x_scale, y_scale = (torch.tensor([2 / w, 2 / h]) * aug.elastic).tolist()
        noise = noise.reshape(n, 2, h * w)
        noise[:, 0].mul_(x_scale)
        noise[:, 1].mul_(y_scale)
        grid = grid + noise.transpose(1, 2)
    grid = grid.view(n, h, w, 2)
    out = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    out = out.round_().clamp_(0, 255).to(torch.uint8)
    return _mirror_half(out, generator) if aug.hflip else out


# torchvision's RandomErasing defaults: the rectangle's share of the image and its aspect
# ratio (drawn log-uniformly), and how many draws an image gets to find one that fits
ERASE_AREA, ERASE_RATIO, ERASE_TRIES = (0.02, 0.33), (0.3, 3.3), 10


def erase(
    images: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017) of uint8 ``(N, C, H, W)`` images, batched: with
    ``probability``, one rectangle of each image is set to 0 in every channel, as
    torchvision's ``RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)`` does
    before normalization. Each image gets ``ERASE_TRIES`` draws of area and aspect ratio and
    takes the first whose rectangle fits inside it (none fits: it is left whole), then a
    uniform position for it."""
    n, _, h, w = images.shape
    device = images.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device)

    chosen = rand(n) < probability
    area = (rand(n, ERASE_TRIES) * (ERASE_AREA[1] - ERASE_AREA[0]) + ERASE_AREA[0]) * (h * w)
    low, high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    ratio = torch.exp(rand(n, ERASE_TRIES) * (high - low) + low)
    heights, widths = (area * ratio).sqrt().round(), (area / ratio).sqrt().round()
    fits = (heights < h) & (widths < w)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first draw that fits
    height, width = heights.gather(1, first), widths.gather(1, first)  # (n, 1) each
    top = (rand(n, 1) * (h - height + 1)).floor()
    left = (rand(n, 1) * (w - width + 1)).floor()
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    inside = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + height).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + width).view(n, 1, 1))
    )
    keep = (chosen & fits.any(1)).view(n, 1, 1)
    return images.masked_fill((inside & keep).unsqueeze(1), 0)


@functools.lru_cache(maxsize=8)
def _blur(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """The ``size x size`` symmetric matrix that convolves a line of pixels with a normalized
    Gaussian of ``sigma`` reaching 3 sigma each side, zero beyond the ends."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(size).view(-1, 1) - torch.arange(size).view(1, -1)
    kernel = torch.exp(-(offsets.float() ** 2) / (2 * sigma**2))
    kernel = kernel * (offsets.abs() <= radius)
    total = torch.exp(-(torch.arange(-radius, radius + 1).float() ** 2) / (2 * sigma**2)).sum()
    return (kernel / total).to(device)


def rotation_angles(rotation: float) -> torch.Tensor:
    """The grid of angles (degrees) that :func:`augment` draws from, uniformly."""
    steps = min(MAX_ANGLES // 2, math.ceil(rotation / ANGLE_STEP))
    return torch.linspace(-rotation, rotation, 2 * steps + 1, dtype=torch.float64)


@functools.lru_cache(maxsize=16)
def _rotation_maps(
    h: int, w: int, rotation: float, shift: int, device: torch.device
) -> torch.Tensor:
    """For each angle and each point q of the frame enlarged by ``shift`` on every side, the
    flat index (into the image's ``h * w`` pixels followed by one zero) of the pixel that the
    rotated image shows at q: rounded R(angle)^-1 (q - centre) + centre, as PIL computes it,
    or ``h * w`` (the zero) when q lies outside the frame or its source outside the image.
    A positive angle turns the picture counter-clockwise."""
    angle = torch.deg2rad(rotation_angles(rotation)).view(-1, 1, 1)
    qy = torch.arange(-shift, h + shift).view(1, -1, 1)
    qx = torch.arange(-shift, w + shift).view(1, 1, -1)
    ys, xs = qy.double() - (h - 1) / 2, qx.double() - (w - 1) / 2
    src_x = torch.round(angle.cos() * xs - angle.sin() * ys + (w - 1) / 2).long()
    src_y = torch.round(angle.sin() * xs + angle.cos() * ys + (h - 1) / 2).long()
    outside = (qy < 0) | (qy >= h) | (qx < 0) | (qx >= w)  # the crop's zero padding
    outside = outside | (src_x < 0) | (src_x >= w) | (src_y < 0) | (src_y >= h)  # rotation's
    index = torch.where(outside, torch.full_like(src_x, h * w), src_y * w + src_x)
    return index.view(len(angle), -1).int().to(device)
