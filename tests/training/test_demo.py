"""The demo's recipe: the tutorial preset on MNIST, or the bundled digits when it is missing."""

from __future__ import annotations

import logging

import pytest

from mlplab.config import Config
from mlplab.data import Dataset
from mlplab.errors import DataError
from mlplab.training import demo
from mlplab.training.demo import DIGITS_FALLBACK, demo_recipe


def test_mnist_missing_falls_back_to_digits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLPLAB_MIRROR", "http://127.0.0.1:9/")  # offline: MNIST cannot download
    with caplog.at_level(logging.INFO, logger="mlplab"):
        config, data = demo_recipe(runs_dir="somewhere")
    assert data.name == "digits" and config.data.dataset == "digits"
    assert config.augment.shift == 0 and config.train.epochs == 40
    assert config.run.name == "demo-digits" and config.run.dir == "somewhere"
    tutorial = Config.preset("tutorial")
    assert config.model == tutorial.model and config.train.lr == tutorial.train.lr
    assert "MNIST is not available here: dataset 'mnist' not found" in caplog.text
    assert "running the same pipeline on scikit-learn's bundled 8x8 digits instead" in caplog.text
    assert set(DIGITS_FALLBACK) == {"data.dataset", "augment.shift", "train.epochs", "run.name"}


def test_mnist_found_keeps_the_tutorial_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[tuple[str, object]] = []

    def load(name: str, data_dir: object = None) -> Dataset:
        found.append((name, data_dir))
        return "mnist-data"  # type: ignore[return-value]  # only passed through

    monkeypatch.setattr(demo, "load_dataset", load)
    config, data = demo_recipe("here", epochs=3)
    assert found == [("mnist", "here")] and data == "mnist-data"
    tutorial = Config.preset("tutorial")
    assert config.data.dataset == tutorial.data.dataset and config.data.data_dir == "here"
    assert config.augment == tutorial.augment and config.train.epochs == 3  # --epochs wins


def test_epochs_override_the_fallback_too(monkeypatch: pytest.MonkeyPatch) -> None:
    real = demo.load_dataset

    def no_mnist(name: str, data_dir: object = None) -> Dataset:
        if name == "mnist":
            raise DataError("dataset 'mnist' not found")
        return real(name)

    monkeypatch.setattr(demo, "load_dataset", no_mnist)
    config, _ = demo_recipe(epochs=2)
    assert config.train.epochs == 2 and config.data.dataset == "digits"
