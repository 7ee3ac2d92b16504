"""What the model does to an image's geometry: the ink aligned, the test-time views, the turns.

Everything here works on batches ``(N, C, H, W)`` at any affine scale of the pixels and is
traceable for the TorchScript and ONNX exports: coordinates are made from the input
(:func:`_steps`), never with a device of their own, so an exported model runs wherever it
is loaded.

- :func:`align_ink`: each image deskewed and/or centred (``model.deskew``, ``model.center``).
- :func:`tta_views`: the image and its test-time views (``model.tta``): shifts, turns, mirror.
- :func:`affine_theta` and :func:`affine_grid`: the one sampling grid of a turn, zoom and
  shift about the image's centre in pixel geometry (any aspect ratio), for ``grid_sample``;
  the test-time turns use it, and so does the training's bilinear warp
  (:func:`mlplab.training.augment.warp`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["TTA_ROTATION", "affine_grid", "affine_theta", "align_ink", "tta_views", "view_count"]

# test-time views: each name adds this many views of the image to the image itself
_VIEW_COUNTS = {"shift": 4, "rotate": 2, "flip": 1}
TTA_ROTATION = 5.0  # degrees each way: half the `best` preset's training rotation


def view_count(views: Sequence[str]) -> int:
    """How many images :func:`tta_views` makes of one: the image and its views."""
    return 1 + sum(_VIEW_COUNTS[v] for v in views)


def tta_views(images: torch.Tensor, views: Sequence[str]) -> torch.Tensor:
    """The images and their test-time views, stacked: ``(V * N, C, H, W)`` for ``N`` images,
    the images themselves first, then each named family's views in turn, each as a block of
    ``N``.

    ``shift``: moved by one pixel down, up, right and left (4 views); ``rotate``: turned by
    :data:`TTA_ROTATION` degrees each way about the image's centre, read bilinearly (2
    views); ``flip``: mirrored left to right (1 view). Past the border lies background:
    each channel's darkest value in the image.
    """
    x = images
    dark = x.amin((2, 3), keepdim=True)  # per channel: normalization moves each its own way
    ink = x - dark  # background 0, so that padding with 0 pads with background
    out = [x]
    for view in views:
        if view == "shift":
            out += [m + dark for m in _shifts(ink)]
        elif view == "rotate":
            out += [_turn(ink, angle) + dark for angle in (TTA_ROTATION, -TTA_ROTATION)]
        elif view == "flip":
            out.append(x.flip(-1))
    return torch.cat(out)


def _shifts(ink: torch.Tensor) -> list[torch.Tensor]:
    """``ink`` (background 0) moved by one pixel down, up, right and left, 0 outside."""
    h, w = ink.shape[-2:]
    p = F.pad(ink, (1, 1, 1, 1))
    down, up = p[..., :h, 1 : w + 1], p[..., 2:, 1 : w + 1]
    right, left = p[..., 1 : h + 1, :w], p[..., 1 : h + 1, 2:]
    return [down, up, right, left]


def _turn(ink: torch.Tensor, degrees: float) -> torch.Tensor:
    """``ink`` (background 0) turned by ``degrees`` about the centre, bilinear, 0 outside."""
    n, _, h, w = ink.shape
    angle = ink.new_full((1,), math.radians(degrees))
    one, zero = ink.new_ones(1), ink.new_zeros(1)
    grid = affine_grid(affine_theta(angle, one, zero, zero, h, w), h, w)
    grid = grid.view(1, h, w, 2).expand(n, h, w, 2)
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ----- the sampling grid of a turn, zoom and shift ------------------------------------------
def affine_theta(
    angle: torch.Tensor,
    zoom: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    h: int,
    w: int,
) -> torch.Tensor:
    """``(N, 2, 3)`` affine maps from output to input grid coordinates (x, y in [-1, 1],
    ``align_corners=False``) that turn each picture by ``angle`` (radians; positive turns
    counter-clockwise on screen), zoom it by ``zoom`` and move it by ``shift_x``, ``shift_y``
    pixels, about its centre, in pixel geometry for any aspect ratio."""
    cos, sin = angle.cos() / zoom, angle.sin() / zoom  # the inverse of zoom-then-turn
    row_x = torch.stack([cos, -sin * h / w, -shift_x * 2 / w], 1)
    row_y = torch.stack([sin * w / h, cos, -shift_y * 2 / h], 1)
    return torch.stack([row_x, row_y], 1)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, h, w), align_corners=False)``, flattened to
    ``(N, h*w, 2)``, as fused multiply-adds with the pixel centres: ~10x faster on CPU than
    its batched product of inner size 3."""
    x, y = _centres(theta, h, w)
    return torch.stack(
        [(theta[:, i, :1] * x).add_(theta[:, i, 2:]).addcmul_(theta[:, i, 1:2], y) for i in (0, 1)],
        -1,
    )


