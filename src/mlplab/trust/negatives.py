"""Synthetic non-digits: images of any shape that no class of a run should claim.

Uniform noise, blank frames, smooth gradients, random pen strokes, geometric shapes,
textures (gratings, checkerboards, blotches) and letters drawn with the font Pillow
always has (``ImageFont.load_default``). They are drawn the way a preprocessed input
looks: light marks on a dark background, within the middle 20/28 of the frame, as uint8
``(N, C, H, W)`` tensors, deterministically from a seed.

They are used to choose between variants of a detector (by AUROC against the validation
split, :mod:`.rejection`) and by the tests; they never choose a threshold. Photographed
non-digits (paper, letters on a page) go through :mod:`mlplab.inference.images` first, which
this layer does not reach: the tests draw those.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = ["KINDS", "LETTERS", "negatives"]

KINDS = ("noise", "blank", "gradient", "strokes", "shapes", "textures", "glyphs")
# Letters that do not read as a digit in a handwriting-like hand: O, I, l, S, Z, B, G, g, q,
# b, T and the like are left out, since a model that calls them 0, 1, 5, 2, 8, 6, 9, 7 is right.
LETTERS = "ACEFHKMNPRUVWXYaehkmnprtuvwxy"
_WORK = 112  # px: drawings are made at this size, then reduced (antialiased) to the frame
_BOX = 20 / 28  # the part of the frame a drawing fills, as MNIST's digits do


def negatives(kind: str, n: int, shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """``n`` synthetic images of ``kind`` (one of :data:`KINDS`), uint8 ``(n, C, H, W)``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    c, h, w = (int(s) for s in shape)
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "noise":
        return torch.from_numpy(rng.integers(0, 256, (n, c, h, w), dtype=np.uint8))
    if kind == "blank":
        return torch.zeros((n, c, h, w), dtype=torch.uint8)
    if kind == "gradient":
        return torch.from_numpy(np.stack([_gradient(rng, c, h, w) for _ in range(n)]))
    draw = _DRAWERS[kind]
    frames = []
    for _ in range(n):
        canvas = Image.new("L", (_WORK, _WORK), 0)
        draw(ImageDraw.Draw(canvas), rng)
        frames.append(_to_frame(canvas, c, h, w))
    return torch.from_numpy(np.stack(frames)) if frames else torch.zeros((0, c, h, w), torch.uint8)


def _gradient(rng: np.random.Generator, c: int, h: int, w: int) -> np.ndarray:
    """A smooth ramp in a random direction between two random levels, per channel."""
    angle = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:h, 0:w]
    ramp = np.cos(angle) * x / max(w - 1, 1) + np.sin(angle) * y / max(h - 1, 1)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)  # 0 to 1 across the frame
    low, high = sorted(rng.uniform(0, 255, 2))
    frame = low + (high - low) * ramp
    return np.repeat(np.rint(frame)[None], c, 0).astype(np.uint8)


def _point(rng: np.random.Generator) -> tuple[float, float]:
    margin = _WORK * (1 - _BOX) / 2
    return tuple(rng.uniform(margin, _WORK - margin, 2))  # type: ignore[return-value]


def _strokes(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    """A scribble: a few random polylines, pen-wide."""
    for _ in range(rng.integers(1, 4)):
        points = [_point(rng) for _ in range(rng.integers(3, 8))]
        draw.line(points, fill=int(rng.integers(180, 256)), width=int(rng.integers(6, 14)))


def _shapes(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    """A rectangle, ellipse, triangle or star, outlined or filled."""
    (x0, y0), (x1, y1) = sorted([_point(rng), _point(rng)])
    box = (x0, min(y0, y1), max(x1, x0 + 20), max(y0, y1, min(y0, y1) + 20))
    fill, width = int(rng.integers(180, 256)), int(rng.integers(6, 14))
    filled = rng.random() < 0.5
    kind = rng.integers(0, 4)
    if kind == 0:
        draw.rectangle(box, fill=fill if filled else None, outline=fill, width=width)
    elif kind == 1:
        draw.ellipse(box, fill=fill if filled else None, outline=fill, width=width)
    else:
        cx, cy, r = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, _WORK * _BOX / 2
        corners = 3 if kind == 2 else 10
        points = [
            (
                cx
                + r
                * (1 if i % 2 == 0 or kind == 2 else 0.45)
                * math.cos(2 * math.pi * i / corners),
                cy
                + r
                * (1 if i % 2 == 0 or kind == 2 else 0.45)
                * math.sin(2 * math.pi * i / corners),
            )
            for i in range(corners)
        ]
        draw.polygon(points, fill=fill if filled else None, outline=fill, width=width)


def _textures(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    """Stripes, a checkerboard or scattered blotches over the drawing box."""
    lo, hi = _WORK * (1 - _BOX) / 2, _WORK * (1 + _BOX) / 2
    fill, step = int(rng.integers(150, 256)), int(rng.integers(8, 20))
    kind = rng.integers(0, 3)
    if kind == 0:
        for t in np.arange(lo, hi, step):
            line = (t, lo, t, hi) if rng.random() < 0.5 else (lo, t, hi, t)
            draw.line(line, fill=fill, width=step // 2)
    elif kind == 1:
        for i, y in enumerate(np.arange(lo, hi, step)):
            for j, x in enumerate(np.arange(lo, hi, step)):
                if (i + j) % 2 == 0:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=fill)
    else:
        for _ in range(rng.integers(8, 25)):
            x, y = _point(rng)
            r = rng.uniform(3, 9)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(120, 256)))


def _glyphs(draw: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    """One letter of :data:`LETTERS`, in Pillow's own font, filling the drawing box."""
    letter = LETTERS[rng.integers(0, len(LETTERS))]
    font = ImageFont.load_default(size=int(_WORK * _BOX * rng.uniform(0.8, 1.1)))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    at = ((_WORK - (right - left)) / 2 - left, (_WORK - (bottom - top)) / 2 - top)
    draw.text(at, letter, fill=int(rng.integers(200, 256)), font=font)
    if rng.random() < 0.5:  # a pen's weight: thicken with a max filter's worth of strokes
        draw.text((at[0] + 2, at[1]), letter, fill=255, font=font)
        draw.text((at[0], at[1] + 2), letter, fill=255, font=font)


_DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, np.random.Generator], None]] = {
    "strokes": _strokes,
    "shapes": _shapes,
    "textures": _textures,
    "glyphs": _glyphs,
}


def _to_frame(canvas: Image.Image, c: int, h: int, w: int) -> np.ndarray:
    small = np.asarray(canvas.resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8)
    return np.repeat(small[None], c, 0)
