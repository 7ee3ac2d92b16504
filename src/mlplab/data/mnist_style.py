"""A grayscale photo of a drawing -> an MNIST-like frame: the pure pixel steps of ``predict``.

MNIST's digits were made from scanned forms by cropping each one, scaling it to fit 20x20
keeping its aspect ratio (antialiased), and placing its center of mass at the center of a
28x28 frame. :func:`mnist_style` does the same to a grayscale image (float, 0-255):

1. an image with no ink at all (blank paper under uneven light, a smooth gradient: nothing
   stands out of a smooth surface by more than :data:`INK` levels, :func:`is_blank`) becomes
   an empty frame, instead of its light being stretched into "ink";
2. inverted when the background is light, judged from the median of the border pixels;
3. background level subtracted, contrast stretched, faint paper texture below half the
   ink threshold (Otsu's) cleared;
4. cropped to the bounding box of the ink (pixels above Otsu's threshold);
5. strokes that would come out thinner than MNIST's thickened (a pen line on a large
   photo would otherwise shrink to a faint hairline): the ink mask is dilated;
6. scaled, keeping the aspect ratio, to fit a box of 20/28 of the target size (20x20 in
   28x28) with antialiasing;
7. placed so that its center of mass falls on the frame's center, to a fraction of a
   pixel: row H/2 and column W/2 in pixel-index units, where MNIST's own digits lie
   (their mean center of mass is at (13.99, 14.00)).

It lives here, in the data layer, and not with the image files of
:mod:`mlplab.inference.images` (which reads them and calls it), because the synthetic
photographed non-digits of :mod:`mlplab.trust.negatives` must go through the very same
steps, and trust sits below inference (docs/architecture.md). Nothing here reads a file.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["BOX", "INK", "border", "is_blank", "mnist_style"]

BOX = 20 / 28  # MNIST fits each digit in 20x20 of its 28x28 frame
MNIST_STROKE = 2.5  # median stroke width of MNIST digits, px at 28x28 (2 * area / perimeter)
THIN = 0.7  # thicken strokes below this fraction of it (MNIST's 10th percentile)
INK = 16  # levels of 0-255 that ink stands out of the paper by, at least
# Blank-paper test: the image box-reduced to at most this many pixels a side (a 3-px pen line
# on a 4,000-px photo keeps a fifth of its contrast there), a quadratic surface (the light)
# fitted to it, and ink where it departs from the surface by more than INK on more than
# BLANK_SPECKS of its pixels (a speck of dust, JPEG noise and paper grain are a few).
BLANK_SIDE = 256
BLANK_SPECKS = 4


def mnist_style(gray: np.ndarray, h: int, w: int, box: float = BOX) -> np.ndarray:
    """Grayscale float (H', W') in 0-255 -> uint8 (h, w), white ink centered on black (the
    module docstring's steps 1-7, after the conversion to gray)."""
    if is_blank(gray):  # before any stretch: uneven light on paper is not ink
        return np.zeros((h, w), np.uint8)
    if np.median(border(gray)) > 127.5:
        gray = 255 - gray  # dark ink on light paper -> light ink on black, as MNIST
    ink = np.clip(gray - np.median(border(gray)), 0, None)  # background to 0
    if ink.max() < INK:  # nothing drawn (flat within 16 levels): the model sees an empty frame
        return np.zeros((h, w), np.uint8)
    threshold = _otsu(ink)
    mask = ink > threshold
    if not mask.any():  # one flat level of "ink" everywhere: nothing to crop to
        return np.zeros((h, w), np.uint8)
    peak = np.percentile(ink[mask], 90)  # the top tenth of the ink saturates, as in MNIST
    ink = np.where(ink >= threshold / 2, np.clip(ink / peak, 0, 1) * 255, 0)  # clear texture
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    # A stroke that would come out thinner than MNIST's (a pen line on a large photo shrinks
    # to a faint hairline) is thickened first, on the ink mask, as MNIST's bilevel sources.
    scale = min(box * h / ink.shape[0], box * w / ink.shape[1])
    want = MNIST_STROKE * min(h, w) / 28 / scale  # source pixels that become MNIST's width
    width = _stroke_width(mask)
    if width < THIN * want:
        grow = math.ceil((want - width) / 2)
        ink = _dilate(np.pad(mask, grow), grow) * 255.0
        scale = min(box * h / ink.shape[0], box * w / ink.shape[1])

    # Fit box*h x box*w keeping the aspect ratio, with antialiasing (Lanczos, clipped).
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))  # (w, h)
    small = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    # a zero margin: bilinear sampling clamps at an image's edge, which would smear the ink
    small = np.pad(np.clip(np.asarray(small, dtype=np.float64), 0, 255), 2)

    # Sub-pixel placement: the center of mass goes to (h/2, w/2) in pixel-index units.
    mass = small.sum()
    com_y = (small.sum(1) * np.arange(small.shape[0])).sum() / mass
    com_x = (small.sum(0) * np.arange(small.shape[1])).sum() / mass
    dx, dy = w / 2 - com_x, h / 2 - com_y
    placed = Image.fromarray(small.astype(np.float32)).transform(
        (w, h), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), Image.Resampling.BILINEAR
    )
    return np.clip(np.rint(np.asarray(placed, dtype=np.float64)), 0, 255).astype(np.uint8)


