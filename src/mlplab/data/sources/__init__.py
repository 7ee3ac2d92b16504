"""Named datasets: the registry (``DATASETS``, :func:`get_source`) and the sources it holds.

:mod:`.base` is what every source is (:class:`Source`: ``find``, ``locate``, ``load``) and
where files are looked for; :mod:`.idx` (MNIST, Fashion-MNIST), :mod:`.files` (CIFAR-10,
USPS) and :mod:`.bundled` (scikit-learn's digits, make-regression) are the kinds;
:mod:`.registry` names them.
"""

from __future__ import annotations

from .base import FetchOptions, Location, Source, cache_dir, search_dirs
from .bundled import BundledSource
from .files import CIFAR10_SOURCE, USPS_SOURCE, FileSource
from .idx import IdxSource
from .registry import DATASETS, get_source

__all__ = [
    "CIFAR10_SOURCE",
    "DATASETS",
    "USPS_SOURCE",
    "BundledSource",
    "FetchOptions",
    "FileSource",
    "IdxSource",
    "Location",
    "Source",
    "cache_dir",
    "get_source",
    "search_dirs",
]
