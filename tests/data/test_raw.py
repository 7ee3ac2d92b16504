"""The checks every reader shares: array layouts, pixel scales, labels, keys, test splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlplab.data.raw import (
    RawSplits,
    as_images,
    as_labels,
    class_names,
    find_layout,
    hold_out_test,
    parse_image_shape,
    to_uint8,
    with_test,
)
from mlplab.errors import ConfigError, DataError, FormatError

IMAGES = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(np.uint8)  # (N, C, H, W)


@pytest.mark.parametrize(
    ("array", "image_shape"),
    [
        (IMAGES, None),  # channel-first
        (IMAGES.transpose(0, 2, 3, 1), None),  # channels-last, detected
        (IMAGES.reshape(2, -1), (3, 4, 5)),  # flat with a shape
    ],
)
def test_layouts_round_trip(array: np.ndarray, image_shape: tuple[int, int, int] | None) -> None:
    np.testing.assert_array_equal(as_images(array, "f", image_shape=image_shape), IMAGES)


def test_gray_layouts() -> None:
    gray = np.arange(2 * 16 * 16).reshape(2, 16, 16) % 256
    for array in (gray, gray[:, None], gray[..., None], gray.reshape(2, 256)):
        out = as_images(array.astype(np.uint8), "f")
        assert out.shape == (2, 1, 16, 16)
        np.testing.assert_array_equal(out[:, 0], gray)


def test_ambiguous_channels_follow_image_shape() -> None:
    both = np.zeros((2, 3, 5, 3), np.uint8)  # (N, 3, 5, 3): C first or last?
    assert as_images(both, "f").shape == (2, 3, 5, 3)  # channel-first by default
    assert as_images(both, "f", image_shape=(3, 3, 5)).shape == (2, 3, 3, 5)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (2, 5, 5, 5),
            r"f: an array of shape \(2, 5, 5, 5\) does not hold images; accepted: \(N, D\) flat",
        ),
        ((2,), r"f: an array of shape \(2,\) does not hold images"),
        ((2, 10), r"f: 10 values per image do not make a square image"),
    ],
)
def test_unusable_shapes(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        as_images(np.zeros(shape, np.uint8), "f")


def test_image_shape_disagreeing_with_the_array() -> None:
    with pytest.raises(
        FormatError, match=r"f: images of shape \(4, 5\) are 1x4x5, not the image_shape 1x5x4"
    ):
        as_images(np.zeros((2, 4, 5), np.uint8), "f", image_shape=(1, 5, 4))


def test_pixel_values() -> None:
    floats = np.array([[[0.0, 0.2], [0.5, 1.0]]], np.float32)
    notes: dict[str, str] = {}
    np.testing.assert_array_equal(as_images(floats, "f", notes=notes)[0, 0], [[0, 51], [128, 255]])
    assert notes == {"pixel scale": "0-1 (detected: largest value 1)"}
    whole = np.array([[[0.0, 20.0], [255.0, 3.0]]])
    np.testing.assert_array_equal(as_images(whole, "f")[0, 0], [[0, 20], [255, 3]])
    with pytest.raises(FormatError, match=r"f: index \[0, 1, 0\]: pixel nan is not a number"):
        as_images(np.array([[[0.0, 1], [np.nan, 1]]]), "f")
    with pytest.raises(FormatError, match=r"f: index \[0, 0, 1\]: pixel 300 is above 255"):
        as_images(np.array([[[0, 300], [1, 1]]]), "f")
    with pytest.raises(FormatError, match=r"f: pixels of type <U1 are not numbers"):
        as_images(np.array([[["a", "b"], ["c", "d"]]]), "f")


def test_pixel_scale_given_is_recorded_and_every_refusal_names_the_pixel() -> None:
    notes: dict[str, str] = {}
    pixels = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(to_uint8(pixels, "f", "255", notes=notes), [[0, 1]])
    assert notes == {"pixel scale": "0-255 (pixel_scale=255)"}
    np.testing.assert_array_equal(to_uint8(np.array([[0, 1]]), "f", "1"), [[0, 255]])
    for values, scale, message in [
        (pixels, "0-1", r"pixel_scale must be one of auto, 255, 1 .*; got '0-1'"),
        (np.zeros((0, 2)), "auto", r"f: no images \(shape \(0, 2\)\)"),
        (np.array([[1.0, np.inf]]), "auto", r"f: index \[0, 1\]: pixel inf is infinite"),
        (np.array([[3, -2]]), "auto", r"f: index \[0, 1\]: pixel -2 is negative"),
        (np.array([[2.5, 1.0]]), "auto", r"f: index \[0, 0\]: pixel 2.5 is not a whole number"),
        (np.array([[0.5, 2.0]]), "1", r"pixel 2 is above 1, but .* \(pixel_scale=1\)"),
    ]:
        with pytest.raises((ConfigError, FormatError), match=message):
            to_uint8(values, "f", scale)


def test_test_split_follows_the_training_scale() -> None:
    notes: dict[str, str] = {}
    as_images(np.full((1, 2, 2), 0.5), "train", notes=notes)
    with pytest.raises(
        FormatError,
        match=r"test: index \[0, 0, 0\]: pixel 200 is above 1, but pixels are read as 0-1 floats \(as detected in the training images\)",
    ):
        as_images(np.full((1, 2, 2), 200.0), "test", notes=notes)


def test_labels() -> None:
    np.testing.assert_array_equal(as_labels(np.array([[1.0], [2.0]]), "f"), [1, 2])
    assert as_labels(np.array([1, 2], np.uint8), "f").dtype == np.int64
    with pytest.raises(FormatError, match=r"f: index \[1\]: label 2.5 is not a whole number"):
        as_labels(np.array([1.0, 2.5]), "f")
    with pytest.raises(FormatError, match=r"f: index \[0\]: label -4 is negative"):
        as_labels(np.array([-4, 2]), "f")
    with pytest.raises(
        FormatError, match=r"got shape \(2, 3\); one-hot labels\? store the class index"
    ):
        as_labels(np.eye(2, 3), "f")
    with pytest.raises(FormatError, match=r"f: labels of type <U3 are not numbers"):
        as_labels(np.array(["cat", "dog"]), "f")


def test_class_names() -> None:
    labels = np.array([0, 4, 2, 1, 3])
    assert class_names([(labels, "f", None)]) == ("0", "1", "2", "3", "4")
    with pytest.raises(ConfigError, match="classes must be distinct names; repeated: a"):
        class_names([(labels, "f", None)], ["a", "a", "b", "c", "d"])


def test_find_layout() -> None:
    assert find_layout({"train/data", "train/target"}, "f") == (
        ("train/data", "train/target"),
        None,
    )
    keys = {"x_train", "y_train", "x_test", "y_test"}
    assert find_layout(keys, "f") == (("x_train", "y_train"), ("x_test", "y_test"))
    assert find_layout({"pics", "tags", "other"}, "f", "pics", "tags") == (("pics", "tags"), None)
    with pytest.raises(
        FormatError, match=r"f: has 'x_test' but no 'y_test'; a test split needs both"
    ):
        find_layout({"x_train", "y_train", "x_test"}, "f")
    with pytest.raises(
        FormatError, match=r"f: no key 'pictures' \(did you mean 'pics'\?\); keys: pics, tags$"
    ):
        find_layout({"pics", "tags"}, "f", "pictures", "tags")
    with pytest.raises(
        FormatError,
        match=r"f: no images and labels found under the usual keys .*; keys: a, b; name them with images_key and labels_key \(--images-key, --labels-key\)$",
    ):
        find_layout({"a", "b"}, "f")


def raw_splits(n: int = 10, test: bool = False, classes: int = 2) -> RawSplits:
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(4, axis=2)
    labels = np.arange(n, dtype=np.int64) % classes
    t = (images[:3], labels[:3]) if test else None
    return RawSplits((images, labels), t, tuple("ab"[:classes]), "o", "npz")


def test_hold_out_test_is_seeded_and_disjoint() -> None:
    raw = hold_out_test(raw_splits(), 0.3, seed=1)
    assert len(raw.test[1]) == 3 and len(raw.train[1]) == 7
    ids = sorted(raw.train[0][:, 0, 0, 0].tolist() + raw.test[0][:, 0, 0, 0].tolist())
    assert ids == list(range(10))
    again = hold_out_test(raw_splits(), 0.3, seed=1)
    np.testing.assert_array_equal(again.test[0], raw.test[0])
    assert raw.notes["test split"] == "3 of 10 samples held out, stratified (seed 1)"
    with pytest.raises(
        ConfigError,
        match=r"^test_size=0.05 holds out 0 of 10 samples; it must leave at least one sample in "
        r"each split: a fraction from 0.1 to 0.9, or a count from 1 to 9$",
    ):
        hold_out_test(raw_splits(), 0.05)
    with pytest.raises(  # two samples of two classes: the split would leave one class to train
        ConfigError,
        match=r"^test_size=0.5 holds out 1 of 2 samples and leaves the training split one class "
        r"\(\d\); the file is too small to split: pass a test file \(--test-dataset PATH\)$",
    ):
        hold_out_test(raw_splits(n=2), 0.5)
    with pytest.raises(DataError, match="o already has a test split"):
        hold_out_test(raw_splits(test=True))


def test_with_test_matches_classes_by_name() -> None:
    train = raw_splits()
    other = RawSplits(
        (np.zeros((2, 1, 4, 1), np.uint8), np.array([0, 1])), None, ("b", "z"), "t", "folders"
    )
    merged = with_test(train, other)
    assert merged.classes == ("a", "b", "z")
    np.testing.assert_array_equal(merged.test[1], [1, 2])
    floats = RawSplits(
        (np.zeros((2, 1, 4, 1), np.uint8), np.array([0, 1])),
        None, ("a", "b"), "t", "csv", {"pixel scale": "0-1 (detected: largest value 1)"},
    )  # fmt: skip
    scaled = dataclasses.replace(train, notes={"pixel scale": "0-255 (detected: x)"})
    with pytest.raises(FormatError) as error:  # all 0 or 1: either scale fits it
        with_test(scaled, floats)
    assert str(error.value) == (
        "t: every pixel is 0 or 1, read as 0-1 (detected: largest value 1), but o is 0-255 "
        "(detected: x): pass --pixel-scale 255 (pixel_scale='255') to read both as 0-255, or "
        "save t on the other's scale"
    )
    small = RawSplits(
        (np.zeros((2, 1, 2, 2), np.uint8), np.array([0, 1])), None, ("a", "b"), "t", "npz"
    )
    with pytest.raises(
        FormatError, match=r"t: test images are 1x2x2 but the training images of o are 1x4x1"
    ):
        with_test(train, small)


def test_raw_splits_checks_its_invariants() -> None:
    with pytest.raises(ValueError, match="images must be uint8"):
        RawSplits((np.zeros((1, 1, 2, 2)), np.zeros(1, np.int64)), None, ("a",), "o", "npz")
    with pytest.raises(FormatError, match="o: test images are 1x3x3 but training images are 1x2x2"):
        RawSplits(
            (np.zeros((1, 1, 2, 2), np.uint8), np.zeros(1, np.int64)),
            (np.zeros((1, 1, 3, 3), np.uint8), np.zeros(1, np.int64)),
            ("a",), "o", "npz",
        )  # fmt: skip
    raw = raw_splits(test=True)
    assert (
        repr(raw) == "RawSplits(format='npz', train=10, test=3, image=1x4x1, classes=2, origin='o')"
    )
    data = raw.to_dataset("mine")
    assert (len(data.train), len(data.test), data.classes) == (10, 3, ("a", "b"))
    with pytest.raises(
        DataError, match=r"o has no test split: pass a test file \(--test-dataset PATH\)"
    ):
        raw_splits().to_dataset()


@pytest.mark.parametrize("value", ["1,28,28", "1x28x28", (1, 28, 28), [1, 28, 28]])
def test_parse_image_shape(value: object) -> None:
    assert parse_image_shape(value) == (1, 28, 28)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["28,28", "2,28,28", "1,0,5", "a,b,c"])
def test_bad_image_shape(value: str) -> None:
    with pytest.raises(ConfigError, match=f"image_shape must be C,H,W .*; got '{value}'"):
        parse_image_shape(value)


def test_files_on_different_pixel_scales_are_each_read_on_their_own(tmp_path) -> None:
    """A 0-1 CSV for training and a 0-255 CSV for testing: a fraction cannot be 0-255 and a
    value above 1 cannot be 0-1, so each file's scale is its own (no single --pixel-scale
    fits both: the old advice)."""
    from mlplab.data import load_dataset
    from mlplab.data.formats import read_any

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 16))
    labels = np.arange(40) % 2
    floats = np.column_stack([labels, pixels / 255])
    np.savetxt(tmp_path / "train.csv", floats, fmt="%.6f", delimiter=",")
    np.savetxt(tmp_path / "test.csv", np.column_stack([labels, pixels]), fmt="%d", delimiter=",")
    data = load_dataset(str(tmp_path / "train.csv"), test_dataset=str(tmp_path / "test.csv"))
    np.testing.assert_array_equal(data.train.images.flatten(1).numpy(), pixels)
    np.testing.assert_array_equal(data.test.images.flatten(1).numpy(), pixels)
    raw = with_test(read_any(tmp_path / "train.csv"), read_any(tmp_path / "test.csv"))
    assert raw.notes["pixel scale"].startswith("0-1 (detected: largest value 1")
    assert raw.notes["test pixel scale"] == "0-255 (detected: largest value 255)"
    assert raw.notes["pixel scales"] == (
        f"the files differ: {tmp_path / 'train.csv'} 0-1, {tmp_path / 'test.csv'} 0-255; each "
        "is read on its own scale (a fraction cannot be 0-255, a value above 1 cannot be 0-1)"
    )