def is_blank(gray: np.ndarray) -> bool:
    """Whether a grayscale image (0-255) holds no ink: at most :data:`BLANK_SPECKS` of its
    pixels depart from a smooth (quadratic) surface by more than :data:`INK` levels, once
    box-reduced to :data:`BLANK_SIDE` pixels a side. Blank paper
    under uneven light, a vignetted photo and a smooth gradient are blank; a pen line is not."""
    k = max(1, math.ceil(max(gray.shape) / BLANK_SIDE))
    rows, cols = gray.shape[0] // k * k, gray.shape[1] // k * k
    if rows == 0 or cols == 0:  # smaller than one box: as it is
        small, rows, cols, k = gray, *gray.shape, 1
    else:
        small = gray[:rows, :cols].reshape(rows // k, k, cols // k, k).mean((1, 3))
    y, x = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    y, x = y.ravel() / max(small.shape[0], 1), x.ravel() / max(small.shape[1], 1)
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)
    values = small.ravel()
    surface = terms @ np.linalg.lstsq(terms, values, rcond=None)[0]
    return int(np.count_nonzero(np.abs(values - surface) > INK)) <= BLANK_SPECKS


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a bilevel drawing, px: 2 * area / perimeter (long thin strokes)."""
    inner = mask.copy()  # 4-neighbour erosion: what is left inside the boundary
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return 2 * float(mask.sum()) / max(int((mask & ~inner).sum()), 1)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Dilation by a (2r+1)-square, separably, with running sums: O(pixels) for any r."""
    for axis in (0, 1):
        counts = np.cumsum(mask, axis=axis, dtype=np.int64)
        counts = np.concatenate([np.zeros_like(counts.take([0], axis=axis)), counts], axis=axis)
        n = mask.shape[axis]
        hi = np.minimum(np.arange(n) + r + 1, n)
        lo = np.maximum(np.arange(n) - r, 0)
        mask = (counts.take(hi, axis=axis) - counts.take(lo, axis=axis)) > 0
    return mask


def border(a: np.ndarray) -> np.ndarray:
    """The outer ring of pixels, 2% of the size thick (at least one pixel)."""
    k = max(1, round(0.02 * min(a.shape)))
    return np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[:, :k].ravel(), a[:, -k:].ravel()])


def _otsu(a: np.ndarray) -> float:
    """Otsu's threshold of values in 0-255: the split that maximizes between-class variance."""
    hist = np.bincount(np.clip(a, 0, 255).astype(np.int64).ravel(), minlength=256).astype(float)
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * levels)
    mean0 = m0 / np.maximum(w0, 1e-12)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(np.argmax(between[:-1]))  # values > threshold are ink
