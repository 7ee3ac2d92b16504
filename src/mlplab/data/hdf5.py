"""HDF5 files (h5py): image and label datasets, at the top level or in train/ and test/ groups.

The keys are found by :func:`mlplab.data.raw.find_layout` (``train/data`` +
``train/target`` as in the widely shared ``usps.h5``, ``x_train``/``y_train``,
``images``/``labels``), or named with ``images_key`` and ``labels_key``. Images may be
``(N, H, W)``, ``(N, C, H, W)``, ``(N, H, W, C)`` or flat ``(N, D)``; uint8 or 0-1 floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .raw import RawSplits, find_layout, from_arrays

__all__ = ["HDF5_MAGIC", "read_hdf5", "read_usps"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read_hdf5(
    path: str | Path,
    *,
    images_key: str | None = None,
    labels_key: str | None = None,
    image_shape: str | Sequence[int] | None = None,
    pixel_scale: str = "auto",
    classes: Sequence[str] | None = None,
) -> RawSplits:
    """Read the train (and test, when present) images and labels of an HDF5 file."""
    import h5py  # a compiled extension: imported only when an HDF5 file is read

    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    with handle:
        datasets: list[str] = []
        handle.visititems(
            lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        layout = find_layout(datasets, str(path), images_key, labels_key)

        def get(key: str) -> np.ndarray:
            try:
                return np.asarray(handle[key][()])
            except (OSError, TypeError, ValueError) as exc:
                raise FormatError(f"{path}: cannot read dataset '{key}' ({exc})") from None

        return from_arrays(
            str(path),
            "hdf5",
            get,
            layout,
            image_shape=image_shape,
            pixel_scale=pixel_scale,
            classes=classes,
        )


def read_usps(path: str | Path) -> RawSplits:
    """The USPS digits file ``usps.h5``: 16x16 gray images, classes "0".."9", train and test."""
    raw = read_hdf5(path, classes=[str(d) for d in range(10)])
    if raw.image_shape != (1, 16, 16) or raw.test is None:
        test = "no test split" if raw.test is None else "a test split"
        raise FormatError(
            f"{path}: images of {'x'.join(map(str, raw.image_shape))} and {test}; usps.h5 holds "
            "16x16 gray digits in train/ and test/ groups"
        )
    return raw