def _centres(like: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel centre's x and y in grid units, ``(1, h*w)`` each, as F.affine_grid has
    them with ``align_corners=False``: pixel p of n at (2p + 1) / n - 1."""
    ys = (_steps(like, h) * 2 + 1) / h - 1
    xs = (_steps(like, w) * 2 + 1) / w - 1
    x = xs.view(1, w).expand(h, w).reshape(1, h * w)
    y = ys.view(h, 1).expand(h, w).reshape(1, h * w)
    return x, y


def _steps(like: torch.Tensor, n: int) -> torch.Tensor:
    """0, 1, ..., n-1 in float32 on ``like``'s device. Made from ``like`` (``new_ones``),
    not by ``torch.arange(device=...)``, which a TorchScript trace would pin to the device
    it was traced on: an exported model then runs wherever it is loaded."""
    return like.new_ones(n, dtype=torch.float32).cumsum(0) - 1


def _grid_steps(like: torch.Tensor, n: int) -> torch.Tensor:
    """grid_sample's coordinates of ``n`` pixels (align_corners): pixel p at 2p / (n-1) - 1."""
    return _steps(like, n) * (2.0 / (n - 1)) - 1.0


# ----- ink alignment --------------------------------------------------------------------------
def align_ink(images: torch.Tensor, *, upright: bool = True, center: bool = False) -> torch.Tensor:
    """Each image sheared so that its ink stands upright (``upright``: the deskewing of
    LeCun et al. 1998's MNIST benchmarks) and/or moved so that its centre of mass sits at
    the image's centre (``center``).

    ``images`` is ``(N, C, H, W)`` with H, W >= 2: bright strokes on a dark background, at
    any affine scale of the pixels (the moments are those of each image less its darkest
    value, summed over channels). The shear is the ratio of the ink's row-column covariance
    to its row variance, the one that makes that covariance 0; it pivots on the row of the
    centre of mass, so without ``center`` the ink's centre stays where it was. Pixels are
    read bilinearly, a read past the border finds the image's darkest value (background),
    and an image without ink is left as it is. Computed in float32 from element-wise
    products and sums (no matrix product that autocast would lower to bfloat16), and
    traceable for the TorchScript and ONNX exports.
    """
    if not (upright or center):
        return images
    _, _, h, w = images.shape
    x = images.float()
    ink = x.sum(1).flatten(1)  # over channels; the moments do not depend on the scale
    ink = ink - ink.amin(1, keepdim=True)
    # broadcast, not repeat_interleave: a traced repeat_interleave keeps a CPU index tensor,
    # and the TorchScript export then failed on CUDA (seen on an H200)
    row = _steps(x, h).view(h, 1).expand(h, w).reshape(-1)
    col = _steps(x, w).view(1, w).expand(h, w).reshape(-1)
    total = ink.sum(1)
    mass = total.clamp_min(1e-12)
    blank = total <= 0  # no ink, no moments: a blank image stays put
    cy = torch.where(blank, (h - 1) / 2, (ink * row).sum(1) / mass)
    cx = torch.where(blank, (w - 1) / 2, (ink * col).sum(1) / mass)
    # grid_sample's coordinates (align_corners): pixel p of n is at 2p / (n-1) - 1
    out_y = _grid_steps(x, h).view(1, h, 1)
    out_x = _grid_steps(x, w).view(1, 1, w)
    mass_y = (2 * cy / (h - 1) - 1).view(-1, 1, 1)  # the centre of mass, in those coordinates
    mass_x = (2 * cx / (w - 1) - 1).view(-1, 1, 1)
    if upright:
        var_y = ((ink * (row * row)).sum(1) / mass - cy * cy).clamp_min(1e-6)
        shear = ((ink * (row * col)).sum(1) / mass - cy * cx) / var_y
        slope = (torch.where(blank, 0.0, shear) * ((h - 1) / (w - 1))).view(-1, 1, 1)
    # Output pixel (r, c) reads input row r' and column c' + shear * (r' - cy), where r', c'
    # are r, c moved by the centring (centre of mass to centre) or not moved at all.
    if center and upright:
        grid_x = out_x + mass_x + slope * out_y
        grid_y = (out_y + mass_y).expand(-1, h, w)
    elif center:
        grid_x = (out_x + mass_x).expand(-1, h, w)
        grid_y = (out_y + mass_y).expand(-1, h, w)
    else:
        grid_x = out_x + slope * (out_y - mass_y)
        grid_y = out_y.expand_as(grid_x)
    grid = torch.stack([grid_x, grid_y], 3)
    # Past the border lies background: the image's darkest value (replicating the edge
    # would smear ink that touches it across the strip the move uncovers).
    dark = x.amin((1, 2, 3), keepdim=True)
    moved = F.grid_sample(x - dark, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return (moved + dark).to(images.dtype)
