"""Images: loading any source (paths, bytes, arrays) with its errors, and each step of the
MNIST-style preprocessing to the training distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from shipping import center_of_mass
from tiff import tiled_tiff

from mlplab import ConfigError, DataError
from mlplab.inference.images import ImageTooLarge, image_header, is_blank, load_image, preprocess

MNIST = (1, 28, 28)


def paper(
    size: tuple[int, int] = (400, 300), shade: int = 230
) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", size, shade)
    return image, ImageDraw.Draw(image)


def extent(x: np.ndarray) -> tuple[float, float]:
    """(height, width) of the ink in pixels: partly covered edge rows and columns count in part."""
    x = x.astype(np.float64) / 255
    return float(x.max(1).sum()), float(x.max(0).sum())


# ----- preprocessing, step by step ------------------------------------------------------
def test_light_background_is_inverted_dark_is_not() -> None:
    dark_on_light, draw = paper()
    draw.rectangle((250, 40, 290, 200), fill=20)  # a dark bar, far off-center
    x = preprocess(dark_on_light, MNIST)
    assert x.shape == MNIST and x.dtype == np.uint8
    assert x[0, 0, 0] == 0 and x.max() == 255  # black background, white ink, as MNIST
    light_on_dark = Image.eval(dark_on_light, lambda v: 255 - v)
    np.testing.assert_array_equal(preprocess(light_on_dark, MNIST), x)  # already MNIST-like


def test_cropped_to_the_ink_and_fit_in_20x20_keeping_aspect() -> None:
    tall, draw = paper((600, 500))
    draw.rectangle((400, 50, 459, 349), fill=0)  # 60 wide x 300 tall -> 4 x 20
    h, w = extent(preprocess(tall, MNIST)[0])
    assert h == pytest.approx(20, abs=0.3) and w == pytest.approx(4, abs=0.3)

    wide, draw = paper((600, 500))
    draw.rectangle((10, 400, 309, 459), fill=0)  # 300 wide x 60 tall -> 20 x 4
    h, w = extent(preprocess(wide, MNIST)[0])
    assert w == pytest.approx(20, abs=0.3) and h == pytest.approx(4, abs=0.3)

    small, draw = paper((600, 500))
    draw.rectangle((500, 20, 509, 29), fill=0)  # 10 x 10 -> scaled up to 20 x 20
    assert extent(preprocess(small, MNIST)[0]) == pytest.approx((20, 20), abs=0.3)


def test_center_of_mass_lands_on_the_frame_center() -> None:
    # An L shape: its center of mass is far from its bounding box's center.
    image, draw = paper((500, 400))
    draw.rectangle((300, 30, 330, 330), fill=0)
    draw.rectangle((300, 300, 460, 330), fill=0)
    x = preprocess(image, MNIST)[0]
    row, col = center_of_mass(x)
    # MNIST's own convention: (14, 14) in pixel-index units (measured mean: 13.99, 14.00)
    assert abs(row - 14) < 0.1 and abs(col - 14) < 0.1
    box_cols = np.flatnonzero(x.any(0))
    assert box_cols.mean() > 15  # the box sits off-center: the mass, left in the L, decides


def test_other_frame_sizes_scale_the_box() -> None:
    image, draw = paper()
    draw.rectangle((100, 50, 200, 250), fill=0)
    x = preprocess(image, (1, 56, 42))[0]  # box = 20/28 of each side: 40 x 30; this one 40 x 20
    assert x.shape == (56, 42) and extent(x) == pytest.approx((40, 20), abs=0.3)
    row, col = center_of_mass(x)
    assert abs(row - 28) < 0.1 and abs(col - 21) < 0.1


def test_thin_strokes_are_thickened_to_mnist_width() -> None:
    thin, draw = paper((1600, 1200))
    draw.line((800, 100, 800, 1100), fill=0, width=3)  # a 3-px pen line, 1000 px long
    draw.line((600, 100, 800, 100), fill=0, width=3)
    x = preprocess(thin, MNIST)[0]
    width = (x[10:22].astype(np.float64) / 255).sum(1)  # ink per row of the upright, px
    assert x.max() == 255 and np.all((width >= 2) & (width <= 3))  # MNIST's strokes: ~2.5 px


def test_blank_and_transparent_images() -> None:
    blank, _ = paper()
    assert not preprocess(blank, MNIST).any()  # nothing drawn: an empty frame

    on_white, draw = paper((300, 300), 255)
    draw.ellipse((60, 40, 200, 260), outline=0, width=14)
    transparent = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).ellipse((60, 40, 200, 260), outline=(0, 0, 0, 255), width=14)
    np.testing.assert_array_equal(preprocess(transparent, MNIST), preprocess(on_white, MNIST))


def test_paper_under_uneven_light_and_gradients_are_blank_not_ink() -> None:
    """Blank paper photographed under a lamp (a vignette, a slope of light, grain) and a smooth
    gradient hold no ink: an empty frame, not their light stretched into a filled square."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:600, 0:800] / 600
    light = 225 - 60 * ((x - 0.9) ** 2 + (y - 0.3) ** 2) - 25 * x  # a lamp off to the right
    photo = np.clip(light + rng.normal(0, 3, light.shape), 0, 255).astype(np.uint8)
    assert np.ptp(light) > 50  # far more than the 16 levels a flat page may vary by
    assert is_blank(photo.astype(np.float64))
    assert not preprocess(Image.fromarray(photo), MNIST).any()
    ramp = np.tile(np.linspace(30, 220, 500), (300, 1)).astype(np.uint8)
    assert not preprocess(Image.fromarray(ramp), MNIST).any()

    # the same paper with a pencil line on it is not blank
    page = Image.fromarray(photo)
    ImageDraw.Draw(page).line((300, 150, 330, 450), fill=90, width=4)
    assert not is_blank(np.asarray(page, dtype=np.float64))
    assert preprocess(page, MNIST).max() > 200


