"""The IDX file format of MNIST and Fashion-MNIST: read, validate, write.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order,
big-endian. Files may be gzip-compressed (detected by content, not by name).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .raw import RawSplits, as_images, as_labels, class_names

__all__ = ["read_idx", "read_idx_dataset", "read_idx_pair", "write_idx"]

# type code -> numpy dtype (big-endian, as the format stores them)
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise FormatError(
                f"{path}: truncated gzip stream (the file ends early); delete it and download it again"
            ) from None
        except (OSError, zlib.error) as exc:
            raise FormatError(
                f"{path}: corrupt gzip data ({exc}); delete it and download it again"
            ) from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian array, checking its structure."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise FormatError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _DTYPES or ndim == 0:
        raise FormatError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex()} "
            "(expected 0x0000TTDD: type 08/09/0b/0c/0d/0e, DD dimensions >= 1)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise FormatError(
            f"{path}: truncated: dimensions {'x'.join(map(str, shape))} need {expected} bytes, file has {len(data)}"
        )
    if len(data) > expected:
        raise FormatError(
            f"{path}: {len(data) - expected} unexpected bytes after the data of dimensions {'x'.join(map(str, shape))}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx_pair(
    images_path: str | Path, labels_path: str | Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files; check the counts agree and labels are in range."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2 or images.dtype != np.uint8:
        raise FormatError(
            f"{images_path}: expected uint8 images of N x H x W, got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1:
        raise FormatError(
            f"{labels_path}: expected a 1-dimensional label vector, got shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise FormatError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {Path(images_path).name}; "
            "the two files do not belong together"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise FormatError(
            f"{labels_path}: label {bad} out of range: labels must be in 0..{num_classes - 1}"
        )
    return images, labels.astype(np.int64)


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write an array as IDX (gzip when the name ends in .gz); the inverse of :func:`read_idx`."""
    path = Path(path)
    array = np.asarray(array)
    code = _CODES[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_DTYPES[code], copy=False).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def read_idx_dataset(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
) -> RawSplits:
    """Read IDX image/label pairs as a dataset: a folder in MNIST's layout, or one images file.

    In a folder, ``<prefix>-images-idx3-ubyte`` pairs with ``<prefix>-labels-idx1-ubyte``
    (gzip or not); the ``t10k``/``test`` prefix is the test split, the other one the
    training split. A single images file is one training split. Class names are
    "0".."K-1", or ``classes``.
    """
    path = Path(path)
    pairs = _idx_pairs(path)
    notes = {"files": ", ".join(p.name for pair in pairs for p in pair)}
    splits, checked = [], []
    for images_path, labels_path in pairs:
        images = as_images(read_idx(images_path), str(images_path), notes=notes)
        labels = as_labels(read_idx(labels_path), str(labels_path))
        if len(images) != len(labels):
            raise FormatError(
                f"{labels_path}: {len(labels)} labels for {len(images)} images in "
                f"{images_path.name}; the two files do not belong together"
            )
        splits.append((images, labels))
        checked.append((labels, str(labels_path), None))
    names = class_names(checked, classes)
    test = splits[1] if len(splits) > 1 else None
    return RawSplits(splits[0], test, names, str(path), "idx", notes)


def _idx_pairs(path: Path) -> list[tuple[Path, Path]]:
    """[(train images, train labels)] + [(test images, test labels)] when there is a test pair."""
    if path.is_file():
        labels = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if labels == path:
            raise FormatError(
                f"{path}: not an images file named like *-images-idx3-ubyte; pass the images "
                "file or the folder holding both"
            )
        found = _with_gz(labels)
        if found is None:
            name = labels.name.removesuffix(".gz")
            raise FormatError(f"{path}: its labels file {name}(.gz) is not beside it")
        return [(path, found)]
    if not path.is_dir():
        raise FormatError(f"{path}: no such file or folder")
    images = sorted(
        p for p in path.iterdir() if "images-idx3" in p.name and not p.name.startswith(".")
    )
    train, test = [], []
    for image_file in images:
        labels = _with_gz(
            image_file.with_name(image_file.name.replace("images-idx3", "labels-idx1"))
        )
        if labels is not None:
            is_test = image_file.name.startswith(("t10k", "test"))
            (test if is_test else train).append((image_file, labels))
    if len(train) != 1 or len(test) > 1:
        found = ", ".join(p.name for p in images) or "none"
        raise FormatError(
            f"{path}: expected one training pair (train-images-idx3-ubyte + "
            "train-labels-idx1-ubyte, gzip or not) and at most one test pair (t10k-...); "
            f"images files found: {found}"
        )
    return train + test


def _with_gz(path: Path) -> Path | None:
    base = path.with_name(path.name.removesuffix(".gz"))
    for candidate in (base, base.with_name(base.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None
