"""NumPy ``.npz`` archives: Keras's ``x_train, y_train, x_test, y_test``, or ``x, y``.

Always loaded with ``allow_pickle=False``: an array of Python objects is refused with a
clear message, never unpickled (unpickling runs code the file chooses). Images take every
layout that HDF5 files do (see :func:`mlplab.data.raw.image_layout`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .raw import RawSplits, find_layout, from_arrays

__all__ = ["read_npz"]


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
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FormatError(
            f"{path}: a single .npy array, not an .npz archive; save images and labels "
            "together with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    with archive:
        layout = find_layout(archive.files, str(path), images_key, labels_key)

        def get(key: str) -> np.ndarray:
            try:
                return archive[key]
            except ValueError as exc:
                if "allow_pickle" not in str(exc):
                    raise FormatError(f"{path}: cannot read array '{key}' ({exc})") from None
                raise FormatError(
                    f"{path}: array '{key}' holds Python objects (dtype object); mlplab reads "
                    "only numeric arrays and never unpickles: save it as a numeric array "
                    "(e.g. np.stack the images into uint8 (N, H, W))"
                ) from None
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise FormatError(f"{path}: cannot read array '{key}' ({exc})") from None

        return from_arrays(
            str(path),
            "npz",
            get,
            layout,
            image_shape=image_shape,
            pixel_scale=pixel_scale,
            classes=classes,
        )
