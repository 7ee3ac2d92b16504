"""IDX reading: round trips, and one clear line for every kind of malformed file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mlplab.data.idx import read_idx, read_idx_pair, write_idx
from mlplab.errors import FormatError


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path: Path, name: str, dtype: type) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_hand_made_file(tmp_path: Path) -> None:
    # magic 0x00000801 (uint8, 1 dimension), length 3, then the bytes 7 8 9
    (tmp_path / "labels").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [7, 8, 9])


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    write_idx(tmp_path / "labels", np.array([1, 2], dtype=np.uint8), compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [1, 2])


def _write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def test_wrong_magic(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(
        FormatError, match=r"f: not an IDX file: magic number 0x89504e47 \(expected 0x0000TTDD"
    ):
        read_idx(path)


def test_truncated_data(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "f", bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(5)
    )
    with pytest.raises(
        FormatError, match=r"f: truncated: dimensions 2x2x2 need 24 bytes, file has 21$"
    ):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(
        FormatError, match="truncated header: 3 dimensions need 16 bytes, file has 8"
    ):
        read_idx(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]))
    with pytest.raises(FormatError, match="1 unexpected bytes after the data of dimensions 1"):
        read_idx(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(range(100)))
    path = tmp_path / "f.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        FormatError, match=r"f.gz: truncated gzip stream \(the file ends early\); delete it"
    ):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="nope: no such file$"):
        read_idx(tmp_path / "nope")


def test_pair_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path / "img", np.zeros((3, 2, 2), np.uint8))
    write_idx(tmp_path / "lab", np.zeros(2, np.uint8))
    with pytest.raises(
        FormatError, match="lab: 2 labels for 3 images in img; the two files do not belong together"
    ):
        read_idx_pair(tmp_path / "img", tmp_path / "lab", 10)


def test_pair_label_out_of_range(tmp_path: Path) -> None:
    write_idx(tmp_path / "img", np.zeros((2, 2, 2), np.uint8))
    write_idx(tmp_path / "lab", np.array([3, 10], np.uint8))
    with pytest.raises(FormatError, match=r"lab: label 10 out of range: labels must be in 0\.\.9"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab", 10)


def test_pair_swapped_files(tmp_path: Path) -> None:
    write_idx(tmp_path / "img", np.zeros((2, 2, 2), np.uint8))
    write_idx(tmp_path / "lab", np.array([3, 1], np.uint8))
    with pytest.raises(
        FormatError, match=r"lab: expected uint8 images of N x H x W, got uint8 of shape \(2,\)"
    ):
        read_idx_pair(tmp_path / "lab", tmp_path / "img", 10)


def test_real_mnist_headers(mnist_dir: Path) -> None:
    images, labels = read_idx_pair(
        mnist_dir / "mnist/t10k-images-idx3-ubyte.gz",
        mnist_dir / "mnist/t10k-labels-idx1-ubyte.gz",
        10,
    )
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
