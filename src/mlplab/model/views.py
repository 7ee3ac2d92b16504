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


def _counts(like: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """start, start + 1, ..., stop - 1 as int64 on ``like``'s device (made as :func:`_steps`
    is, for the exports)."""
    return like.new_ones(stop - start, dtype=torch.long).cumsum(0) + (start - 1)


# ----- ink alignment --------------------------------------------------------------------------
def align_ink(
    images: torch.Tensor, *, upright: bool = True, center: bool = False, crop: int = 0
) -> torch.Tensor:
    """Each image sheared so that its ink stands upright (``upright``: the deskewing of
    LeCun et al. 1998's MNIST benchmarks) and/or moved so that its centre of mass sits at
    the image's centre (``center``); with ``crop``, only the central ``(H - 2 crop) x
    (W - 2 crop)`` pixels of the result (what a model with ``model.crop`` reads) are made.

    ``images`` is ``(N, C, H, W)`` with H, W >= 2: bright strokes on a dark background, at
    any affine scale of the pixels (the moments are those of each image less its darkest
    value, summed over channels). The shear is the ratio of the ink's row-column covariance
    to its row variance, the one that makes that covariance 0; it pivots on the row of the
    centre of mass, so without ``center`` the ink's centre stays where it was. Pixels are
    read bilinearly, a read past the border finds the image's darkest value (background),
    and an image without ink is left as it is. Computed in float32 from element-wise
    products and sums (no matrix product that autocast would lower to bfloat16), and
    traceable for the TorchScript and ONNX exports.

    The read is separable: output pixel (r, c) reads input row r + ty (one ty for the whole
    image) and, within it, column c + tx[r] (the shear gives each row its own), so it is a
    move of whole rows (a row gather and a blend) then a move within each row (a gather and
    a blend). Against ``F.grid_sample`` on a sampling grid, the same reads in about half
    the passes over the pixels (README "Speed" has the timings).
    """
    h, w = images.shape[-2:]
    if not (upright or center):
        return images[..., crop : h - crop, crop : w - crop] if crop else images
    x = images.float()
    # Past the border lies background: the image's darkest value (replicating the edge
    # would smear ink that touches it across the strip the move uncovers).
    dark = x.amin((1, 2, 3), keepdim=True)
    lifted = x - dark  # background 0: the reads past the border find zeros
    # (N, H, W): the image summed over channels, less its darkest value (summed before the
    # shift: channels that cancel leave no ink at all; no branch on the channel count,
    # which a trace would warn about)
    ink = x.sum(1)
    ink.sub_(ink.amin((1, 2), keepdim=True))
    row_ink = ink.sum(2)  # (N, H): each row's ink ...
    row_col = (ink * _steps(x, w)).sum(2)  # ... and its first moment along the row
    rows = _steps(x, h)
    total = row_ink.sum(1)
    mass = total.clamp_min(1e-12)
    blank = total <= 0  # no ink, no moments: a blank image stays put
    cy = torch.where(blank, (h - 1) / 2, (row_ink * rows).sum(1) / mass)
    cx = torch.where(blank, (w - 1) / 2, row_col.sum(1) / mass)
    # output row r reads input row r + ty and, within it, column c + tx[r]
    ty = cy - (h - 1) / 2 if center else torch.zeros_like(cy)
    tx = (cx - (w - 1) / 2).view(-1, 1) if center else torch.zeros_like(cx).view(-1, 1)
    if upright:
        var_y = ((row_ink * (rows * rows)).sum(1) / mass - cy * cy).clamp_min(1e-6)
        shear = ((row_col * rows).sum(1) / mass - cy * cx) / var_y
        shear = torch.where(blank, 0.0, shear).view(-1, 1)
        # the input row read, less the pivot (the centre of mass's row)
        tx = tx + shear * (rows.view(1, h) + ty.view(-1, 1) - cy.view(-1, 1))
    # one column of background each side and one row below, for the reads past the border
    # (F.pad: a concatenation with the broadcast background took 4x as long)
    padded = F.pad(lifted, (1, 1, 0, 1))
    kept_h, kept_w = h - 2 * crop, w - 2 * crop
    # without centring no row moves: the kept rows as they are
    moved = _move_rows(padded, ty, crop, kept_h) if center else padded[:, :, crop : h - crop]
    moved = _move_within_rows(moved, tx.expand(-1, h)[:, crop : h - crop], crop, kept_w)
    return (moved + dark).to(images.dtype)


def _move_rows(padded: torch.Tensor, t: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """Rows ``first`` to ``first + count - 1`` of the image read at rows r + t[n],
    bilinearly: ``padded`` is ``(N, C, H + 1, W')`` with a row of zeros last."""
    n, ch, rows, width = padded.shape
    h = rows - 1
    whole = t.floor()
    part = (t - whole).view(-1, 1, 1, 1)
    # the rows read (and the next): past the border, the background row
    read = whole.long().view(-1, 1) + _counts(padded, first, first + count + 1).view(1, -1)
    read = torch.where((read >= 0) & (read < h), read, h)
    index = (read + _counts(padded, 0, n).view(-1, 1) * rows).flatten()
    flat = padded.transpose(1, 2).reshape(n * rows, ch * width)
    taken = flat.index_select(0, index).view(n, count + 1, ch, width).transpose(1, 2)
    return torch.lerp(taken[:, :, :count], taken[:, :, 1:], part)


def _move_within_rows(
    padded: torch.Tensor, t: torch.Tensor, first: int, count: int
) -> torch.Tensor:
    """Columns ``first`` to ``first + count - 1`` of each row read at c + t[n, r],
    bilinearly: ``padded`` is ``(N, C, H', W + 2)`` with a column of zeros each side,
    ``t`` is ``(N, H')``."""
    n, ch, h, width = padded.shape
    whole = t.floor()
    part = (t - whole).reshape(n, 1, h, 1)
    start = _counts(padded, first + 1, first + count + 2).view(1, 1, -1)
    read = (whole.long().view(n, h, 1) + start).clamp_(0, width - 1)
    taken = padded.gather(3, read.view(n, 1, h, count + 1).expand(n, ch, h, count + 1))
    return torch.lerp(taken[..., :count], taken[..., 1:], part)
