"""The registry: every name maps to a Source of that name, lookup, and the listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplab import vocab
from mlplab.data.sources import DATASETS, Location, Source, get_source
from mlplab.errors import DataError


def test_unknown_dataset() -> None:
    with pytest.raises(
        DataError,
        match="unknown dataset 'mnits' \\(did you mean 'mnist'\\?\\); available: mnist, fashion-mnist, digits",
    ):
        get_source("mnits")


def test_every_registered_dataset_is_a_source_under_its_own_name() -> None:
    assert tuple(DATASETS) == vocab.DATASETS
    for name, source in DATASETS.items():
        assert isinstance(source, Source) and source.name == name
        assert get_source(name) is source


def test_every_source_says_where_it_is_with_nothing_on_disk(isolated: Path) -> None:
    """What `mlplab datasets` lists: one locate() call per source, whatever its kind."""
    cache = isolated / "cache"
    assert {name: source.locate() for name, source in DATASETS.items()} == {
        "mnist": Location("missing", f"downloads to {cache / 'mnist'}"),
        "fashion-mnist": Location("missing", f"downloads to {cache / 'fashion-mnist'}"),
        "digits": Location("bundled", "bundled with scikit-learn"),
        "make-regression": Location("bundled", "bundled with scikit-learn"),
        "usps": Location("missing", "not downloadable: see docs/formats.md"),
        "cifar10": Location("missing", f"downloads to {cache / 'cifar10'}"),
    }
