"""Synthetic non-digits: images of any shape that no class of a run should claim.

Uniform noise, blank frames, smooth gradients, random pen strokes, geometric shapes,
textures (gratings, checkerboards, blotches) and letters drawn with the font Pillow
always has (``ImageFont.load_default``). They are drawn the way a preprocessed input
looks: light marks on a dark background, within the middle 20/28 of the frame, as uint8
``(N, C, H, W)`` tensors, deterministically from a seed.

A second family, :data:`PHOTO_KINDS`, is drawn the way a photographed non-digit reaches the
model: dark marks on a light, unevenly lit, noisy page of a photo's proportions (letters and
symbols in Pillow's own font, shapes, scribbles, textures, paper with a shadow edge or a
smudge), put through :func:`mlplab.data.mnist_style.mnist_style`, the very pixel steps of
``predict``'s preprocessing (crop, thicken, scale to 20x20, centre by mass). Printed letters
that pass the in-frame family's test look like these, not like in-frame glyphs.

They are used to choose between variants of a detector (by AUROC against the validation
split, :mod:`.rejection`) and by the tests; they never choose a threshold. They are not the
photographed non-digits the tests measure (tests/inference/test_predictor.py): those are
letters A M N V Y K W H R X in DejaVu Serif at 160 px on a 360x300 page of one shade, and
drawn shapes; these are other letters (no capital of that set), in Pillow's own font
(Aileron), at 24-80 px on 80-144 px pages with light, noise and blur drawn from a seed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

from ..data.mnist_style import mnist_style

__all__ = ["FAMILIES", "KINDS", "LETTERS", "PHOTO_KINDS", "PHOTO_LETTERS", "negatives"]

KINDS = ("noise", "blank", "gradient", "strokes", "shapes", "textures", "glyphs")  # in-frame
# drawn as photographs, then put through predict's preprocessing
PHOTO_KINDS = ("photo-glyphs", "photo-shapes", "photo-scribbles", "photo-textures", "photo-paper")
FAMILIES = {"in-frame": KINDS, "photographed": PHOTO_KINDS}
# Letters that do not read as a digit in a handwriting-like hand: O, I, l, S, Z, B, G, g, q,
# b, T and the like are left out, since a model that calls them 0, 1, 5, 2, 8, 6, 9, 7 is right.
LETTERS = "ACEFHKMNPRUVWXYaehkmnprtuvwxy"
# Photographed letters and symbols: LETTERS without the capitals the predict tests photograph
# (A M N V Y K W H R X: those measure, these choose), and symbols no digit resembles.
PHOTO_LETTERS = "CEFPUaehkmnprtuvwxy#&@%*+"
_WORK = 112  # px: drawings are made at this size, then reduced (antialiased) to the frame
_BOX = 20 / 28  # the part of the frame a drawing fills, as MNIST's digits do


def negatives(kind: str, n: int, shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """``n`` synthetic images of ``kind`` (one of :data:`KINDS` or :data:`PHOTO_KINDS`), uint8
    ``(n, C, H, W)``. The same arguments give the same images (kept: the rejection's fit asks
    for them at the end of every training, and the photographed ones cost ~2 ms each)."""
    every = KINDS + PHOTO_KINDS
    if kind not in every:
        raise ValueError(f"kind must be one of {', '.join(every)}; got {kind!r}")
    c, h, w = (int(s) for s in shape)
    return torch.from_numpy(_drawn(kind, int(n), c, h, w, int(seed)).copy())


@functools.lru_cache(maxsize=32)
def _drawn(kind: str, n: int, c: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, (KINDS + PHOTO_KINDS).index(kind)])
    if kind == "noise":
        return rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    if kind == "blank":
        return np.zeros((n, c, h, w), dtype=np.uint8)
    if kind == "gradient":
        frames = [_gradient(rng, c, h, w) for _ in range(n)]
    elif kind in PHOTO_KINDS:
        # one BLAS thread: the blank test's small least-squares fit runs 10-15x slower on
        # OpenBLAS's threads than on one when the cores are busy (1 ms against 16, 2-core VM)
        with threadpool_limits(limits=1, user_api="blas"):
            frames = [_photographed(kind, rng, c, h, w) for _ in range(n)]
    else:
        frames = []
        for _ in range(n):
            canvas = Image.new("L", (_WORK, _WORK), 0)
            _DRAWERS[kind](ImageDraw.Draw(canvas), rng)
            frames.append(_to_frame(canvas, c, h, w))
    return np.stack(frames) if frames else np.zeros((0, c, h, w), np.uint8)


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


# ----- photographed: a page, its light, the marks, then predict's pixel steps ---------------
_PAGE = (80, 145)  # px: each side of a photographed page is drawn in this range
Drawer = Callable[[ImageDraw.ImageDraw, np.random.Generator, int, int], None]


def _photographed(kind: str, rng: np.random.Generator, c: int, h: int, w: int) -> np.ndarray:
    """One photographed non-digit of ``kind``: marks (coverage 0-255) drawn on a page, laid as
    ink on paper under uneven light with sensor noise and a little blur, then brought to the
    model's frame as ``predict``'s "auto" style would: by
    :func:`~mlplab.data.mnist_style.mnist_style` for one channel, resized for three."""
    width, height = (int(v) for v in rng.integers(*_PAGE, 2))
    marks = Image.new("L", (width, height), 0)
    _PHOTO_DRAWERS[kind](ImageDraw.Draw(marks), rng, width, height)
    marks = marks.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 1.2))))  # focus
    cover = np.asarray(marks, dtype=np.float64) / 255
    paper = _light(rng, height, width)
    ink = rng.uniform(10, 90)  # a pen's or a printer's dark, in 0-255
    gray = paper - cover * (paper - ink) + rng.normal(0, rng.uniform(0.5, 4), paper.shape)
    gray = np.clip(gray, 0, 255)
    if c == 3:  # predict's "auto" style for colour models: the page resized, nothing more
        page = Image.fromarray(np.rint(gray).astype(np.uint8)).resize(
            (w, h), Image.Resampling.LANCZOS
        )
        return np.repeat(np.asarray(page)[None], 3, 0)
    return np.repeat(mnist_style(gray, h, w)[None], c, 0)


def _light(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A page's brightness: a paper level, a ramp in a random direction and a vignette."""
    y, x = np.mgrid[0:height, 0:width]
    y, x = y / height - 0.5, x / width - 0.5
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y) * rng.uniform(0, 50)
    vignette = (x * x + y * y) * rng.uniform(0, 60)
    return rng.uniform(165, 245) + ramp - vignette


