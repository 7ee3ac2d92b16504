"""Datasets as uint8 tensors: sources and formats in, :class:`Dataset` out.

``load_dataset("mnist")`` finds (or downloads) the files and returns the official train
and test splits as uint8 image tensors ``(N, C, H, W)`` and int64 labels;
``load_dataset("train.csv")`` reads a file or folder in any format of :mod:`.formats`. The
seeded train/validation split and the normalization statistics come from :mod:`.splits`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError, FormatError, did_you_mean
from ..files.limits import printable
from .csv import Table, read_csv_table
from .dataset import Dataset, Split
from .formats import read_any
from .raw import hold_out_test, with_test
from .sources import DATASETS, get_source
from .splits import Normalization, split_train_val, stratified_pick

__all__ = [
    "DATASETS",
    "Dataset",
    "Normalization",
    "Split",
    "load_configured",
    "load_dataset",
    "split_train_val",
]


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    verify: bool = True,
    format: str | None = None,
    test_dataset: str | Path | None = None,
    test_size: float = 0.2,
    split_seed: int = 0,
    target: str | None = None,
    **options: Any,
) -> Dataset:
    """Load a dataset's train and test splits as uint8 tensors (CPU).

    ``name`` is a registered dataset (see :data:`DATASETS`) or a file or folder in any
    format of :mod:`.formats`. A registered dataset's files are looked for in ``data_dir``,
    ``$MLPLAB_DATA_DIR``, the torchvision tutorial folders and the user cache, downloaded
    into the cache when missing, and checked against their published checksums the first
    time they are used (``verify``; the check is remembered).

    A file or folder is read in ``format`` (detected when None) with the reader's
    ``options`` (``image_shape``, ``pixel_scale``, ``images_key``, ``labels_key``); its
    test split is ``test_dataset``, else its own, else a seeded, stratified ``test_size``
    held out of it. ``target`` names a CSV column to predict: a tabular regression dataset.
    """
    if name in DATASETS:
        return get_source(name).load(data_dir, download=download, mirror=mirror, verify=verify)
    path = _dataset_path(name)
    options = {k: v for k, v in options.items() if v is not None}
    if format == "auto":
        format = None
    reload = {
        "dataset": str(path.resolve()),
        "format": format,
        "test_size": test_size,
        "split_seed": split_seed,
        "target": target,
        **options,
        "test_dataset": str(Path(test_dataset).expanduser().resolve()) if test_dataset else None,
    }
    if target is not None:
        return _load_table(path, target, test_dataset, test_size, split_seed, reload)
    raw = read_any(path, format, **options)
    if test_dataset is not None:
        raw = with_test(raw, read_any(test_dataset, format, **options))
    elif raw.test is None:
        raw = hold_out_test(raw, test_size, split_seed)
    return raw.to_dataset(path.name, reload=reload)


def _dataset_path(name: str) -> Path:
    """``name`` as an existing file or folder; DataError naming the registered datasets if not."""
    path = Path(name).expanduser()
    if not path.exists() and path.is_symlink():
        raise DataError(
            f"dataset '{printable(name)}' is a symbolic link that leads nowhere (dangling, or a "
            "loop of links); point it at a data file or folder"
        )
    if not path.exists():
        raise DataError(
            f"dataset '{printable(name)}' is neither a registered dataset ({', '.join(DATASETS)})"
            f"{did_you_mean(name, DATASETS)} nor an existing file or folder"
        )
    return path


def load_configured(data: DataConfig) -> Dataset:
    """The dataset a config's ``data`` section describes (a :class:`~mlplab.config.DataConfig`)."""
    return load_dataset(
        data.dataset,
        data.data_dir,
        download=data.download,
        mirror=data.mirror,
        verify=data.verify,
        format=data.format,
        test_dataset=data.test_dataset,
        test_size=data.test_size,
        split_seed=data.split_seed,
        target=data.target,
        image_shape=data.image_shape,
        pixel_scale=None if data.pixel_scale == "auto" else data.pixel_scale,
        images_key=data.images_key,
        labels_key=data.labels_key,
    )


def _load_table(
    path: Path,
    target: str,
    test_dataset: str | Path | None,
    test_size: float,
    split_seed: int,
    reload: dict[str, Any],
) -> Dataset:
    """A CSV's columns as float features ``(N, F, 1, 1)`` and ``target`` as the value to predict."""
    table = read_csv_table(path, target)
    x, y = _table_arrays(table)
    if test_dataset is not None:
        test = read_csv_table(test_dataset, target)
        if test.feature_names != table.feature_names:
            raise FormatError(
                f"{printable(test_dataset)}: columns {printable(', '.join(test.feature_names))} "
                f"differ from {printable(path)}'s {printable(', '.join(table.feature_names))}"
            )
        train_part, test_part = (x, y), _table_arrays(test)
    else:
        n = len(y)
        n_test = round(test_size * n)
        if not 0 < n_test < n:
            raise FormatError(
                f"{printable(path)}: {n} rows are too few to hold out a test split of {test_size:g}"
            )
        # float targets have no classes to stratify: the pick is a seeded random one
        held = stratified_pick(torch.from_numpy(y), n_test, split_seed).numpy()
        keep = np.ones(n, dtype=bool)
        keep[held] = False
        train_part, test_part = (x[keep], y[keep]), (x[held], y[held])
    return Dataset.from_numpy(
        path.name, (), str(path), train_part, test_part, reload=reload, task="regression"
    )


def _table_arrays(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 ``(N, F, 1, 1)`` (one feature per channel) and float32 targets."""
    return table.features.astype(np.float32)[:, :, None, None], table.targets.astype(np.float32)
