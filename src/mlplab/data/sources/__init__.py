"""Named datasets: the registry (``DATASETS``, :func:`get_source`) and the sources it holds."""

from __future__ import annotations

from .files import CIFAR10_SOURCE, USPS_SOURCE, FileSource
from .registry import DATASETS, BundledSource, IdxSource, cache_dir, get_source, search_dirs

__all__ = [
    "CIFAR10_SOURCE",
    "DATASETS",
    "USPS_SOURCE",
    "BundledSource",
    "FileSource",
    "IdxSource",
    "cache_dir",
    "get_source",
    "search_dirs",
]
