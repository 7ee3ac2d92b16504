"""Batched augmentation of device images, checked against PIL as the reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from mlplab.training.augment import Augmentation, augment, erase, rotation_angles, warp


def digit_like(n: int = 40, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Blobs of random ink in the middle of the frame, like handwritten digits."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    m = size // 5
    images[:, :, m:-m, m:-m] = torch.randint(
        0, 256, (n, 1, size - 2 * m, size - 2 * m), generator=g, dtype=torch.uint8
    )
    return images


def pil_reference(image: np.ndarray, angle: float, dy: int, dx: int, pad: int) -> np.ndarray:
    """The tutorial's order on PIL: RandomRotation (nearest, fill 0), then
    RandomCrop(size, padding=pad) whose window starts at (pad + dy, pad + dx)."""
    rotated = Image.fromarray(image, "L").rotate(
        angle, Image.NEAREST, expand=False, center=None, fillcolor=0
    )
    padded = ImageOps.expand(rotated, border=pad, fill=0)
    top, left = dy + pad, dx + pad
    return np.array(padded.crop((left, top, left + image.shape[1], top + image.shape[0])))


def test_zero_rotation_and_shift_is_identity() -> None:
    images = digit_like()
    assert augment(images, 0.0, 0) is images


@pytest.mark.parametrize("rotation,shift", [(5.0, 2), (30.0, 0), (0.0, 3), (180.0, 4)])
def test_matches_pil_pixel_for_pixel(rotation: float, shift: int) -> None:
    """Replay the generator to learn each image's draws, then redo each image with PIL."""
    images = digit_like(seed=1)
    n = len(images)
    out = augment(images, rotation, shift, torch.Generator().manual_seed(7))
    angles = rotation_angles(rotation)
    g = torch.Generator().manual_seed(7)
    which = torch.randint(0, len(angles), (n, 1), generator=g).flatten()
    dy = torch.randint(-shift, shift + 1, (n, 1), generator=g).flatten()
    dx = torch.randint(-shift, shift + 1, (n, 1), generator=g).flatten()
    for i in range(n):
        ref = pil_reference(
            images[i, 0].numpy(), float(angles[which[i]]), int(dy[i]), int(dx[i]), shift
        )
        # identical but where a source coordinate sits within float rounding of a half pixel
        assert (out[i, 0].numpy() == ref).mean() > 0.995


def test_color_and_non_square_images_match_pil_channel_by_channel() -> None:
    """Each channel of an image moves as one; frames wider than tall index their own maps."""
    g = torch.Generator().manual_seed(3)
    images = torch.zeros(12, 3, 20, 30, dtype=torch.uint8)
    images[:, :, 4:-4, 5:-5] = torch.randint(
        0, 256, (12, 3, 12, 20), generator=g, dtype=torch.uint8
    )
    rotation, shift = 12.0, 2
    out = augment(images, rotation, shift, torch.Generator().manual_seed(7))
    angles = rotation_angles(rotation)
    g = torch.Generator().manual_seed(7)
    which = torch.randint(0, len(angles), (12,), generator=g)
    dy = torch.randint(-shift, shift + 1, (12,), generator=g)
    dx = torch.randint(-shift, shift + 1, (12,), generator=g)
    for i in range(12):
        for channel in range(3):
            ref = pil_reference(
                images[i, channel].numpy(), float(angles[which[i]]), int(dy[i]), int(dx[i]), shift
            )
            assert (out[i, channel].numpy() == ref).mean() > 0.995, (i, channel)


def test_angles_cover_the_range_evenly() -> None:
    angles = rotation_angles(5.0)
    assert angles[0] == -5.0 and angles[-1] == 5.0 and len(angles) == 501
    assert torch.allclose(angles.diff(), torch.full((500,), 0.02, dtype=torch.float64))
    assert len(rotation_angles(180.0)) == 1025  # capped: 0.35 degrees apart


def test_shift_moves_content() -> None:
    image = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    image[0, 0, 2, 2] = 9
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        out = augment(image, 0.0, 1, g)
        g = torch.Generator().manual_seed(seed)
        torch.rand(1, 1, 1, generator=g)
        dy, dx = (
            int(torch.randint(-1, 2, (1,), generator=g)),
            int(torch.randint(-1, 2, (1,), generator=g)),
        )
        # output pixel p reads input p + d: the dot appears at 2 - d
        assert out[0, 0, 2 - dy, 2 - dx] == 9 and out.sum() == 9


