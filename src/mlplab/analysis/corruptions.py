"""The MNIST-C corruptions (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer
Vision"), each at five severities, as batched torch functions: uint8 ``(N, C, H, W)`` in,
the same shape, dtype and range out.

MNIST-C's generator (google-research/mnist-c, ``corruptions.py``) runs one image at a time
through scikit-image, SciPy, OpenCV and ImageMagick and no longer runs with current numpy;
here every corruption is a few tensor operations over the whole batch:
``F.affine_grid``/``F.grid_sample`` for the geometric ones, separable Gaussian blurs as matrix products,
Sobel gradients, non-maximum suppression and hysteresis by shifted slices for the Canny edges,
and one seeded :class:`torch.Generator` for every random draw (noise, directions, fog,
spatter, lines). The parameters per severity follow MNIST-C's code where it has five of them
(noise, blurs, shear, scale, rotate, brightness, translate, fog, spatter); where MNIST-C has
one fixed setting (stripe, dotted line, zigzag, Canny edges) that setting is severity 1 and
the higher severities go further (wider stripes, more lines, more smoothing before the
edges). :data:`CORRUPTIONS` holds each one's parameters per severity (docs/robustness.md
prints them as a table).

Sizes: MNIST-C's pixel parameters are for 28x28 images; on other sizes every length (blur
sigmas, shifts, line widths) scales by the image's side over 28, so a USPS 16x16 digit or a
32x32 photo is corrupted as much as an MNIST digit. Colour: every corruption but the Canny
edges runs on any number of channels (the same random field on every channel: fog and mud
are grey); the Canny edges of a colour photo are a grey line drawing, another task, so
:func:`skip_reason` says so and :mod:`.robustness` skips them.

Severity 0 is the identity (the images unchanged, every corruption), so a severity-0 row
reproduces the clean figures exactly. The same images, name, severity and seed give the same
output, bit for bit.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError, did_you_mean

__all__ = [
    "CORRUPTIONS",
    "NAMES",
    "SEVERITIES",
    "Corruption",
    "corrupt",
    "skip_reason",
]

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIDE = 28  # MNIST-C's lengths are in pixels of 28x28 images
FOG_POOL = 64  # plasma fractals drawn per call; each image gets a random window of one
FOG_MAP = 256  # side of a plasma fractal (MNIST-C's), or the next power of two above the image
TRUNCATE = 4.0  # Gaussian kernels reach this many sigmas (scikit-image's default)
MUD = 63 / 255  # the spatter's mud colour (MNIST-C's)

Function = Callable[[torch.Tensor, object, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """One corruption: its five parameters (one a severity) and the function applying one."""

    name: str
    parameter: str  # what the per-severity values mean, for the docs table
    values: tuple[object, ...]  # per severity 1..5
    random: bool  # draws from the generator (else the output depends on the images only)
    apply: Function  # float (N, C, H, W) in [0, 1], the severity's value, generator -> same
    grey_only: str | None = None  # why it is skipped on colour images; None: any channels


# ----- shared helpers -------------------------------------------------------------------------
def _scale(x: torch.Tensor) -> float:
    """Lengths scale by the image's mean side over MNIST's 28."""
    return (x.shape[-2] + x.shape[-1]) / (2 * REFERENCE_SIDE)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(TRUNCATE * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _blur_matrix(size: int, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """The ``(size, size)`` matrix of a 1-D convolution with ``kernel`` along an axis of
    ``size`` pixels, its padding folded in (replicate: the edge pixel repeated; constant:
    zeros). A matrix product runs ~10x faster on the CPU than ``conv2d`` with one channel."""
    r = len(kernel) // 2
    out = torch.arange(size).view(-1, 1).expand(size, len(kernel))
    source = out + torch.arange(-r, r + 1).view(1, -1)
    weight = kernel.view(1, -1).expand(size, len(kernel))
    if mode == "constant":
        weight = torch.where((source >= 0) & (source < size), weight, torch.zeros_like(weight))
    matrix = torch.zeros(size, size)
    matrix.index_put_((out, source.clamp(0, size - 1)), weight, accumulate=True)
    return matrix


def _separable(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """``x`` (N, C, H, W) convolved with ``kernel`` along both axes, each channel alone;
    ``mode`` pads as F.pad does (replicate: scikit-image's 'nearest'; constant: zeros)."""
    h, w = x.shape[-2:]
    rows, cols = _blur_matrix(h, kernel, mode), _blur_matrix(w, kernel, mode)
    return torch.matmul(rows, x @ cols.t())


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur, edges extended (scikit-image's ``gaussian``, mode 'nearest')."""
    return _separable(x, _gaussian_kernel(sigma), "replicate")


def _uniform(shape: tuple[int, ...], g: torch.Generator, low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (high - low) + low


def _signs(n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` random directions, -1 or +1 (MNIST-C's ``np.random.choice([-1, 1])``)."""
    return torch.randint(0, 2, (n,), generator=g).float() * 2 - 1


def _warp(x: torch.Tensor, matrix: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Each image sampled at ``matrix @ (p - centre) + centre + shift`` for each output pixel
    ``p`` (column, row), bilinear, zeros outside: scikit-image's ``warp(x, inverse_map=aff)``
    with MNIST-C's translation keeping the centre fixed. ``matrix`` (N, 2, 2) in pixels,
    ``shift`` (N, 2) in pixels."""
    n, _, h, w = x.shape
    hx, hy = max(w - 1, 1) / 2, max(h - 1, 1) / 2  # pixels per unit of align_corners coords
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = matrix[:, 0, 0]
    theta[:, 0, 1] = matrix[:, 0, 1] * hy / hx
    theta[:, 1, 0] = matrix[:, 1, 0] * hx / hy
    theta[:, 1, 1] = matrix[:, 1, 1]
    if shift is not None:
        theta[:, 0, 2] = shift[:, 0] / hx
        theta[:, 1, 2] = shift[:, 1] / hy
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _matrices(n: int, a: float, b: float, c: float, d: float) -> torch.Tensor:
    return torch.tensor([[a, b], [c, d]], dtype=torch.float32).expand(n, 2, 2).clone()


# ----- noise -----------------------------------------------------------------------------------
def shot_noise(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """Poisson noise: ``poisson(x * c) / c`` (fewer photons, noisier)."""
    rate = float(c)  # type: ignore[arg-type]
    return torch.poisson(x * rate, generator=g) / rate


def impulse_noise(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """Salt and pepper: a fraction ``c`` of the values set to 0 or 1, half each."""
    hit = torch.rand(x.shape, generator=g) < float(c)  # type: ignore[arg-type]
    salt = (torch.rand(x.shape, generator=g) < 0.5).float()
    return torch.where(hit, salt, x)


# ----- blurs -----------------------------------------------------------------------------------
def glass_blur(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """Blur, shuffle pixels locally, blur again. MNIST-C swaps pixels one at a time, each with
    one up to ``delta`` away, ``iterations`` times over the frame; a chain of swaps cannot run
    batched, so here each pixel (chosen with probability 1/2, as there) takes the value of a
    random pixel up to ``delta`` away, all at once."""
    sigma, delta, iterations = c  # type: ignore[misc]
    s = _scale(x)
    sigma, delta = sigma * s, max(1, round(delta * s))
    n, ch, h, w = x.shape
    x = _blur(x, sigma)
    rows = torch.arange(h, dtype=torch.int32).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.int32).view(1, 1, w)
    # MNIST-C's pixels: rows and columns in (delta, side - delta], so a shift in
    # [-delta, delta) stays inside the frame; int32 arithmetic (int64 is ~2x slower here)
    inside = (rows > delta) & (rows <= h - delta) & (cols > delta) & (cols <= w - delta)
    here = rows * w + cols
    for _ in range(iterations):
        chosen = (torch.rand((n, h, w), generator=g) < 0.5) & inside
        dy = torch.randint(-delta, delta, (n, h, w), generator=g, dtype=torch.int32)
        dx = torch.randint(-delta, delta, (n, h, w), generator=g, dtype=torch.int32)
        source = here + torch.where(chosen, dy * w + dx, 0)
        index = source.long().view(n, 1, h * w).expand(n, ch, h * w)
        x = x.reshape(n, ch, h * w).gather(2, index).view(n, ch, h, w)
    return _blur(x, sigma)


def motion_blur(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """ImageMagick's motion blur as MNIST-C calls it (radius, sigma, an angle drawn from
    -45 to 45 degrees per image): a one-sided Gaussian of ``2 * radius + 1`` taps along the
    angle, the frame's edge pixels extended beyond it."""
    radius, sigma = c  # type: ignore[misc]
    s = _scale(x)
    taps = 2 * math.ceil(radius * s) + 1
    steps = torch.arange(taps, dtype=torch.float32)
    weights = torch.exp(-(steps**2) / (2 * (sigma * s) ** 2))
    weights = weights / weights.sum()
    n, _, h, w = x.shape
    angle = torch.deg2rad(_uniform((n,), g, -45.0, 45.0))
    base = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), list(x.shape), align_corners=True)
    unit = torch.stack(
        [torch.cos(angle) * 2 / max(w - 1, 1), torch.sin(angle) * 2 / max(h - 1, 1)], 1
    )
    out = torch.zeros_like(x)
    for step, weight in zip(steps.tolist(), weights.tolist(), strict=True):
        if weight < 1e-6:  # far taps of a narrow Gaussian: nothing to add
            continue
        grid = base + (unit * step).view(n, 1, 1, 2)
        out += weight * F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    return out


# ----- geometry ----------------------------------------------------------------------------------
def shear(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """scikit-image's ``AffineTransform(shear=±c)`` about the centre (the sign drawn per image)."""
    n = x.shape[0]
    angle = float(c) * _signs(n, g)  # type: ignore[arg-type]
    m = _matrices(n, 1, 0, 0, 1)
    m[:, 0, 1] = -torch.sin(angle)
    m[:, 1, 1] = torch.cos(angle)
    return _warp(x, m)


def rotate(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """A rotation by ``±c`` radians about the centre (the sign drawn per image)."""
    n = x.shape[0]
    angle = float(c) * _signs(n, g)  # type: ignore[arg-type]
    cos, sin = torch.cos(angle), torch.sin(angle)
    m = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    return _warp(x, m)


def scale(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """Shrink about the centre to ``c`` of the size (MNIST-C's inverse map scales by 1/c)."""
    factor = 1 / float(c)  # type: ignore[arg-type]
    return _warp(x, _matrices(x.shape[0], factor, 0, 0, factor))


def translate(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """A shift by ``c`` pixels along each axis, each direction drawn per image."""
    n = x.shape[0]
    s = float(c) * _scale(x)  # type: ignore[arg-type]
    shift = torch.stack([_signs(n, g), _signs(n, g)], 1) * s
    return _warp(x, _matrices(n, 1, 0, 0, 1), shift)


# ----- light and paint -----------------------------------------------------------------------------
def brightness(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """HSV value raised by ``c`` (MNIST-C: grey to RGB, HSV, V + c, back): hue and saturation
    kept, so every channel scales by ``min(V + c, 1) / V``; a grey image becomes
    ``min(x + c, 1)``."""
    value = x.amax(1, keepdim=True)
    raised = (value + float(c)).clamp(max=1.0)  # type: ignore[arg-type]
    return torch.where(value > 0, x * raised / value.clamp(min=1e-12), raised.expand_as(x))


def stripe(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """The left and right bands, ``c`` of the width each (MNIST-C: 7 of 28), inverted."""
    w = x.shape[-1]
    band = max(1, round(float(c) * w))  # type: ignore[arg-type]
    out = x.clone()
    out[..., :band] = 1 - x[..., :band]
    out[..., w - band :] = 1 - x[..., w - band :]
    return out


def _plasma(n: int, size: int, decay: float, g: torch.Generator) -> torch.Tensor:
    """``n`` plasma fractals (diamond-square, MNIST-C's ``plasma_fractal``), (n, size, size),
    each scaled to [0, 1]."""
    maps = torch.zeros(n, size, size)
    step, wibble = size, 100.0

    def wibbled(a: torch.Tensor) -> torch.Tensor:
        return a / 4 + wibble * _uniform(tuple(a.shape), g, -wibble, wibble)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half::step, half::step] = wibbled(squares)
        centres = maps[:, half::step, half::step]
        corners = maps[:, 0::step, 0::step]
        left = centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        maps[:, 0::step, half::step] = wibbled(left)
        top = centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        maps[:, half::step, 0::step] = wibbled(top)
        step //= 2
        wibble /= decay
    low = maps.amin((1, 2), keepdim=True)
    maps = maps - low
    return maps / maps.amax((1, 2), keepdim=True).clamp(min=1e-12)


def fog(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """A plasma fractal added with weight ``c[0]`` (``c[1]`` its roughness decay), then the
    image rescaled by ``max / (max + c[0])``. MNIST-C draws a 256x256 fractal per image and
    keeps its top-left 28x28 corner; a 256x256 map per image would cost 80 times the image,
    so here :data:`FOG_POOL` maps are drawn and each image gets a random window of a random
    one (the fractal wraps around, so every window is alike)."""
    weight, decay = c  # type: ignore[misc]
    n, _, h, w = x.shape
    size = max(FOG_MAP, 1 << max(h, w, 2).bit_length())
    maps = _plasma(min(n, FOG_POOL), size, decay, g)
    which = torch.randint(0, len(maps), (n,), generator=g)
    top = torch.randint(0, size - h + 1, (n,), generator=g)
    left = torch.randint(0, size - w + 1, (n,), generator=g)
    rows = (top.view(n, 1, 1) + torch.arange(h).view(1, h, 1)).expand(n, h, w)
    cols = (left.view(n, 1, 1) + torch.arange(w).view(1, 1, w)).expand(n, h, w)
    layer = maps[which.view(n, 1, 1).expand(n, h, w), rows, cols].unsqueeze(1)
    peak = x.amax((1, 2, 3), keepdim=True)
    return (x + weight * layer) * peak / (peak + weight)


def spatter(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """Mud: a Gaussian liquid layer (mean, sd) blurred by sigma 1, above a threshold, blurred
    by sigma 2, kept where above 0.8, painted grey 63/255 (MNIST-C's mud branch)."""
    mean, sd, sigma1, threshold, sigma2 = c  # type: ignore[misc]
    s = _scale(x)
    n, _, h, w = x.shape
    liquid = torch.randn((n, 1, h, w), generator=g) * sd + mean
    liquid = _blur(liquid, sigma1 * s)
    mask = _blur((liquid > threshold).float(), sigma2 * s)
    mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
    return x * (1 - mask) + MUD * mask


# ----- lines ------------------------------------------------------------------------------------
def _lines(
    h: int,
    w: int,
    ends: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    dashes: torch.Tensor | None = None,
) -> torch.Tensor:
    """MNIST-C's ``line_from_points`` for ``S`` lines on each of ``n`` images, summed:
    (n, 1, h, w). ``ends`` are (c0, r0, c1, r1), each (n, S), in pixels; a line is bright on
    its centre and fades over 2.3 rows (on 28x28), between columns floor(c0) and ceil(c1).
    ``dashes`` (w,): a factor per column (dotted lines). Only the pixels near each line are
    computed (its columns, a few rows around its centre), then scattered into the frame."""
    c0, r0, c1, r1 = (e.unsqueeze(-1).unsqueeze(-1) for e in ends)  # (n, S, 1, 1)
    n = c0.shape[0]
    width = 2.3 * h / REFERENCE_SIDE
    reach = math.ceil(width)  # rows either side of the centre that can be lit
    first, stop = torch.floor(c0).clamp(0, w), torch.ceil(c1).clamp(0, w)
    window = max(1, int((stop - first).max())) if n else 1  # columns of the longest line
    cc = first + torch.arange(window, dtype=torch.float32).view(1, 1, 1, -1)  # (n, S, 1, window)
    run = c1 - c0
    slope = (r1 - r0) / torch.where(run == 0, torch.ones_like(run), run)
    centre = slope * (cc - c0) + r0  # (n, S, 1, window)
    offsets = torch.arange(-reach, reach + 2, dtype=torch.float32).view(1, 1, -1, 1)
    rows = torch.floor(centre) + offsets  # (n, S, K, window): distinct rows in each column
    dist = (rows - centre).abs().clamp(max=width * (1 - 1e-9))
    line = (torch.log(1 - dist / width) + 1).clamp(0, 1)
    column = cc.clamp(max=w - 1).long()
    if dashes is not None:
        line = line * dashes[column]
    keep = (cc < stop) & (run != 0) & (rows >= 0) & (rows < h)
    line = torch.where(keep, line, torch.zeros_like(line))
    index = rows.clamp(0, h - 1).long() * w + column  # (n, S, K, window) into the frame
    frame = torch.zeros(n, h * w)
    frame.scatter_add_(1, index.reshape(n, -1), line.reshape(n, -1))
    return frame.view(n, 1, h, w)


def dotted_line(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """``c`` dotted lines across the frame, each from a random row on the left edge to one on
    the right, every other 2-pixel dash off (MNIST-C draws one)."""
    n, _, h, w = x.shape
    count = int(c)  # type: ignore[call-overload]
    dash = max(1, round(2 * w / REFERENCE_SIDE))
    on = ((torch.arange(w) // dash) % 2 == 1).float()
    r0, r1 = torch.randint(0, h - 1, (2, n, count), generator=g).float().unbind(0)
    zero, right = torch.zeros(n, count), torch.full((n, count), float(w - 1))
    return (x + _lines(h, w, (zero, r0, right, r1), on)).clamp(0, 1)


def _zigzag_points(r0: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """MNIST-C's zigzag corners on 28x28 (columns 2 to 25, rows r0 to r1, teeth 2 long and 2
    high): (n, points, 2) as (column, row)."""
    a = b = 2.0
    c0, c1 = 2.0, 25.0
    theta = torch.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / torch.cos(theta)
    teeth = int(((d.min() - a) // (2 * a)).item()) + 1  # 6 for every row pair MNIST-C draws
    local = [torch.zeros(len(r0), 2)]
    for i in range(teeth):
        local.append(torch.tensor([(2 * i + 1) * a, (-1) ** i * b]).expand(len(r0), 2))
    last_row = (-1) ** (teeth - 1) * b
    full = (2 * a) * torch.floor(d / (2 * a))
    tail = torch.stack([d, last_row / (2 * (d - full))], 1)  # MNIST-C's last point, as it is
    points = torch.stack([*local, tail], 1)
    cos, sin = torch.cos(theta).view(-1, 1), torch.sin(theta).view(-1, 1)
    cols = cos * points[..., 0] - sin * points[..., 1] + c0
    rows = sin * points[..., 0] + cos * points[..., 1] + r0.view(-1, 1)
    return torch.stack([cols, rows], -1)


def zigzag(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """``c`` zigzag lines across the frame (MNIST-C draws one), each from column 2 to 25 of
    28 at a random row, sloping up to 5 rows."""
    n, _, h, w = x.shape
    count = int(c)  # type: ignore[call-overload]
    r0 = torch.randint(0, 27, (n * count,), generator=g).float()
    r1 = r0 + torch.randint(-5, 5, (n * count,), generator=g).float()
    points = _zigzag_points(r0, r1)  # (n * count, P, 2)
    cols = (points[..., 0] * w / REFERENCE_SIDE).view(n, -1)  # (n, count * P)
    rows = (points[..., 1] * h / REFERENCE_SIDE).view(n, -1)
    p = points.shape[1]
    starts = torch.tensor([k for k in range(count * p) if k % p != p - 1])  # a segment each
    ends = (cols[:, starts], rows[:, starts], cols[:, starts + 1], rows[:, starts + 1])
    return (x + _lines(h, w, ends)).clamp(0, 1)


# ----- edges -------------------------------------------------------------------------------------
CANNY_LOW, CANNY_HIGH = 0.1, 0.2  # scikit-image's thresholds on the gradient of [0, 1] images


def canny_edges(x: torch.Tensor, c: object, g: torch.Generator) -> torch.Tensor:
    """The image replaced by its Canny edges (scikit-image's ``feature.canny`` as MNIST-C
    calls it, sigma ``c``): Gaussian smoothing (zeros beyond the frame, renormalized),
    Sobel gradients, non-maximum suppression across the edge (four directions), hysteresis
    between thresholds 0.1 and 0.2 (8-connected), the frame's border pixels off."""
    sigma = float(c) * _scale(x)  # type: ignore[arg-type]
    kernel = _gaussian_kernel(sigma)
    ones = torch.ones_like(x[:1, :1])
    smooth = _separable(x, kernel, "constant") / _separable(ones, kernel, "constant")
    padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")
    # the Sobel kernels by shifted slices (conv2d with one channel is ~10x slower on the CPU)
    across = padded[..., :, 2:] - padded[..., :, :-2]
    gx = across[..., :-2, :] + 2 * across[..., 1:-1, :] + across[..., 2:, :]
    down = padded[..., 2:, :] - padded[..., :-2, :]
    gy = down[..., :-2] + 2 * down[..., 1:-1] + down[..., 2:]
    magnitude = torch.hypot(gx, gy)
    # the gradient's direction in four sectors: 0 across columns, 1 and 3 diagonal, 2 rows
    sector = torch.round(torch.atan2(gy, gx) / (math.pi / 4)).long() % 4
    m = F.pad(magnitude, (1, 1, 1, 1))
    h, w = x.shape[-2:]

    def at(dr: int, dc: int) -> torch.Tensor:
        return m[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

    neighbours = [
        (at(0, 1), at(0, -1)),
        (at(1, 1), at(-1, -1)),
        (at(1, 0), at(-1, 0)),
        (at(1, -1), at(-1, 1)),
    ]  # fmt: skip  (one pair per sector reads as a table)
    peak = torch.zeros_like(magnitude, dtype=torch.bool)
    for k, (ahead, behind) in enumerate(neighbours):
        peak |= (sector == k) & (magnitude >= ahead) & (magnitude >= behind)
    border = torch.zeros(h, w, dtype=torch.bool)
    border[1:-1, 1:-1] = True
    peak &= border
    weak = peak & (magnitude >= CANNY_LOW)
    strong = peak & (magnitude >= CANNY_HIGH)
    while True:  # hysteresis: grow the strong edges along the weak ones
        grown = weak & _dilate(strong)
        if torch.equal(grown, strong):
            break
        strong = grown
    return strong.float()


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` (N, C, H, W, bool) grown by one pixel in its 8 directions: a 3x3 maximum by
    shifted slices (``max_pool2d`` on the CPU is ~20x slower on small images)."""
    grown = mask.clone()
    grown[..., 1:, :] |= mask[..., :-1, :]
    grown[..., :-1, :] |= mask[..., 1:, :]
    rows = grown.clone()
    grown[..., 1:] |= rows[..., :-1]
    grown[..., :-1] |= rows[..., 1:]
    return grown


# ----- the registry ------------------------------------------------------------------------------
# One row per corruption, in MNIST-C's order; the values per severity 1..5 are MNIST-C's own
# lists, or (stripe, dotted line, zigzag, Canny) its one setting at severity 1 and beyond.
# Aligned by hand: a row per corruption reads as the table in docs/robustness.md.
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("shot_noise", "photons per unit intensity", (60, 25, 12, 5, 3), True, shot_noise),
        Corruption("impulse_noise", "fraction of values set to 0 or 1", (0.03, 0.06, 0.09, 0.17, 0.27), True, impulse_noise),
        Corruption("glass_blur", "(sigma, max shift px, iterations)", ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)), True, glass_blur),
        Corruption("motion_blur", "(radius px, sigma px)", ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)), True, motion_blur),
        Corruption("shear", "shear angle, radians (sign random)", (0.2, 0.4, 0.6, 0.8, 1.0), True, shear),
        Corruption("scale", "size after scaling", (0.9, 0.8, 0.7, 0.6, 0.5), False, scale),
        Corruption("rotate", "angle, radians (sign random)", (0.2, 0.4, 0.6, 0.8, 1.0), True, rotate),
        Corruption("brightness", "HSV value added", (0.1, 0.2, 0.3, 0.4, 0.5), False, brightness),
        Corruption("translate", "shift per axis, px (signs random)", (1, 2, 3, 4, 5), True, translate),
        Corruption("stripe", "inverted band each side, of the width", (7 / 28, 8 / 28, 9 / 28, 10 / 28, 11 / 28), False, stripe),
        Corruption("fog", "(weight, roughness decay)", ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)), True, fog),
        Corruption("spatter", "(mean, sd, sigma1, threshold, sigma2)", ((0.65, 0.3, 4, 0.69, 0.6), (0.65, 0.3, 3, 0.68, 0.6), (0.65, 0.3, 2, 0.68, 0.5), (0.65, 0.3, 1, 0.65, 1.5), (0.67, 0.4, 1, 0.65, 1.5)), True, spatter),
        Corruption("dotted_line", "dotted lines", (1, 2, 3, 4, 5), True, dotted_line),
        Corruption("zigzag", "zigzag lines", (1, 2, 3, 4, 5), True, zigzag),
        Corruption("canny_edges", "smoothing sigma before the edges", (1.0, 1.5, 2.0, 2.5, 3.0), False, canny_edges,
                   grey_only="the Canny edges of a colour image are a grey line drawing, another task than its colours"),
    )
}  # fmt: skip
NAMES = tuple(CORRUPTIONS)


def check_name(name: str) -> Corruption:
    """The corruption called ``name``, or one ConfigError listing them."""
    if name not in CORRUPTIONS:
        raise ConfigError(
            f"corruption must be one of {', '.join(NAMES)}; got {name!r}{did_you_mean(name, NAMES)}"
        )
    return CORRUPTIONS[name]


def skip_reason(name: str, channels: int) -> str | None:
    """Why corruption ``name`` does not apply to images of ``channels`` channels; None if it
    does."""
    reason = check_name(name).grey_only
    return (
        f"{name} skipped on {channels}-channel images: {reason}"
        if channels != 1 and reason
        else None
    )


def seed_of(name: str, severity: int, seed: int) -> int:
    """The generator's seed for one corruption and severity: each pair draws its own numbers."""
    return (seed * 1_000_003 + zlib.crc32(name.encode()) * 31 + severity) % (2**63)


def corrupt(images: torch.Tensor, name: str, severity: int, *, seed: int = 0) -> torch.Tensor:
    """``images`` (uint8 ``(N, C, H, W)``, on the CPU) corrupted by ``name`` at ``severity``
    (0, the identity, to 5): uint8 of the same shape, rounded. Deterministic given ``seed``."""
    corruption = check_name(name)
    if severity not in (0, *SEVERITIES):
        raise ConfigError(f"severity must be one of 0 to 5; got {severity!r}")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ConfigError(
            f"corrupt takes uint8 images shaped (N, C, H, W); got {images.dtype} {tuple(images.shape)}"
        )
    reason = skip_reason(name, images.shape[1])
    if reason is not None:
        raise ConfigError(reason)
    if severity == 0 or len(images) == 0:
        return images.clone()
    g = torch.Generator().manual_seed(seed_of(name, severity, seed))
    x = images.float() / 255
    out = corruption.apply(x, corruption.values[severity - 1], g)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8)
