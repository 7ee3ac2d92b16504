"""Folders of images: class names, splits, modes, sizes, and undecodable files."""

from __future__ import annotations

import os
import struct
import threading
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiff import tiled_tiff

from mlplab.data.folders import read_folders
from mlplab.errors import FormatError


def save(path: Path, pixels: np.ndarray, mode: str | None = None, **kwargs: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels.astype(np.uint8))
    (image.convert(mode) if mode else image).save(path, **kwargs)


def gray(value: int, size: tuple[int, int] = (4, 5)) -> np.ndarray:
    return np.full(size, value, np.uint8)


def test_class_folders_sorted_and_exact(tmp_path: Path) -> None:
    ramp = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    save(tmp_path / "zebra" / "b.png", ramp)
    save(tmp_path / "zebra" / "a.bmp", gray(7))
    save(tmp_path / "ant" / "sub" / "x.png", gray(9))  # subfolders belong to the class
    (tmp_path / "ant" / ".DS_Store").write_bytes(b"junk")
    save(tmp_path / "ant" / ".hidden.png", gray(1))
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / ".git").mkdir()
    raw = read_folders(tmp_path)
    assert raw.classes == ("ant", "zebra") and raw.test is None and raw.format == "folders"
    assert raw.image_shape == (1, 4, 5)
    np.testing.assert_array_equal(raw.train[1], [0, 1, 1])
    np.testing.assert_array_equal(raw.train[0][:, 0, 0, 0], [9, 7, 0])  # a.bmp before b.png
    np.testing.assert_array_equal(raw.train[0][2, 0], ramp)
    assert raw.notes["channels"] == "gray (every image is grayscale)"


def test_train_and_test_folders(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("test", 2)):
        for name in ("cat", "dog"):
            for i in range(n):
                save(tmp_path / split / name / f"{i}.png", gray(i))
    raw = read_folders(tmp_path)
    assert (len(raw.train[1]), len(raw.test[1])) == (6, 4)
    np.testing.assert_array_equal(raw.test[1], [0, 0, 1, 1])
    assert raw.notes["layout"] == "train/ and test/ folders"


