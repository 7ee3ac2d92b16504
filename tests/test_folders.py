"""Folders of images: class names, splits, modes, sizes, and undecodable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    raw = read_folders(tmp_path)
    assert raw.image_shape == (1, 4, 5)
    np.testing.assert_array_equal(raw.train[0][:, 0, 0, 0], [40, 30])


def test_sizes_conform_to_the_most_common_or_the_asked_shape(tmp_path: Path) -> None:
    for i in range(2):
        save(tmp_path / "a" / f"{i}.png", gray(50))
    save(tmp_path / "a" / "big.png", gray(50, (8, 10)))
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
    raw = read_folders(tmp_path, image_shape=(1, 4, 5))
    assert raw.notes["channels"] == "gray (as image_shape asks)"
    assert raw.train[0][0, 0, 0, 0] == 76  # Pillow's L = 0.299 R + 0.587 G + 0.114 B
