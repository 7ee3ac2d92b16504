"""Any supported file or folder -> :class:`RawSplits`: the format table, detection, ``read_any``.

========  ==============================================  =====================================
format    what                                            options
========  ==============================================  =====================================
csv       label column + pixel columns, header optional   image_shape, pixel_scale, classes,
                                                          labels_key
hdf5      image and label datasets (train/, test/ groups) images_key, labels_key, image_shape,
                                                          pixel_scale, classes
npz       x_train, y_train, x_test, y_test (or x, y)      same as hdf5
folders   <folder>/<class>/*.png (optionally train/test)  image_shape
cifar     CIFAR-10 binary or Python batches, or archive   none
idx       MNIST's IDX files (a folder or an images file)  classes
========  ==============================================  =====================================

:func:`detect_format` looks at the content first (HDF5, zip, gzip and IDX magic numbers),
then at names (``.csv``, CIFAR-10's batch and folder names), then inside folders.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, FormatError, did_you_mean
from ..files.limits import check_regular, open_regular, printable
from .cifar import read_cifar
from .csv import read_csv
from .folders import IMAGE_EXTENSIONS, read_folders
from .hdf5 import HDF5_MAGIC, read_hdf5
from .idx import read_idx_dataset
from .npz import read_npz
from .raw import RawSplits

__all__ = ["FORMATS", "Format", "RawSplits", "detect_format", "read_any"]


@dataclass(frozen=True)
class Format:
    """A file format mlplab reads: its reader, a one-line description and its options."""

    name: str
    reader: Callable[..., RawSplits]
    description: str
    options: tuple[str, ...]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "csv",
            read_csv,
            "CSV: one image per row, label column first (no header) or a 'label' column (header)",
            ("image_shape", "pixel_scale", "classes", "labels_key"),
        ),
        Format(
            "hdf5",
            read_hdf5,
            "HDF5: image and label datasets, top level or in train/ and test/ groups",
            ("images_key", "labels_key", "image_shape", "pixel_scale", "classes"),
        ),
        Format(
            "npz",
            read_npz,
            "NumPy .npz: x_train, y_train, x_test, y_test (Keras) or x, y",
            ("images_key", "labels_key", "image_shape", "pixel_scale", "classes"),
        ),
        Format(
            "folders",
            read_folders,
            "image files in one folder per class, optionally under train/ and test/",
            ("image_shape",),
        ),
        Format(
            "cifar",
            read_cifar,
            "CIFAR-10: binary or Python batches, their folder, or the .tar.gz archive",
            (),
        ),
        Format(
            "idx",
            read_idx_dataset,
            "IDX (MNIST's format): a folder of image/label file pairs, or an images file",
            ("classes",),
        ),
    )
}

_ACCEPTED = (
    f"accepted formats: {', '.join(FORMATS)} (.csv/.txt, .h5/.hdf5, .npz, a folder of class "
    "folders of images, CIFAR-10 batches or archive, IDX files)"
)
_IDX_TYPES = (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)
_CIFAR_NAMES = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta"}


def read_any(path: str | Path, format: str | None = None, **options: Any) -> RawSplits:
    """Read a dataset file or folder in any supported format (detected when ``format`` is None).

    ``options`` go to the format's reader (see :data:`FORMATS`); an option set to None
    counts as not given, so a CLI can pass every flag's value through.
    """
    name = format or detect_format(path)
    if name not in FORMATS:
        raise ConfigError(f"unknown format '{name}'{did_you_mean(name, FORMATS)}; {_ACCEPTED}")
    spec = FORMATS[name]
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in spec.options:
            takes = ", ".join(spec.options) or "no options"
            raise ConfigError(
                f"option '{key}' does not apply to {name} files ({printable(path)}); {name} "
                f"takes: {takes}"
            )
    return spec.reader(path, **given)


def detect_format(path: str | Path) -> str:
    """The format name of a file or folder, from its content first, then its name.

    Anything but a folder or a regular file (a FIFO, a device, a socket) is refused before
    it is opened: reading a FIFO would wait forever for a writer.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{printable(path)}: no such file or folder") from None
    except OSError as exc:
        raise FormatError(f"{printable(path)}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        return _detect_folder(path)
    check_regular(path)  # a FIFO or device named like a data file: one line, never a read
    with open_regular(path) as stream:  # refuses it again if it was swapped meanwhile
        try:
            head = stream.read(8)
        except OSError as exc:
            raise FormatError(f"{printable(path)}: cannot read: {exc.strerror or exc}") from None
    name = path.name.lower()
    if head.startswith(HDF5_MAGIC) or name.endswith((".h5", ".hdf5", ".he5")):
        return "hdf5"
    if head.startswith(b"PK\x03\x04") or name.endswith(".npz"):
        return "npz"
    if name.endswith((".tar.gz", ".tgz", ".tar")) or name.removesuffix(".bin") in _CIFAR_NAMES:
        return "cifar"
    if name.endswith((".csv.gz", ".txt.gz", ".tsv.gz")):
        return "csv"
    if head.startswith(b"\x1f\x8b"):
        head = _gunzip_head(path)
        if len(head) > 262 and head[257:262] == b"ustar":
            return "cifar"  # a tar archive: CIFAR-10's are the only ones read
    if len(head) >= 4 and head[:2] == b"\0\0" and head[2] in _IDX_TYPES and 1 <= head[3] <= 4:
        return "idx"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise FormatError(
        f"{printable(path)}: cannot tell the format from its name or first bytes "
        f"(0x{head[:4].hex()}); "
        f"{_ACCEPTED}; name it with format=NAME (--format NAME)"
    )


def _detect_folder(path: Path) -> str:
    try:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    except OSError as exc:
        raise FormatError(f"{printable(path)}: cannot list: {exc.strerror or exc}") from None
    names = {p.name for p in entries}
    cifar = {"cifar-10-batches-bin", "cifar-10-batches-py", *_CIFAR_NAMES}
    cifar |= {"cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"}
    if names & cifar or {n.removesuffix(".bin") for n in names} & _CIFAR_NAMES:
        return "cifar"
    if any("images-idx3" in n for n in names):
        return "idx"
    if any(p.is_dir() and _has_image(p) for p in entries):
        return "folders"
    raise FormatError(
        f"{printable(path)}: a folder, but not one of images in class subfolders, CIFAR-10 batches or "
        f"IDX files; {_ACCEPTED}; for a single file, pass the file's path"
    )


def _has_image(folder: Path) -> bool:
    return any(
        p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        for p in folder.rglob("*")
    )


def _gunzip_head(path: Path) -> bytes:
    """The first 512 decompressed bytes (a tar header), or b"" when the gzip is damaged."""
    try:
        with open_regular(path) as file, gzip.GzipFile(fileobj=file, mode="rb") as stream:
            return stream.read(512)  # bounded: a bomb inflates no further than this
    except (OSError, EOFError, zlib.error):
        return b""
