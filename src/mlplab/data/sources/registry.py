"""The registry of named datasets: ``DATASETS`` (name -> :class:`~.base.Source`) and lookup.

Registering a dataset is adding its source here; every kind of source (:mod:`.idx`,
:mod:`.files`, :mod:`.bundled`) implements :class:`~.base.Source`, so the CLI, the config
and :func:`mlplab.load_dataset` treat them alike. The order is the order of ``mlplab
datasets`` and of ``vocab.DATASETS``.
"""

from __future__ import annotations

from ...errors import DataError, did_you_mean
from .base import Source
from .bundled import DIGITS_SOURCE, MAKE_REGRESSION_SOURCE
from .files import CIFAR10_SOURCE, USPS_SOURCE
from .idx import FASHION_MNIST_SOURCE, MNIST_SOURCE

__all__ = ["DATASETS", "get_source"]

DATASETS: dict[str, Source] = {
    source.name: source
    for source in (
        MNIST_SOURCE,
        FASHION_MNIST_SOURCE,
        DIGITS_SOURCE,
        MAKE_REGRESSION_SOURCE,
        USPS_SOURCE,
        CIFAR10_SOURCE,
    )
}


def get_source(name: str) -> Source:
    """The registered dataset called ``name``; DataError naming the available ones otherwise."""
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset '{name}'{did_you_mean(name, DATASETS)}; "
            f"available: {', '.join(DATASETS)}"
        )
    return DATASETS[name]
