"""HDF5 files: every key layout and array layout, clear errors, and the real usps.h5."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from mlplab.data.filesources import USPS_SOURCE
from mlplab.data.hdf5 import read_hdf5, read_usps
from mlplab.errors import DataError, FormatError

REAL_DATA_DIR = os.environ.get("MLPLAB_DATA_DIR")


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    return path


def usps_like(path: Path, n_train: int = 6, n_test: int = 4) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(n_train, 256)) / 255  # 0-1 floats, as in usps.h5
    arrays = {
        "train/data": data.astype(np.float32),
        "train/target": np.arange(n_train, dtype=np.int64) % 10,
        "test/data": rng.random((n_test, 256), dtype=np.float32),
        "test/target": np.arange(n_test, dtype=np.int64),
    }
    return write_h5(path, arrays), data


def test_usps_layout_round_trips(tmp_path: Path) -> None:
    path, data = usps_like(tmp_path / "usps.h5")
    raw = read_hdf5(path)
    assert raw.format == "hdf5" and raw.image_shape == (1, 16, 16)
    np.testing.assert_array_equal(raw.train[0].reshape(6, 256), np.rint(data * 255))
    np.testing.assert_array_equal(raw.train[1], [0, 1, 2, 3, 4, 5])
    assert len(raw.test[1]) == 4
    assert raw.notes["keys"] == "train/data, train/target, test/data, test/target"
    assert raw.notes["pixel scale"] == "0-1 (detected: largest value 1)"


def test_keras_keys_and_channels_last_uint8(tmp_path: Path) -> None:
    images = np.arange(3 * 4 * 4 * 3).reshape(3, 4, 4, 3).astype(np.uint8)
    path = write_h5(
        tmp_path / "f.h5",
        {"x_train": images, "y_train": np.array([0, 1, 1]), "x_test": images[:1], "y_test": [1]},
    )
    raw = read_hdf5(path)
    assert raw.image_shape == (3, 4, 4)
    np.testing.assert_array_equal(raw.train[0], images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw.test[1], [1])


def test_configurable_keys(tmp_path: Path) -> None:
    path = write_h5(
        tmp_path / "f.h5", {"photos": np.zeros((2, 5, 5), np.uint8), "kinds": np.array([1, 0])}
    )
    raw = read_hdf5(path, images_key="photos", labels_key="kinds", classes=["no", "yes"])
    assert raw.test is None and raw.classes == ("no", "yes") and raw.image_shape == (1, 5, 5)
    with pytest.raises(FormatError, match=r"f.h5: no key 'images'; keys: kinds, photos$"):
        read_hdf5(path, labels_key="kinds")


def test_missing_keys_list_what_exists(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "f.h5", {"group/a": np.zeros(3), "b": np.zeros(3)})
    with pytest.raises(
        FormatError,
        match=r"f.h5: no images and labels found under the usual keys \(train/data \+ train/target, x_train \+ y_train, images \+ labels, x \+ y\); keys: b, group/a; name them with images_key",
    ):
        read_hdf5(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"images": np.zeros((3, 8, 8), np.uint8), "labels": np.array([0, 1])},
            r"3 images in 'images' but 2 labels in 'labels'; they must pair one to one$",
        ),
        (
            {"images": np.full((2, 4, 4), 2.0), "labels": np.array([0, 1])},
            None,  # whole numbers above 1: read as 0-255, fine
        ),
        (
            {"images": np.full((2, 4, 4), 0.5), "labels": np.array([0, 1.5])},
            r"f.h5: labels: index \[1\]: label 1.5 is not a whole number",
        ),
        (
            {"images": np.zeros((2, 7)), "labels": np.array([0, 1])},
            r"f.h5: images: 7 values per image do not make a square image",
        ),
        (
            {
                "x_train": np.zeros((2, 4, 4), np.uint8),
                "y_train": [0, 1],
                "x_test": np.zeros((2, 5, 5), np.uint8),
                "y_test": [0, 1],
            },
            r"f.h5: x_test: images of shape \(5, 5\) are 1x5x5, not the image_shape 1x4x4",
        ),
    ],
)
def test_bad_contents(tmp_path: Path, arrays: dict[str, np.ndarray], message: str | None) -> None:
    path = write_h5(tmp_path / "f.h5", arrays)
    if message is None:
        assert read_hdf5(path).train[0].max() == 2
        return
    with pytest.raises(FormatError, match=message):
        read_hdf5(path)


def test_not_hdf5(tmp_path: Path) -> None:
    (tmp_path / "f.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(FormatError, match=r"f.h5: not a readable HDF5 file \("):
        read_hdf5(tmp_path / "f.h5")
    with pytest.raises(FormatError, match=r"none.h5: no such file$"):
        read_hdf5(tmp_path / "none.h5")


def test_usps_reader_checks_the_shape(tmp_path: Path) -> None:
    path, _ = usps_like(tmp_path / "usps.h5")
    assert read_usps(path).classes == tuple("0123456789")
    other = write_h5(tmp_path / "o.h5", {"images": np.zeros((2, 4, 4), np.uint8), "labels": [0, 1]})
    with pytest.raises(
        FormatError, match=r"o.h5: images of 1x4x4 and no test split; usps.h5 holds 16x16"
    ):
        read_usps(other)


def test_usps_source_finds_the_file_in_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "mine" / "usps").mkdir(parents=True)
    usps_like(tmp_path / "mine" / "usps" / "usps.h5")
    data = USPS_SOURCE.load(tmp_path / "mine")
    assert (data.name, len(data.train), len(data.test)) == ("usps", 6, 4)
    with pytest.raises(
        DataError,
        match=r"dataset 'usps' not found \(looked in .*\); it is not downloaded automatically: put usps.h5",
    ):
        USPS_SOURCE.load(tmp_path / "elsewhere")


@pytest.fixture
def usps_file() -> Path:
    """The real usps.h5, or skip."""
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / "usps" / "usps.h5").is_file():
        pytest.skip("real USPS not available: set MLPLAB_DATA_DIR to a folder holding usps/usps.h5")
    return Path(REAL_DATA_DIR) / "usps" / "usps.h5"


def test_real_usps(usps_file: Path) -> None:
    raw = read_hdf5(usps_file)
    assert (len(raw.train[1]), len(raw.test[1])) == (7291, 2007)
    assert raw.image_shape == (1, 16, 16) and raw.classes == tuple("0123456789")
    counts = np.bincount(raw.train[1]).tolist()
    assert counts == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert abs(raw.train[0].mean() / 255 - 0.2545) < 5e-4  # the README's pixel mean
    data = USPS_SOURCE.load(usps_file.parent.parent)
    assert data.origin == str(usps_file)