def test_images_already_in_the_training_format_pass_through() -> None:
    frame = np.zeros((28, 28), np.uint8)
    frame[5:20, 3:9] = 200  # not centered: "auto" must not touch it
    image = Image.fromarray(frame)
    np.testing.assert_array_equal(preprocess(image, MNIST)[0], frame)
    assert not np.array_equal(preprocess(image, MNIST, "mnist")[0], frame)
    light = Image.fromarray(255 - frame)  # right size but dark-on-light: preprocessed
    assert preprocess(light, MNIST)[0, 0, 0] == 0
    with pytest.raises(
        DataError, match=r"^preprocessing 'none' needs images of exactly 28x28 pixels; got 400x300"
    ):
        preprocess(paper()[0], MNIST, "none")
    with pytest.raises(ConfigError, match=r"got 'mnsit' \(did you mean 'mnist'\?\)"):
        preprocess(image, MNIST, "mnsit")


def test_color_models_get_a_resized_color_image() -> None:
    photo = Image.new("RGB", (64, 48), (200, 30, 10))
    x = preprocess(photo, (3, 16, 16))
    assert x.shape == (3, 16, 16)
    assert (x[0] == 200).all() and (x[1] == 30).all() and (x[2] == 10).all()  # no inversion
    assert preprocess(photo.convert("L"), (3, 16, 16)).shape == (3, 16, 16)


def test_sources_and_their_errors(tmp_path: Path) -> None:
    frame = np.zeros((28, 28), np.uint8)
    frame[10:18, 12:16] = 255
    for source in (
        frame,
        frame[None],
        frame[:, :, None],
        torch.from_numpy(frame[None]),
        frame / 255,
    ):
        np.testing.assert_array_equal(np.asarray(load_image(source)), frame)
    Image.fromarray(frame).save(tmp_path / "a.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "a.png")), frame)
    np.testing.assert_array_equal(np.asarray(load_image((tmp_path / "a.png").read_bytes())), frame)

    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(
        DataError, match=r"notes\.png: cannot read as an image .*; pass a PNG, JPEG"
    ):
        load_image(tmp_path / "notes.png")
    truncated = (tmp_path / "a.png").read_bytes()[:60]
    with pytest.raises(DataError, match=r"^cut\.png: cannot read as an image"):
        load_image(truncated, "cut.png")
    with pytest.raises(DataError, match=r"missing\.png: no such image file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match=r"pixels in \[0, 1\]; got values in \[2, 2\]"):
        load_image(np.full((4, 4), 2.0))
    with pytest.raises(DataError, match=r"got shape \(2, 3, 4, 5\)"):
        load_image(np.zeros((2, 3, 4, 5), np.uint8))


def test_large_images_are_reduced_before_preprocessing() -> None:
    """A 16-megapixel photo is box-reduced to under 2 first: the same digit, a tenth the memory."""
    small, draw = paper((800, 600))
    draw.rectangle((300, 100, 340, 500), fill=10)
    big = small.resize((4000, 3000), Image.Resampling.NEAREST)  # the same drawing, 5x larger
    a, b = preprocess(small, MNIST), preprocess(big, MNIST)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 40  # edges differ by resampling
    assert extent(b[0]) == pytest.approx(extent(a[0]), abs=0.5)


def test_tiled_tiffs_are_read_and_their_tiles_held_to_the_pixel_limit() -> None:
    """libtiff decodes a tile at a time into a buffer of the tile's size: a 146-byte file
    declaring a 28x28 image in 32768x65520 tiles once made it allocate 2 GB. Such a tile
    is refused from the header; a real tiled TIFF reads as its pixels."""
    pixels = (np.arange(28 * 28) % 251).astype(np.uint8).reshape(28, 28)
    real = tiled_tiff(pixels, (32, 32))
    np.testing.assert_array_equal(np.asarray(load_image(real, "tiled.tif")), pixels)
    assert image_header(real, "tiled.tif") == (28, 28, 32 * 32)  # one byte a pixel
    bomb = tiled_tiff(pixels, (32768, 65520), bomb=True)
    assert len(bomb) == 146
    message = (
        "bomb.tif: a TIFF in tiles of 32768x65520 = 2,146,959,360 pixels each, more than the "
        "40,000,000 accepted (--max-megapixels sets the limit); save it untiled or in smaller "
        "tiles"
    )
    for read in (load_image, image_header):
        with pytest.raises(ImageTooLarge) as refused:
            read(bomb, "bomb.tif")
        assert str(refused.value) == message
    with pytest.raises(
        ImageTooLarge, match=r"tiles of 64x64 = 4,096 pixels each, more than the 1,000 accepted"
    ):
        load_image(tiled_tiff(pixels, (64, 64)), "t.tif", max_pixels=1_000)


@pytest.mark.parametrize(
    ("pixels", "kind", "low"),
    [
        (np.full((8, 8), -7, np.int32), "32-bit integer", "-7"),
        (np.full((8, 8), -0.5, np.float32), "floating-point", "-0.5"),
    ],
)
def test_negative_pixels_are_refused(
    tmp_path: Path, pixels: np.ndarray, kind: str, low: str
) -> None:
    """They were answered ("no ink") while the data readers refused them."""
    Image.fromarray(pixels).save(tmp_path / "neg.tif")
    with pytest.raises(DataError) as refused:
        load_image(tmp_path / "neg.tif")
    assert str(refused.value) == (
        f"{tmp_path / 'neg.tif'}: a {kind} image with pixel {low}; pixels must be 0 or more "
        "(0-1 or 0-255 floats, 0-65535 integers)"
    )