def test_any_color_image_makes_rgb_and_modes_convert(tmp_path: Path) -> None:
    save(tmp_path / "a" / "gray.png", gray(100))
    save(tmp_path / "a" / "red.png", np.stack([gray(255), gray(0), gray(0)], axis=-1))
    rgba = np.stack([gray(200), gray(100), gray(50), gray(0)], axis=-1)
    rgba[0, 0, 3] = 255
    save(tmp_path / "b" / "rgba.png", rgba)  # transparent -> black, opaque pixel kept
    save(tmp_path / "b" / "palette.gif", gray(30), mode="P")
    raw = read_folders(tmp_path)
    assert (
        raw.image_shape == (3, 4, 5) and raw.notes["channels"] == "RGB (some images are in color)"
    )
    images = raw.train[0]
    np.testing.assert_array_equal(images[0, :, 0, 0], [100, 100, 100])  # gray -> 3 equal planes
    np.testing.assert_array_equal(images[1, :, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(images[2, :, 1, 1], [30, 30, 30])  # palette.gif sorts first
    np.testing.assert_array_equal(images[3, :, 0, 0], [200, 100, 50])
    np.testing.assert_array_equal(images[3, :, 1, 1], [0, 0, 0])


def test_gray_palette_and_16_bit_count_as_gray(tmp_path: Path) -> None:
    save(tmp_path / "a" / "p.gif", gray(30), mode="P")
    Image.fromarray(np.full((4, 5), 257 * 40, np.uint16)).save(tmp_path / "a" / "deep.png")
    save(tmp_path / "z" / "other.png", gray(0))  # classification needs two classes
    raw = read_folders(tmp_path)
    assert raw.image_shape == (1, 4, 5)
    np.testing.assert_array_equal(raw.train[0][:, 0, 0, 0], [40, 30, 0])


def test_sizes_conform_to_the_most_common_or_the_asked_shape(tmp_path: Path) -> None:
    for i in range(2):
        save(tmp_path / "a" / f"{i}.png", gray(50))
    save(tmp_path / "a" / "big.png", gray(50, (8, 10)))
    save(tmp_path / "z" / "other.png", gray(0))
    raw = read_folders(tmp_path)
    assert raw.image_shape == (1, 4, 5)
    np.testing.assert_array_equal(
        raw.train[0][2], np.full((1, 4, 5), 50)
    )  # resized, flat stays flat
    assert raw.notes["resized"] == "1 image of other sizes resized to 4x5 (bilinear)"
    forced = read_folders(tmp_path, image_shape="3,2,2")
    assert (
        forced.image_shape == (3, 2, 2) and forced.notes["channels"] == "RGB (as image_shape asks)"
    )


def test_undecodable_image_names_the_file(tmp_path: Path) -> None:
    save(tmp_path / "a" / "good.png", gray(1))
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    save(tmp_path / "z" / "other.png", gray(0))
    with pytest.raises(
        FormatError,
        match=r"a/broken.png: cannot decode the image \(.*\); delete or replace the file$",
    ):
        read_folders(tmp_path)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, r"no class folders; expected <folder>/<class name>/<image files>"),
        ({"a/readme.txt": None}, r"no images in class folders; expected"),
        (
            {"x.png": gray(1), "a/y.png": gray(1)},
            r"1 image directly in the folder \(e.g. x.png\); put each class's images in a subfolder",
        ),
        (
            {"train/a/x.png": gray(1), "test/b/y.png": gray(1)},
            r"test: class folder 'b' has no counterpart in .*train; training classes: a$",
        ),
    ],
)
def test_bad_layouts(tmp_path: Path, layout: dict[str, np.ndarray | None], message: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for name, pixels in layout.items():
        if pixels is None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("x")
        else:
            save(root / name, pixels)
    with pytest.raises(FormatError, match=message):
        read_folders(root)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nothing: not a folder; expected <folder>/<class name>"):
        read_folders(tmp_path / "nothing")


def test_image_shape_can_make_color_gray(tmp_path: Path) -> None:
    save(tmp_path / "a" / "red.png", np.stack([gray(255), gray(0), gray(0)], axis=-1))
    save(tmp_path / "z" / "other.png", gray(0))
    raw = read_folders(tmp_path, image_shape=(1, 4, 5))
    assert raw.notes["channels"] == "gray (as image_shape asks)"
    assert raw.train[0][0, 0, 0, 0] == 76  # Pillow's L = 0.299 R + 0.587 G + 0.114 B


# --- Hostile and careless folders (issue 25) -----------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header declares width x height gray pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(bytes(4096), 9)  # far fewer bytes than declared: never inflated
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def two_classes(root: Path) -> None:
    save(root / "a" / "0.png", gray(10))
    save(root / "b" / "0.png", gray(20))


@pytest.mark.parametrize(("side", "pixels"), [(40_000, "1,600,000,000"), (10_000, "100,000,000")])
def test_decompression_bombs_name_the_file_and_the_pixel_limit(
    tmp_path: Path, side: int, pixels: str
) -> None:
    """40000x40000 passes Pillow's error threshold, 10000x10000 only its warning one: both are
    refused from the header, before a pixel is decoded, and no warning escapes."""
    two_classes(tmp_path)
    (tmp_path / "b" / "bomb.png").write_bytes(png_declaring(side, side))
    assert (tmp_path / "b" / "bomb.png").stat().st_size < 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would be raised here
        with pytest.raises(
            FormatError,
            match=rf"b/bomb.png: has {pixels} pixels, more than the 89,478,485 pixels mlplab decodes in one image \(a decompression bomb\? Pillow's limit, PIL.Image.MAX_IMAGE_PIXELS\); shrink the image or remove it$",
        ):
            read_folders(tmp_path)


def test_tiled_tiffs_are_read_and_huge_tiles_refused_from_the_header(tmp_path: Path) -> None:
    """A 146-byte TIFF declaring a 28x28 image in 32768x65520 tiles (libtiff would allocate
    2 GB for one tile) is refused before anything is decoded; real tiles read as pixels."""
    two_classes(tmp_path)
    pixels = np.full((4, 5), 7, np.uint8)
    (tmp_path / "a" / "tiled.tif").write_bytes(tiled_tiff(pixels, (16, 16)))
    images, _ = read_folders(tmp_path).train  # a/0.png, a/tiled.tif, b/0.png
    np.testing.assert_array_equal(images[:, 0, 0, 0], [10, 7, 20])
    np.testing.assert_array_equal(images[1, 0], pixels)
    (tmp_path / "b" / "bomb.tif").write_bytes(tiled_tiff(pixels, (32768, 65520), bomb=True))
    with pytest.raises(
        FormatError,
        match=r"b/bomb.tif: a TIFF in tiles of 2,146,959,360 pixels each, more than the "
        r"89,478,485 pixels mlplab decodes at once \(a decompression bomb\?\); save it untiled "
        r"or remove it$",
    ):
        read_folders(tmp_path)


def test_fifos_devices_and_broken_links_among_images_are_skipped_never_opened(
    tmp_path: Path,
) -> None:
    two_classes(tmp_path)
    os.mkfifo(tmp_path / "a" / "pipe.png")
    (tmp_path / "a" / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "b" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "b" / "elsewhere.png").symlink_to(
        tmp_path / "a" / "0.png"
    )  # a link to a file: read
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(read_folders(tmp_path)), daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "read_folders blocked on a FIFO or device"
    raw = result[0]
    np.testing.assert_array_equal(raw.train[1], [0, 1, 1])  # type: ignore[attr-defined]
    assert raw.notes["skipped"].startswith(  # type: ignore[attr-defined]
        "3 files named like images but not regular files (FIFOs, devices, broken links), e.g. "
    )


def test_one_class_is_refused_before_any_image_is_decoded(tmp_path: Path) -> None:
    save(tmp_path / "cats" / "0.png", gray(1))
    (tmp_path / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(
        FormatError,
        match=r"every training label is class 0 \('cats'\), the only class found; classification needs at least two classes",
    ):
        read_folders(tmp_path)


def test_truncated_images_name_the_file(tmp_path: Path) -> None:
    two_classes(tmp_path)
    rng = np.random.default_rng(0)
    save(tmp_path / "b" / "cut.png", rng.integers(0, 256, (64, 64), dtype=np.uint8))
    data = (tmp_path / "b" / "cut.png").read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        FormatError,
        match=r"b/cut.png: cannot decode the image \(image file is truncated.*\); delete or replace the file$",
    ):
        read_folders(tmp_path)


def test_tiffs_16_bit_and_float_are_read_and_nan_is_one_line(tmp_path: Path) -> None:
    two_classes(tmp_path)
    Image.fromarray(np.full((4, 5), 257 * 200, np.uint16)).save(tmp_path / "a" / "deep.tif")
    Image.fromarray(np.full((4, 5), 0.5, np.float32)).save(tmp_path / "b" / "float.tiff")
    raw = read_folders(tmp_path)
    np.testing.assert_array_equal(raw.train[0][:, 0, 0, 0], [10, 200, 20, 128])  # 0-1 floats
    nan = np.full((4, 5), 0.5, np.float32)
    nan[2, 3] = np.nan
    Image.fromarray(nan).save(tmp_path / "b" / "float.tiff")
    with pytest.raises(
        FormatError,
        match=r"b/float.tiff: row 3, column 4: pixel nan is not a number; pixels must be 0-255 whole numbers or 0-1 floats$",
    ):
        read_folders(tmp_path)


def test_only_the_five_image_formats_are_decoded(tmp_path: Path) -> None:
    """A .png that is really another format (PPM here; EPS would run Ghostscript) is refused."""
    two_classes(tmp_path)
    Image.fromarray(gray(5)).save(tmp_path / "b" / "fake.png", format="PPM")
    with pytest.raises(
        FormatError,
        match=r"b/fake.png: cannot decode the image \(not a PNG, JPEG, BMP, GIF, TIFF image, or a damaged one\); delete or replace the file$",
    ):
        read_folders(tmp_path)


def test_the_stacked_dataset_is_bounded_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        save(tmp_path / name / "big.png", np.zeros((800, 800), np.uint8))
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "1")
    with pytest.raises(
        FormatError,
        match=r"^.*: 2 images of 1x800x800 would need 1.2 MiB of memory, more than the 1.0 MiB mlplab allows one array",
    ):
        read_folders(tmp_path)


def test_large_photos_are_resized_one_at_a_time(tmp_path: Path) -> None:
    """Twelve 1500x1500 color photos among small images: never all held at full size (81 MB)."""
    for i in range(13):
        save(tmp_path / "a" / f"{i}.png", gray(i, (32, 32)))
    for i in range(12):
        save(tmp_path / "b" / f"{i}.png", np.full((1500, 1500, 3), i, np.uint8))
    tracemalloc.start()
    try:
        raw = read_folders(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raw.image_shape == (3, 32, 32) and raw.notes["resized"].startswith("12 images")
    assert peak < 30 << 20, f"peak {peak / 2**20:.0f} MiB"


def test_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    save(tmp_path / "ca\x1b[31mt" / "0.png", gray(1))
    save(tmp_path / "dog\n" / "0.png", gray(2))
    raw = read_folders(tmp_path)
    assert raw.classes == ("ca\\x1b[31mt", "dog\\n")
    (tmp_path / "dog\n" / "bad\x1b[2J.png").write_bytes(b"junk")
    with pytest.raises(FormatError) as caught:
        read_folders(tmp_path)
    assert "dog\\n/bad\\x1b[2J.png: cannot decode the image" in str(caught.value)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)
