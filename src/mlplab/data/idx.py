"""The IDX file format of MNIST and Fashion-MNIST: read, validate, write.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order,
big-endian. Files may be gzip-compressed (detected by content, not by name).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import FormatError
from ..files.limits import check_alloc, check_regular, open_regular, printable, read_into
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


_CHUNK = 1 << 20  # bytes read (decompressed) at a time: no read holds more than this twice


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian array, checking its structure.

    The header's dimensions are checked before anything is allocated: against the bytes
    the file holds (uncompressed) and against the memory budget (:mod:`mlplab.files.limits`);
    a gzip stream is read only as far as the header says, so a stream that inflates past
    it (a decompression bomb) is refused after at most one chunk more.
    """
    path = Path(path)
    name = printable(path)
    with open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        compressed = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        if not compressed:
            return _read_idx_stream(file, name, size)
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                return _read_idx_stream(stream, name, None)
        except EOFError:
            raise FormatError(
                f"{name}: truncated gzip stream (the file ends early); delete it and download "
                "it again"
            ) from None
        except (OSError, zlib.error) as exc:
            raise FormatError(
                f"{name}: corrupt gzip data ({printable(exc)}); delete it and download it again"
            ) from None


def _read_idx_stream(stream: IO[bytes], name: str, size: int | None) -> np.ndarray:
    """The array of an IDX stream; ``size`` is the file's size when it is not compressed."""
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise FormatError(f"{name}: too short to be an IDX file ({len(magic)} bytes)")
    code, ndim = magic[2], magic[3]
    if magic[:2] != b"\x00\x00" or code not in _DTYPES or ndim == 0:
        raise FormatError(
            f"{name}: not an IDX file: magic number 0x{magic.hex()} "
            "(expected 0x0000TTDD: type 08/09/0b/0c/0d/0e, DD dimensions >= 1)"
        )
    header = 4 + 4 * ndim
    dims = _read_up_to(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise FormatError(
            f"{name}: truncated header: {ndim} dimensions need {header} bytes, file has "
            f"{4 + len(dims)}"
        )
    shape = struct.unpack(f">{ndim}I", dims)
    text = "x".join(map(str, shape))
    if 0 in shape:
        raise FormatError(f"{name}: dimensions {text} hold no values (a dimension is 0)")
    dtype = _DTYPES[code]
    count = math.prod(shape)  # a Python int: 4294967295^3 does not wrap around
    expected = header + count * dtype.itemsize
    if size is not None and size < expected:
        raise FormatError(
            f"{name}: truncated: dimensions {text} need {expected:,} bytes, file has {size:,}"
        )
    if size is not None and size > expected:
        raise FormatError(
            f"{name}: {size - expected} unexpected bytes after the data of dimensions {text}"
        )
    check_alloc(count * dtype.itemsize, f"{name}: an IDX array of dimensions {text}")
    array = np.empty(count, dtype=dtype)  # pages are touched only as the data arrives
    got = read_into(stream, memoryview(array.view(np.uint8)), _CHUNK)
    if got < count * dtype.itemsize:
        raise FormatError(
            f"{name}: truncated: dimensions {text} need {expected:,} bytes, the file's data has "
            f"{header + got:,}"
        )
    extra = len(_read_up_to(stream, _CHUNK))
    if extra:
        many = "more than " if extra == _CHUNK else ""
        raise FormatError(
            f"{name}: {many}{extra} unexpected bytes after the data of dimensions {text}"
        )
    if dtype.byteorder not in "=|":  # big-endian on disk: swap in place, no second copy
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array.reshape(shape)


def _read_up_to(stream: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, _CHUNK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx_pair(
    images_path: str | Path, labels_path: str | Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files; check the counts agree and labels are in range."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2 or images.dtype != np.uint8:
        raise FormatError(
            f"{printable(images_path)}: expected uint8 images of N x H x W, got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1:
        raise FormatError(
            f"{printable(labels_path)}: expected a 1-dimensional label vector, got shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise FormatError(
            f"{printable(labels_path)}: {len(labels)} labels for {len(images)} images in {printable(Path(images_path).name)}; "
            "the two files do not belong together"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise FormatError(
            f"{printable(labels_path)}: label {bad} out of range: labels must be in 0..{num_classes - 1}"
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
    notes = {"files": ", ".join(printable(p.name) for pair in pairs for p in pair)}
    splits, checked = [], []
    for images_path, labels_path in pairs:
        images = as_images(read_idx(images_path), printable(images_path), notes=notes)
        labels = as_labels(read_idx(labels_path), printable(labels_path))
        if len(images) != len(labels):
            raise FormatError(
                f"{printable(labels_path)}: {len(labels)} labels for {len(images)} images in "
                f"{printable(images_path.name)}; the two files do not belong together"
            )
        splits.append((images, labels))
        checked.append((labels, printable(labels_path), None))
    names = class_names(checked, classes)
    test = splits[1] if len(splits) > 1 else None
    return RawSplits(splits[0], test, names, printable(path), "idx", notes)


def _idx_pairs(path: Path) -> list[tuple[Path, Path]]:
    """[(train images, train labels)] + [(test images, test labels)] when there is a test pair."""
    if not path.is_dir():
        if not path.exists():
            raise FormatError(f"{printable(path)}: no such file or folder")
        check_regular(path)  # a FIFO or device named like an IDX file: one line, no read
        labels = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if labels == path:
            raise FormatError(
                f"{printable(path)}: not an images file named like *-images-idx3-ubyte; pass "
                "the images file or the folder holding both"
            )
        found = _with_gz(labels)
        if found is None:
            name = printable(labels.name.removesuffix(".gz"))
            raise FormatError(f"{printable(path)}: its labels file {name}(.gz) is not beside it")
        return [(path, found)]
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
        found = printable(", ".join(p.name for p in images) or "none")
        raise FormatError(
            f"{printable(path)}: expected one training pair (train-images-idx3-ubyte + "
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