def _box(rng: np.random.Generator, width: int, height: int) -> tuple[float, ...]:
    """Where a drawing goes on the page: 35-85% of its shorter side, anywhere it fits."""
    side = min(width, height) * rng.uniform(0.35, 0.85)
    aspect = rng.uniform(0.6, 1.6)
    bw, bh = min(side * aspect, width - 4), min(side / aspect, height - 4)
    x0, y0 = rng.uniform(2, width - bw - 2), rng.uniform(2, height - bh - 2)
    return x0, y0, x0 + bw, y0 + bh


def _photo_glyphs(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """One to three of :data:`PHOTO_LETTERS` in Pillow's own font, at 24-80 px."""
    text = "".join(rng.choice(list(PHOTO_LETTERS), int(rng.integers(1, 4))))
    size = int(rng.integers(24, 81))
    for _ in range(8):  # smaller until it fits the page
        font = ImageFont.load_default(size=size)
        weight = int(rng.integers(0, 3))  # a bold face's extra width, px
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=weight)
        if right - left < w - 6 and bottom - top < h - 6:
            break
        size = int(size * 0.75)
    x = rng.uniform(3, max(w - (right - left) - 3, 3)) - left
    y = rng.uniform(3, max(h - (bottom - top) - 3, 3)) - top
    draw.text((x, y), text, fill=255, font=font, stroke_width=weight, stroke_fill=255)


