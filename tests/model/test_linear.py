"""The linear models' summary: a line fitted in standardized units, read back in the data's own
units and set beside scikit-learn's least squares."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlplab import MLP, Normalization, Split
from mlplab.data import Dataset
from mlplab.model.linear import describe, is_line, line_fit


def line_data(n: int = 40) -> Dataset:
    x = torch.linspace(-3.0, 5.0, n, dtype=torch.float32).view(n, 1, 1, 1)
    y = 2.5 * x.view(n) - 1.0  # exactly on a line
    split = Split(x, y)
    return Dataset("line", split, split, (), "test", task="regression")


def test_the_models_line_in_the_datas_units_is_scikit_learns(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    data = line_data()
    model = MLP((1, 1, 1), [], 1)
    assert is_line(model, data)
    norm = Normalization.fit(data.train.images)
    std = norm.std[0] * 255  # the model sees (x - mean) / std: w = slope * std
    with torch.no_grad():
        model.output.weight.fill_(2.5 * std)
        model.output.bias.fill_(2.5 * norm.mean[0] * 255 - 1.0)
    fit = line_fit(model, norm, data.train, tmp_path)
    assert fit["slope"] == pytest.approx(2.5, rel=1e-5)
    assert fit["intercept"] == pytest.approx(-1.0, abs=1e-5)
    assert fit["sklearn_slope"] == pytest.approx(2.5, rel=1e-6)
    assert fit["sklearn_intercept"] == pytest.approx(-1.0, abs=1e-5)
    assert describe(fit).startswith("line     y = 2.5000 x + -1.0000")
    if fit["plot"] is not None:  # matplotlib installed: the figure is in the run directory
        assert (tmp_path / fit["plot"]).stat().st_size > 0


def test_only_a_one_feature_regression_without_hidden_layers_is_a_line() -> None:
    data = line_data()
    assert not is_line(MLP((1, 1, 1), [4], 1), data)
    two = Split(data.train.images.repeat(1, 2, 1, 1), data.train.labels)
    plane = Dataset("plane", two, two, (), "test", task="regression")
    assert not is_line(MLP((2, 1, 1), [], 1), plane)  # two features: a plane
