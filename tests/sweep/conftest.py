"""Fixtures of the sweep tests: a tiny digits recipe as the base config, the data loaded once."""

from __future__ import annotations

import pytest

from mlplab import Config, load_dataset

TINY = {
    "data.dataset": "digits",
    "model.hidden": [16],
    "train.epochs": 2,
    "train.lr": 0.01,
    "train.threads": 1,
    "run.name": "t",
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def base() -> Config:
    return Config().override(TINY)