def _photo_shapes(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """A rectangle, ellipse, triangle, star or cross, outlined by a pen or filled."""
    x0, y0, x1, y1 = _box(rng, w, h)
    pen = int(rng.integers(2, 9))
    fill = 255 if rng.random() < 0.4 else None
    kind = int(rng.integers(0, 5))
    if kind == 0:
        draw.rectangle((x0, y0, x1, y1), fill=fill, outline=255, width=pen)
    elif kind == 1:
        draw.ellipse((x0, y0, x1, y1), fill=fill, outline=255, width=pen)
    elif kind == 4:  # a cross, an x or a plus
        if rng.random() < 0.5:
            draw.line((x0, y0, x1, y1), fill=255, width=pen)
            draw.line((x0, y1, x1, y0), fill=255, width=pen)
        else:
            draw.line(((x0 + x1) / 2, y0, (x0 + x1) / 2, y1), fill=255, width=pen)
            draw.line((x0, (y0 + y1) / 2, x1, (y0 + y1) / 2), fill=255, width=pen)
    else:
        corners = 3 if kind == 2 else 10
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        turn = rng.uniform(0, 2 * math.pi)
        inner = [1 if i % 2 == 0 or corners == 3 else 0.45 for i in range(corners)]
        points = [
            (
                cx + rx * inner[i] * math.cos(turn + 2 * math.pi * i / corners),
                cy + ry * inner[i] * math.sin(turn + 2 * math.pi * i / corners),
            )
            for i in range(corners)
        ]
        draw.polygon(points, fill=fill, outline=255, width=pen)


def _photo_scribbles(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """A pen's scribble: one to three curved polylines, or a spiral, or a zigzag."""
    x0, y0, x1, y1 = _box(rng, w, h)
    pen = int(rng.integers(2, 8))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        for _ in range(int(rng.integers(1, 4))):
            count = int(rng.integers(4, 10))
            points = list(zip(rng.uniform(x0, x1, count), rng.uniform(y0, y1, count), strict=True))
            draw.line(points, fill=255, width=pen, joint="curve")
    elif kind == 1:
        t = np.linspace(0, rng.uniform(3, 7) * math.pi, 80)
        r = t / t[-1]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        xs, ys = cx + r * np.cos(t) * (x1 - x0) / 2, cy + r * np.sin(t) * (y1 - y0) / 2
        draw.line(list(zip(xs, ys, strict=True)), fill=255, width=pen, joint="curve")
    else:
        count = int(rng.integers(4, 12))
        xs = np.linspace(x0, x1, count)
        ys = np.where(np.arange(count) % 2 == 0, y0, y1) + rng.normal(0, 3, count)
        draw.line(list(zip(xs, ys, strict=True)), fill=255, width=pen)


def _photo_textures(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """Stripes, a checkerboard, a grid or dots over a part of the page (or all of it)."""
    x0, y0, x1, y1 = _box(rng, w, h) if rng.random() < 0.6 else (0, 0, w, h)
    step = min(x1 - x0, y1 - y0) / rng.uniform(3, 8)  # 3-8 periods across: visible at 20x20
    kind = int(rng.integers(0, 4))
    if kind == 0:
        slope = rng.uniform(-1, 1)
        for t in np.arange(x0 - (y1 - y0), x1, step):
            draw.line((t, y0, t + slope * (y1 - y0), y1), fill=255, width=max(1, int(step / 3)))
    elif kind == 1:
        for i, y in enumerate(np.arange(y0, y1, step)):
            for j, x in enumerate(np.arange(x0, x1, step)):
                if (i + j) % 2 == 0:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=255)
    elif kind == 2:
        pen = max(1, int(step / 5))
        for x in np.arange(x0, x1, step):
            draw.line((x, y0, x, y1), fill=255, width=pen)
        for y in np.arange(y0, y1, step):
            draw.line((x0, y, x1, y), fill=255, width=pen)
    else:
        for y in np.arange(y0, y1, step):
            for x in np.arange(x0, x1, step):
                r = step * rng.uniform(0.15, 0.35)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _photo_paper(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """Paper with no drawing on it but a shadow's edge, a smudge or a fold: faint, wide marks
    that the blank test may or may not call ink."""
    faint = int(rng.uniform(40, 140))  # a fraction of full ink, of 255
    kind = int(rng.integers(0, 3))
    if kind == 0:  # a shadow across the page: a half-plane through a random line
        a, b = (rng.uniform(0, w), 0), (rng.uniform(0, w), h)
        side = w if rng.random() < 0.5 else 0
        draw.polygon([a, b, (side, h), (side, 0)], fill=faint)
    elif kind == 1:  # a smudge
        x0, y0, x1, y1 = _box(rng, w, h)
        draw.ellipse((x0, y0, x1, y1), fill=faint)
    else:  # a fold or a crease, edge to edge
        y = rng.uniform(0.2, 0.8) * h
        draw.line(
            (0, y, w, y + rng.uniform(-0.3, 0.3) * h), fill=faint, width=int(rng.integers(1, 4))
        )


_PHOTO_DRAWERS: dict[str, Drawer] = {
    "photo-glyphs": _photo_glyphs,
    "photo-shapes": _photo_shapes,
    "photo-scribbles": _photo_scribbles,
    "photo-textures": _photo_textures,
    "photo-paper": _photo_paper,
}
