"""NumPy .npz archives: Keras and x/y layouts, and never a pickle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlplab.data.npz import read_npz
from mlplab.errors import FormatError


def test_keras_layout_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (11, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    y_train = np.array([5, 0, 4, 1, 9, 2, 3, 6, 7, 8, 5], np.uint8)  # every digit
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train,
             x_test=x_test, y_test=np.array([7, 2], np.uint8))  # fmt: skip
    raw = read_npz(tmp_path / "mnist.npz")
    assert raw.format == "npz" and raw.image_shape == (1, 28, 28) and len(raw.classes) == 10
    np.testing.assert_array_equal(raw.train[0][:, 0], x_train)
    np.testing.assert_array_equal(raw.test[0][:, 0], x_test)
    np.testing.assert_array_equal(raw.train[1], y_train)
    assert raw.train[1].dtype == np.int64


def test_x_y_layout_with_floats_and_flat_rgb(tmp_path: Path) -> None:
    x = np.linspace(0, 1, 2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3 * 8 * 8)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.array([[1], [0]]))
    raw = read_npz(tmp_path / "d.npz")
    assert raw.image_shape == (3, 8, 8) and raw.test is None
    np.testing.assert_array_equal(raw.train[0].reshape(2, -1), np.rint(x * 255))
    np.testing.assert_array_equal(raw.train[1], [1, 0])


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "o.npz", x=np.array([np.zeros(3), np.zeros(4)], dtype=object), y=[0, 1])
    with pytest.raises(
        FormatError,
        match=r"o.npz: array 'x' holds Python objects \(dtype object\); mlplab reads only numeric arrays and never unpickles",
    ):
        read_npz(tmp_path / "o.npz")


def test_pickled_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "p.npz").write_bytes((tmp_path / "p.npy").read_bytes())
    with pytest.raises(FormatError, match=r"p.npz: a single .npy array, not an .npz archive"):
        read_npz(tmp_path / "p.npz")


def save_npy(path: Path) -> None:
    with path.open("wb") as stream:  # np.save(path) would append .npy to the name
        np.save(stream, np.zeros(3))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (save_npy, r"a single .npy array, not an .npz archive; save images"),
        (lambda p: p.write_bytes(b"PK\x03\x04 broken zip"), r"not a readable .npz archive \("),
        (
            lambda p: np.savez(p, images=np.zeros((2, 4, 4)), labels=np.array([0, -1])),
            r"labels: index \[1\]: label -1 is negative",
        ),
        (
            lambda p: np.savez(
                p, x_train=np.zeros((2, 4, 4)), y_train=[0, 1], x_test=np.zeros((1, 4, 4))
            ),
            r"has 'x_test' but no 'y_test'",
        ),
    ],
)
def test_bad_archives(tmp_path: Path, write: Callable[[Path], None], message: str) -> None:
    path = tmp_path / "f.npz"
    write(path)
    with pytest.raises(FormatError, match=r"f.npz: " + message):
        read_npz(path)
