"""The images' geometry inside the model: ink alignment and test-time views against SciPy
and NumPy references, and the one turn/zoom/shift grid (the test-time turns' and the
training warp's) against torch's affine_grid and pixel geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from mlplab.model.views import (
    TTA_ROTATION,
    affine_grid,
    affine_theta,
    align_ink,
    tta_views,
    view_count,
)


def _align_reference(image: np.ndarray, upright: bool, center: bool) -> np.ndarray:
    """Deskewing and centring in float64 with SciPy: second moments of the ink (the image
    less its darkest pixel), then an affine read (bilinear; past the edges, the darkest
    pixel's value, interpolated towards as grid_sample's zero padding is): output (r, c)
    reads row r' = r (+ cy - ch when centring), column c' (+ cx - cw) + shear * (r' - cy)."""
    ink = image - image.min()
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    shear = (ink * (rows - cy) * (cols - cx)).sum() / (ink * (rows - cy) ** 2).sum()
    shear = shear if upright else 0.0
    ch, cw = (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    dy, dx = (cy - ch, cx - cw) if center else (0.0, 0.0)
    matrix = np.array([[1.0, 0.0], [shear, 1.0]])
    offset = np.array([dy, dx + shear * (dy - cy)])
    return ndimage.affine_transform(
        image, matrix, offset=offset, order=1, mode="grid-constant", cval=image.min()
    )


ALIGNMENTS = [(True, False), (True, True), (False, True)]  # (upright, center)


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_align_ink_matches_scipys_affine_read(upright: bool, center: bool) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(6, 1, 20, 16)
    for i in range(6):  # slanted strokes of different slopes and places
        slope, x0, y0 = (i - 2.5) * 0.3, 5 + i, 3 + (i % 3)
        for y in range(y0, y0 + 12):
            images[i, 0, y, int(x0 + slope * (y - y0)) % 16] = 200.0
    images += torch.rand(images.shape, generator=g) * 30  # a noisy background
    got = align_ink(images * 0.02 - 0.4, upright=upright, center=center)  # any affine scale
    for i in range(6):
        want = _align_reference(images[i, 0].double().numpy(), upright, center) * 0.02 - 0.4
        torch.testing.assert_close(got[i, 0].double(), torch.from_numpy(want), atol=2e-4, rtol=0)


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
@pytest.mark.parametrize("shape", [(3, 2, 20, 16), (2, 3, 9, 13), (4, 1, 28, 28)])
def test_aligning_the_kept_pixels_only_is_the_whole_alignment_cropped(
    upright: bool, center: bool, shape: tuple[int, ...]
) -> None:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(shape, generator=g) ** 4 * 3 - 0.5  # sparse bright ink, any scale
    whole = align_ink(images, upright=upright, center=center)
    for crop in range(1, (min(shape[2:]) - 1) // 2 + 1):
        kept = align_ink(images, upright=upright, center=center, crop=crop)
        want = whole[..., crop : shape[2] - crop, crop : shape[3] - crop]
        torch.testing.assert_close(kept, want, rtol=0, atol=1e-6, msg=f"crop {crop}")


def _moments(ink: torch.Tensor) -> tuple[float, float, float]:
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    ink = ink.double()
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    covariance = (ink * (rows - cy) * (cols - cx)).sum() / mass
    variance = (ink * (rows - cy) ** 2).sum() / mass
    return float(cy), float(cx), float(covariance / variance)


@pytest.mark.parametrize("center", [False, True])
def test_deskewing_stands_a_slanted_bar_upright(center: bool) -> None:
    bar = torch.zeros(1, 1, 28, 28)
    for y in range(4, 24):
        bar[0, 0, y, 4 + y // 2] = 1.0  # leans right: two rows down, one column right
    cy, cx, slant = _moments(bar[0, 0])
    assert abs(slant - 0.5) < 0.05
    out = align_ink(bar, center=center)[0, 0]
    new_cy, new_cx, new_slant = _moments(out)
    assert abs(new_slant) < 0.01  # upright now
    want = (13.5, 13.5) if center else (cy, cx)  # centred, or left where it was
    assert abs(new_cy - want[0]) < 0.05 and abs(new_cx - want[1]) < 0.05
    assert abs(out.sum() - bar.sum()) < 0.5  # no ink lost to the border


def test_centring_undoes_a_shift_and_deskewing_alone_keeps_it() -> None:
    digit = torch.zeros(2, 1, 28, 28)
    digit[0, 0, 6:20, 10:13] = 1.0
    digit[0, 0, 6:9, 10:18] = 0.7
    digit[1, 0] = torch.roll(digit[0, 0], shifts=(3, -4), dims=(0, 1))  # stays inside
    for upright in (False, True):
        out = align_ink(digit, upright=upright, center=True)
        torch.testing.assert_close(out[1], out[0], atol=1e-5, rtol=0)
    out = align_ink(digit)
    torch.testing.assert_close(
        out[1], torch.roll(out[0], shifts=(3, -4), dims=(1, 2)), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_align_ink_leaves_blank_images_alone_and_ignores_autocast(
    upright: bool, center: bool
) -> None:
    flat = torch.full((2, 3, 5, 7), -0.42)
    assert torch.equal(align_ink(flat, upright=upright, center=center), flat)
    cancelling = torch.rand(1, 1, 6, 8).repeat(1, 2, 1, 1) * torch.tensor([1.0, -1.0]).view(
        1, 2, 1, 1
    )
    kept = align_ink(cancelling, upright=upright, center=center)  # no ink summed over channels
    torch.testing.assert_close(kept, cancelling, atol=1e-5, rtol=0)
    x = torch.rand(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = align_ink(x, upright=upright, center=center)
    assert in_bf16.dtype == torch.float32
    assert torch.equal(in_bf16, align_ink(x, upright=upright, center=center))


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_ink_at_the_border_is_not_smeared_into_the_image(upright: bool, center: bool) -> None:
    corner = torch.zeros(1, 1, 28, 28)
    corner[0, 0, 27, 27] = 1.0  # one pixel of ink in the corner
    seven = torch.zeros(1, 1, 28, 28)
    seven[0, 0, 4, 0:12] = 1.0  # a top bar that touches the left border
    for y in range(5, 24):
        seven[0, 0, y, 11 - (y - 5) // 3] = 1.0
    for image in (corner, seven):
        out = align_ink(image - 0.3, upright=upright, center=center) + 0.3  # background -0.3
        assert out.min() > -1e-5
        assert out.sum() <= image.sum() + 1e-3  # ink may leave the frame; none is made
    moved = align_ink(corner, upright=upright, center=center)
    if center:  # brought in whole, to the centre
        assert abs(moved.sum() - 1) < 1e-4 and moved[0, 0, 13:15, 13:15].sum() > 0.99


# ----- test-time views (model.tta) ---------------------------------------------------------
def _turn_reference(image: np.ndarray, degrees: float) -> np.ndarray:
    """A turn about the image's centre with SciPy, bilinear, background past the edges:
    output (r, c) reads (r', c') = centre + R (r - r0, c - c0) in pixels (non-square too)."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    centre = np.array([(image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2])
    matrix = np.array([[cos, sin], [-sin, cos]])
    return ndimage.affine_transform(
        image,
        matrix,
        offset=centre - matrix @ centre,
        order=1,
        mode="grid-constant",
        cval=image.min(),
    )


def _shift_reference(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.full_like(image, image.min())
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_tta_views_match_numpy_shifts_scipys_turns_and_a_mirror() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 20, 16, generator=g) * 2 - 0.5  # any scale; darkest -0.5 or so
    images[:, :, 5:15, 6:9] += 3.0  # a bright stroke
    views = tta_views(images, ["flip", "shift", "rotate"])
    assert views.shape == (3 * 8, 1, 20, 16)  # the images, 1 mirror, 4 shifts, 2 turns
    blocks = views.unflatten(0, (8, 3))
    for i in range(3):
        image = images[i, 0].double().numpy()
        want = [image, image[:, ::-1]]
        want += [_shift_reference(image, dy, dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        want += [_turn_reference(image, a) for a in (TTA_ROTATION, -TTA_ROTATION)]
        for k, expected in enumerate(want):
            torch.testing.assert_close(
                blocks[k, i, 0].double(), torch.from_numpy(expected.copy()), atol=1e-5, rtol=0
            )


def test_tta_views_fill_each_channel_with_its_own_background() -> None:
    gray = torch.rand(2, 1, 9, 7)
    color = torch.cat([gray, gray + 5.0], 1)  # normalization moved the channels apart
    views = tta_views(color, ["shift", "rotate"])
    torch.testing.assert_close(views[:, 1], views[:, 0] + 5.0)


def test_view_count_is_the_image_and_its_views() -> None:
    images = torch.rand(3, 1, 6, 5)
    for views in ([], ["flip"], ["shift"], ["rotate", "flip"], ["shift", "rotate", "flip"]):
        assert len(tta_views(images, views)) == view_count(views) * 3


# ----- the turn/zoom/shift grid (test-time turns, training warp) --------------------------
def test_the_grid_is_torchs_affine_grid() -> None:
    theta = torch.randn(5, 2, 3)
    ours = affine_grid(theta, 7, 9).view(5, 7, 9, 2)
    reference = torch.nn.functional.affine_grid(theta, [5, 1, 7, 9], align_corners=False)
    torch.testing.assert_close(ours, reference)


def test_the_grid_turns_zooms_and_shifts_in_pixel_geometry_on_wide_images() -> None:
    h, w = 9, 17  # centre (4, 8)
    image = torch.zeros(1, 1, h, w)
    image[0, 0, 4, 11] = 1.0  # 3 pixels right of the centre
    one, zero = torch.ones(1), torch.zeros(1)

    def moved(angle: float, zoom: float, dx: float, dy: float) -> torch.Tensor:
        theta = affine_theta(
            torch.tensor([math.radians(angle)]), zoom * one, dx + zero, dy + zero, h, w
        )
        grid = affine_grid(theta, h, w).view(1, h, w, 2)
        return torch.nn.functional.grid_sample(image, grid, align_corners=False)[0, 0]

    # a positive angle turns counter-clockwise on screen (rows grow downwards)
    for angle, (row, col) in ((90, (1, 8)), (-90, (7, 8)), (180, (4, 5))):
        out = moved(angle, 1, 0, 0)
        assert out[row, col] > 0.99 and out.sum() < 1.01, (angle, out.nonzero().tolist())
    assert moved(0, 2, 0, 0)[4, 14] > 0.99  # zoom 2: 3 pixels out become 6
    assert moved(0, 1, 2, -1)[3, 13] > 0.99  # 2 pixels right, 1 up


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")  # deprecated upstream, still exported
def test_the_grid_follows_the_input_in_a_trace() -> None:
    """The pixel centres are made from theta, not cached per device: a trace holds no device
    constant, and a turn of double images stays double."""
    traced = torch.jit.trace(lambda t: affine_grid(t, 5, 4), torch.rand(2, 2, 3))
    assert "Device = prim::Constant" not in str(traced.inlined_graph)
    theta = torch.rand(3, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(traced(theta.float()), affine_grid(theta.float(), 5, 4))
    assert affine_grid(theta, 5, 4).dtype == torch.float64
