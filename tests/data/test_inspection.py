"""inspect_data: counts and pixel statistics by hand, and every kind of problem it reports."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlplab.data.inspection import inspect_data
from mlplab.data.raw import RawSplits

REAL_DATA_DIR = os.environ.get("MLPLAB_DATA_DIR")  # read before the fixtures clear it


def raw(
    train: list[tuple[int, int]],
    test: list[tuple[int, int]] | None = None,
    classes: tuple[str, ...] = ("a", "b"),
) -> RawSplits:
    """Images from (value, label) pairs: image i is a 2x2 ramp offset by its value."""

    def split(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        images = np.array([[[[v, v + 1], [v + 2, v + 3]]] for v, _ in pairs], np.uint8)
        return images, np.array([label for _, label in pairs], np.int64)

    return RawSplits(split(train), split(test) if test else None, classes, "mem", "npz")


def test_a_clean_dataset() -> None:
    report = inspect_data(raw([(0, 0), (40, 1), (80, 0), (120, 1)], [(160, 0), (200, 1)]))
    assert report.problems == ()
    train = report.splits["train"]
    assert (train.samples, train.class_counts, train.pixel_min, train.pixel_max) == (
        4,
        (2, 2),
        0,
        123,
    )
    assert train.pixel_mean == pytest.approx(
        np.mean([0, 1, 2, 3, 40, 41, 42, 43, 80, 81, 82, 83, 120, 121, 122, 123]) / 255
    )
    assert report.shared == 0
    assert report.to_text().splitlines() == [
        "format    npz (mem)",
        "images    1x2x2 uint8 (gray)",
        "classes   2: a b",
        "train     4 images, pixels 0..123, mean 0.2412",
        "test      2 images, pixels 160..203, mean 0.7118",
        "per class    train     test",
        "  a              2        1",
        "  b              2        1",
        "problems  none found",
    ]


def test_every_problem_is_reported() -> None:
    train = [(0, 0)] * 1 + [(10, 1), (10, 0), (20, 1), (30, 1), (40, 1)]  # 10 twice, two labels
    report = inspect_data(raw(train, [(20, 1), (50, 1)], classes=("a", "b", "c")))
    assert report.splits["train"].duplicates == 1 and report.splits["train"].conflicting == 1
    assert report.shared == 1
    assert report.problems == (
        "train: no images of class 'c'",  # a 2:4 imbalance is below the 3x threshold
        "train: 1 exact duplicate image (1 with a different label)",
        "test: no images of class 'a', 'c'",
        "test: identical to a training image: 1 of 2 images (50.0%); the test score overstates accuracy on new images",
    )


def test_imbalance_blank_dark_and_no_test() -> None:
    train = [(i, 0) for i in range(1, 7)] + [(9, 1)]
    data = raw(train)
    images = data.train[0].copy()
    images[0] = 5  # blank: one value everywhere
    report = inspect_data(RawSplits((images, data.train[1]), None, ("a", "b"), "mem", "npz"))
    assert report.problems == (  # no test split is a fact, not a problem: training holds one out
        "train: class imbalance: 'a' has 6 images, 'b' 1 (6.0x); accuracy will favour the large classes: look at the per-class accuracy",
        "train: 1 blank image (every pixel the same value)",
        "the brightest pixel is 12 of 255: were the pixels saved on another scale? (see pixel_scale / --pixel-scale)",
    )
    assert report.notes["test split"] == (
        "none in the file: training holds out 20% of train as the test split, stratified "
        "(data.test_size 0.2, seeded by data.split_seed; --test-size to change it), or give "
        "one with --test-dataset PATH"
    )
    assert "test      none" in report.to_text()
    assert "note      test split: none in the file: training holds out 20%" in report.to_text()
    assert report.to_text().endswith(
        "  - the brightest pixel is 12 of 255: were the pixels saved on another scale? (see pixel_scale / --pixel-scale)"
    )


def test_reads_a_path_and_keeps_the_notes(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("1,0,0.5,1,0\n0,1,1,1,0.5\n")
    report = inspect_data(tmp_path / "d.csv")
    assert (
        report.format == "csv" and report.notes["pixel scale"] == "0-1 (detected: largest value 1)"
    )
    assert "note      pixel scale: 0-1 (detected: largest value 1)" in report.to_text()
    assert report.to_dict()["splits"]["train"]["samples"] == 2


def test_real_usps_report() -> None:
    folder = REAL_DATA_DIR
    if not folder or not (Path(folder) / "usps" / "usps.h5").is_file():
        pytest.skip("real USPS not available: set MLPLAB_DATA_DIR to a folder holding usps/usps.h5")
    report = inspect_data(Path(folder) / "usps" / "usps.h5")
    assert report.splits["train"].class_counts == (
        1194,
        1005,
        731,
        658,
        652,
        556,
        664,
        645,
        542,
        644,
    )
    assert report.splits["test"].samples == 2007


def test_inspect_source_takes_a_registered_name_or_a_path(tmp_path: Path) -> None:
    from mlplab.data.inspection import inspect_source
    from mlplab.errors import ConfigError

    digits = inspect_source("digits")  # the registered dataset's official splits
    assert set(digits.splits) == {"train", "test"} and len(digits.classes) == 10
    assert sum(s.samples for s in digits.splits.values()) == 1797
    (tmp_path / "d.csv").write_text("1,0,0.5,1,0\n0,1,1,1,0.5\n")
    assert inspect_source(tmp_path / "d.csv", format="auto") == inspect_data(tmp_path / "d.csv")
    with pytest.raises(ConfigError, match="^'make-regression' is a regression dataset; inspect "):
        inspect_source("make-regression")
