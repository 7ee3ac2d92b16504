"""Exploring a dataset before training: the numbers, the page, the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import make_images

from mlplab import load_dataset
from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.report.explore import EXPLORE_FIGURES, DatasetExploration, explore


def test_exploration_numbers() -> None:
    data = make_images(classes=25, channels=3, height=5, width=7, n_train=250, n_test=50)
    e = DatasetExploration(data, per_class=3, label="k4", correlation_samples=6)
    assert e.counts.tolist() == [10] * 25 and e.test_counts.sum() == 50
    assert e.samples.shape == (20, 3)  # at most 20 classes in the samples grid
    assert e.means.shape == (25, 3, 5, 7) and e.histogram.shape == (3, 256)
    assert e.label == 4 and e.correlations.within.shape == (15,)
    with pytest.raises(ConfigError, match="class 'k99' is not in dataset 'shapes'"):
        DatasetExploration(data, label="k99")
    with pytest.raises(ConfigError, match="unknown figure 'mean'.*did you mean 'means'"):
        e.figure("mean")


def test_explore_page_for_an_rgb_dataset(tmp_path: Path) -> None:
    data = make_images(classes=3, channels=3, height=6, width=10)
    path = explore(data, tmp_path / "page", per_class=4)
    html = path.read_text()
    assert path.name == "explore.html" and html.count("data:image/png;base64,") == len(
        EXPLORE_FIGURES
    )
    assert "red" in html and "Samples per class" in html


def test_cli_explore_digits(tmp_path: Path, capsys) -> None:
    assert main(["explore", "digits", "--per-class", "4", "--class", "3"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == Path("runs/explore-digits") / "explore.html" and path.is_file()
    assert len(list((path.parent / "figures").glob("explore-*.png"))) == len(EXPLORE_FIGURES)
    assert "Class 3," in path.read_text()


def test_cli_explore_unknown_dataset_is_one_line(capsys) -> None:
    assert main(["explore", "mnsit"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("mlplab: error: ") and "did you mean 'mnist'" in err and err.count("\n") == 1
    )


def test_explore_real_mnist(mnist_dir: Path, tmp_path: Path) -> None:
    e = DatasetExploration(load_dataset("mnist", mnist_dir))
    assert e.counts.sum() == 60_000 and e.counts[1] == 6742  # the most common digit
    assert int(e.histogram.sum()) == 60_000 * 784
    mean = (e.histogram[0] * np.arange(256)).sum() / e.histogram.sum() / 255
    assert mean == pytest.approx(0.130660, abs=1e-6)