def test_augment_shapes_dtype_device_and_seed() -> None:
    images = torch.randint(0, 256, (10, 3, 12, 9), dtype=torch.uint8)
    a = augment(images, 10.0, 2, torch.Generator().manual_seed(0))
    b = augment(images, 10.0, 2, torch.Generator().manual_seed(0))
    c = augment(images, 10.0, 2, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and a.dtype == torch.uint8 and a.device == images.device
    assert torch.equal(a, b) and not torch.equal(a, c)
    # channels move together: one gather for all of them
    same = augment(
        images[:, :1].expand(10, 3, 12, 9).contiguous(), 10.0, 2, torch.Generator().manual_seed(0)
    )
    assert torch.equal(same[:, 0], same[:, 2])


def test_warp_with_nothing_drawn_is_the_identity() -> None:
    images = digit_like(16, 12)
    # every draw is zero-width: the bilinear resampling lands on the pixel centres
    same = warp(images, Augmentation(scale=1e-9, elastic=0.0), torch.Generator().manual_seed(0))
    assert torch.equal(same, images)


def test_warp_shifts_zooms_and_distorts_like_its_definition() -> None:
    image = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    image[0, 0, 4, 4] = 200  # one bright pixel at the centre
    g = torch.Generator().manual_seed(3)
    # a shift of up to a pixel spreads the dot over its neighbours, keeping its brightness
    shifted = warp(image.repeat(64, 1, 1, 1), Augmentation(shift=1, scale=1e-9), g)
    totals = shifted.flatten(1).float().sum(1)
    assert (totals - 200).abs().max() <= 4 and (shifted[:, 0, 4, 4] < 200).any()
    assert shifted[:, 0, 2:7, 2:7].flatten(1).float().sum(1).min() >= 196  # never further
    zoomed = warp(image.repeat(64, 1, 1, 1), Augmentation(scale=0.5), g)
    assert zoomed.shape == (64, 1, 9, 9) and zoomed.dtype == torch.uint8
    assert (zoomed[:, 0, 4, 4] == 200).all()  # the centre stays put
    # magnified, the dot covers more pixels (bilinear): its total grows
    assert zoomed.flatten(1).float().sum(1).max() > 300
    digits = digit_like(64, 28)
    bent = warp(
        digits, Augmentation(elastic=34.0, elastic_sigma=4.0), torch.Generator().manual_seed(0)
    )
    moved = (bent.float() - digits.float()).abs().mean()
    assert 1.0 < moved < 60.0  # distorted, not destroyed
    again = warp(
        digits, Augmentation(elastic=34.0, elastic_sigma=4.0), torch.Generator().manual_seed(0)
    )
    assert torch.equal(bent, again)  # seeded


def test_warp_rotation_turns_about_the_centre() -> None:
    bar = torch.zeros(1, 1, 15, 15, dtype=torch.uint8)
    bar[0, 0, 7, 2:13] = 255  # a horizontal bar through the centre
    g = torch.Generator().manual_seed(0)
    turned = warp(bar.repeat(32, 1, 1, 1), Augmentation(rotation=90.0, scale=1e-9), g)
    assert (turned[:, 0, 7, 7] > 200).all()  # the centre stays on the bar
    # some draws turn the bar by far more than a pixel at its ends
    assert (turned[:, 0, 7, 2] < 100).any()


def test_hflip_mirrors_about_half_the_images_in_both_modes() -> None:
    images = digit_like(200, 8)
    mirrored = images.flip(-1)
    for out in (
        augment(images, 0.0, 0, torch.Generator().manual_seed(0), hflip=True),
        warp(images, Augmentation(hflip=True, scale=1e-9), torch.Generator().manual_seed(0)),
    ):
        same = (out == images).flatten(1).all(1)
        flipped = (out == mirrored).flatten(1).all(1)
        assert (same | flipped).all()  # nothing else changes
        assert 60 < int((flipped & ~same).sum()) < 140  # about half, each drawn on its own


def erased_boxes(out: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """Each image's blacked-out rectangle (top, left, height, width) on a white input."""
    boxes = []
    for image in out[:, 0]:
        rows, cols = (image == 0).nonzero(as_tuple=True)
        if not len(rows):
            boxes.append(None)
            continue
        top, left = int(rows.min()), int(cols.min())
        height, width = int(rows.max()) - top + 1, int(cols.max()) - left + 1
        assert len(rows) == height * width  # one solid rectangle, nothing else
        boxes.append((top, left, height, width))
    return boxes


def test_erase_blacks_out_one_rectangle_like_torchvisions_random_erasing() -> None:
    white = torch.full((2000, 3, 28, 28), 255, dtype=torch.uint8)
    out = erase(white, 1.0, torch.Generator().manual_seed(0))
    assert (out == out[:, :1]).all()  # every channel alike
    boxes = [b for b in erased_boxes(out) if b is not None]
    assert len(boxes) > 1990  # a rectangle that fits turns up in 10 draws almost always
    areas = torch.tensor([h * w / 784 for _, _, h, w in boxes])
    ratios = torch.tensor([h / w for _, _, h, w in boxes])
    # area uniform in [0.02, 0.33] and aspect log-uniform in [0.3, 3.3], up to rounding
    assert areas.min() > 0.01 and areas.max() < 0.37 and 0.16 < areas.mean() < 0.19
    assert ratios.min() > 0.2 and ratios.max() < 5.0 and abs(ratios.log().mean()) < 0.1
    assert all(h < 28 and w < 28 for _, _, h, w in boxes)
    # uniform positions: rectangles touch every border
    assert {t for t, _, _, _ in boxes} >= {0} and any(t + h == 28 for t, _, h, _ in boxes)
    assert any(left == 0 for _, left, _, _ in boxes) and any(le + w == 28 for _, le, _, w in boxes)


def test_erase_touches_the_chosen_share_only_seeded_and_in_the_augmentation() -> None:
    white = torch.full((400, 1, 16, 16), 255, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(erase(white, 0.0, g), white)
    half = erase(white, 0.5, torch.Generator().manual_seed(1))
    assert 160 < sum(b is not None for b in erased_boxes(half)) < 240
    assert torch.equal(half, erase(white, 0.5, torch.Generator().manual_seed(1)))
    for aug in (Augmentation(erase=1.0), Augmentation(erase=1.0, scale=1e-9)):  # both modes
        assert aug and all(b is not None for b in erased_boxes(aug(white, g)))


def test_every_switch_turns_the_augmentation_on() -> None:
    fields = {f.name for f in dataclasses.fields(Augmentation)}
    assert set(Augmentation.SWITCHES) == fields - {"elastic_sigma"}
    assert not Augmentation()
    for name in Augmentation.SWITCHES:
        assert Augmentation(**{name: 1})
