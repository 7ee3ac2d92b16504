"""NumPy ``.npz`` archives: Keras's ``x_train, y_train, x_test, y_test``, or ``x, y``.

Read member by member with :mod:`zipfile` and numpy's ``.npy`` header parser, never with
``np.load``, so that nothing in the file is trusted before it is checked:

- an array of Python objects is refused with a clear message, never unpickled
  (unpickling runs code the file chooses);
- the shape a member's header declares is checked against the member's size and against
  the memory budget (:func:`mlplab.files.limits.check_alloc`) before anything is allocated, and
  the member is then read only as far as the header says, so a member that inflates past
  it (a decompression bomb) is refused after one byte more;
- a damaged member (bad CRC, truncated, a header numpy cannot parse, an unknown
  compression method, encryption) is one line naming the archive and the array.

Images take every layout that HDF5 files do (see :func:`mlplab.data.raw.image_layout`).
"""

from __future__ import annotations

import math
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import FormatError
from ..files.limits import check_alloc, check_declared, open_regular, printable, read_into
from .raw import RawSplits, find_layout, from_arrays

__all__ = ["read_npz"]

_NPY_MAGIC = b"\x93NUMPY"
# What zipfile, zlib, bz2, lzma and numpy's header parser raise on a damaged member.
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    OverflowError,
    NotImplementedError,  # a compression method zipfile does not know
    RuntimeError,  # an encrypted member; also RecursionError from a nested header
    SyntaxError,
    struct.error,
    zlib.error,
    tokenize.TokenError,  # numpy reads a header as Python tokens: an unclosed brace
)


def read_npz(
    path: str | Path,
    *,
    images_key: str | None = None,
    labels_key: str | None = None,
    image_shape: str | Sequence[int] | None = None,
    pixel_scale: str = "auto",
    classes: Sequence[str] | None = None,
) -> RawSplits:
    """Read the train (and test, when present) images and labels of an ``.npz`` archive."""
    path = Path(path)
    name = printable(path)
    with open_regular(path) as file:
        if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise FormatError(
                f"{name}: a single .npy array, not an .npz archive; save images and labels "
                "together with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
            )
        file.seek(0)
        try:
            archive = zipfile.ZipFile(file)
        except _DAMAGED as exc:
            raise FormatError(f"{name}: not a readable .npz archive ({_one_line(exc)})") from None
        with archive:
            members = _members(archive, name)
            layout = find_layout(members, name, images_key, labels_key)
            return from_arrays(
                name,
                "npz",
                lambda key: _read_member(
                    archive, members[key], f"{name}: array '{printable(key)}'"
                ),
                layout,
                image_shape=image_shape,
                pixel_scale=pixel_scale,
                classes=classes,
            )


def _members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's arrays by key (the member name without ``.npy``, as ``np.load`` names
    them); a name stored twice is refused: which copy a tool reads would differ."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        key = info.filename.removesuffix(".npy")
        if key in members:
            raise FormatError(
                f"{name}: member '{printable(info.filename)}' is stored twice; a damaged or "
                "crafted archive (np.savez writes each array once)"
            )
        members[key] = info
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> np.ndarray:
    """One member's array, its declared size checked before anything is allocated."""
    if info.flag_bits & 0x1:
        raise FormatError(f"{what} is encrypted; mlplab reads only unencrypted archives")
    try:
        with archive.open(info) as member:
            array = _read_npy(member, info.file_size, what)
            if member.read(1):  # also reads to the end, where zipfile checks the CRC
                raise FormatError(
                    f"{what}: the member holds more bytes than its header's shape "
                    f"{tuple(array.shape)} needs; a damaged or crafted archive"
                )
            return array
    except FormatError:
        raise
    except _DAMAGED as exc:
        raise FormatError(
            f"{what} cannot be read ({_one_line(exc)}); the archive is damaged or not "
            "written by numpy"
        ) from None


def _read_npy(member: IO[bytes], size: int, what: str) -> np.ndarray:
    """The array of one ``.npy`` stream of ``size`` bytes (as the zip directory says)."""
    version = np.lib.format.read_magic(member)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about headers written by Python 2
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only for non-ASCII field names
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise FormatError(f"{what}: unknown .npy format version {version}")
    header = member.tell()
    if dtype.hasobject:
        raise FormatError(
            f"{what} holds Python objects (dtype object); mlplab reads only numeric arrays "
            "and never unpickles: save it as a numeric array (e.g. np.stack the images into "
            "uint8 (N, H, W))"
        )
    if dtype.kind == "V" or dtype.subdtype is not None or dtype.itemsize == 0:
        raise FormatError(
            f"{what} has the compound type {dtype}; images and labels must be plain numbers"
        )
    if any(d < 0 for d in shape):
        raise FormatError(f"{what}: its header declares a negative dimension in {shape}")
    count = math.prod(shape)  # a Python int: it cannot wrap around
    nbytes = count * dtype.itemsize
    check_declared(header + nbytes, size, f"{what}: shape {shape} of {dtype}")
    check_alloc(nbytes, f"{what}: shape {shape} of {dtype}")
    array = np.empty(count, dtype=dtype)  # pages are touched only as the data arrives
    got = read_into(member, memoryview(array.view(np.uint8)))
    if got < nbytes:
        raise FormatError(
            f"{what}: truncated: shape {shape} of {dtype} needs {nbytes:,} bytes, the member "
            f"holds {got:,}"
        )
    if fortran:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, control characters escaped."""
    return printable(" ".join(str(exc).split()) or type(exc).__name__)
