"""robustness.json: the clean row reproduces evaluate exactly (accuracy, ECE, rejected fraction);
the file has the issue's shape and reads back; subsets, seeds and colour images; the report's
section and compare's overlay read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from synthetic import make_images, quick

from mlplab import ConfigError, Dataset, RunError, evaluate, train
from mlplab.analysis.corruptions import NAMES, corrupt
from mlplab.analysis.robustness import (
    FILE,
    parse_corruptions,
    parse_severities,
    read_robustness,
    robustness,
    robustness_of_runs,
)

FEW = ["rotate", "impulse_noise", "canny_edges"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the bundled digits (8x8), reloadable by name."""
    tmp = tmp_path_factory.mktemp("robustness")
    config = quick(tmp, **{"data.dataset": "digits", "train.epochs": 2, "model.hidden": [32]})
    return train(config).run_dir


@pytest.fixture(scope="module")
def result(run: Path):
    return robustness(run, corruptions=FEW, severities=[1, 3, 5])


def test_the_clean_row_is_evaluate_exactly(run: Path, result) -> None:
    metrics = evaluate(run)
    assert result.clean.accuracy == metrics["accuracy"]
    assert result.clean.ece == metrics["ece"]
    assert result.clean.rejected_fraction == metrics["rejected_fraction"]
    assert result.samples == metrics["samples"]


def test_the_file_has_the_issue_shape_and_reads_back(run: Path, result) -> None:
    data = json.loads((run / FILE).read_text())
    assert set(data["clean"]) == {"accuracy", "rejected_fraction", "ece"}
    assert list(data["corruptions"]) == FEW
    for cells in data["corruptions"].values():
        assert list(cells) == ["1", "3", "5"]
        for cell in cells.values():
            assert set(cell) == {"accuracy", "rejected_fraction", "ece"}
            assert 0 <= cell["accuracy"] <= 1 and 0 <= cell["rejected_fraction"] <= 1
    accuracies = [c["accuracy"] for cells in data["corruptions"].values() for c in cells.values()]
    assert data["mean_corruption_accuracy"] == pytest.approx(sum(accuracies) / len(accuracies))
    again = read_robustness(run)
    assert again is not None and again.to_dict() == data | {"seconds": again.seconds}
    assert not list(run.glob("*.tmp"))  # written through a temporary file, renamed


def test_a_cell_is_the_model_on_the_corrupted_images(run: Path, result) -> None:
    """Rotate 3 scored by hand: corrupt the test split, evaluate on it as another dataset."""
    data = make_digits_like(run)
    rotated = Dataset(data.name, data.train, corrupt_split(data.test, "rotate", 3),
                      data.classes, data.origin)  # fmt: skip
    metrics = evaluate(run, dataset=rotated)
    cell = result.corruptions["rotate"][3]
    assert cell.accuracy == metrics["accuracy"] and cell.ece == metrics["ece"]
    assert cell.rejected_fraction == metrics["rejected_fraction"]


def make_digits_like(run: Path) -> Dataset:
    from mlplab.run.directory import Run
    from mlplab.run.splits import run_dataset

    return run_dataset(Run.open(run))


def corrupt_split(split, name: str, severity: int):
    from mlplab.data import Split

    return Split(corrupt(split.images, name, severity), split.labels)


def test_the_same_seed_gives_the_same_figures_and_write_false_writes_nothing(
    run: Path, result
) -> None:
    before = (run / FILE).read_text()
    again = robustness(run, corruptions=FEW, severities=[1, 3, 5], write=False)
    assert again.to_dict() | {"seconds": 0} == result.to_dict() | {"seconds": 0}
    assert (run / FILE).read_text() == before
    other = robustness(run, corruptions=["impulse_noise"], severities=[5], seed=1, write=False)
    assert other.corruptions["impulse_noise"][5] != result.corruptions["impulse_noise"][5]


def test_several_runs_share_the_corrupted_images(run: Path, result) -> None:
    both = robustness_of_runs([run, run], corruptions=FEW, severities=[1, 3, 5], write=False)
    assert [r.corruptions for r in both] == [result.corruptions] * 2


def test_colour_images_skip_the_canny_edges_saying_why(tmp_path: Path) -> None:
    data = make_images(classes=3, channels=3, height=8, width=8, n_train=90, n_test=30)
    run_dir = train(quick(tmp_path, **{"train.epochs": 1}), dataset=data).run_dir
    r = robustness(run_dir, dataset=data, corruptions=FEW, severities=[2])
    assert list(r.corruptions) == ["rotate", "impulse_noise"]
    assert "canny_edges skipped on 3-channel images" in r.skipped["canny_edges"]
    assert json.loads((run_dir / FILE).read_text())["skipped"] == r.skipped


def test_refusals(run: Path) -> None:
    with pytest.raises(
        ConfigError, match="--severities must be 1 to 5 as N, N-M or N,M,...; got '0-5'"
    ):
        parse_severities("0-5")
    assert parse_severities("2-4") == [2, 3, 4] and parse_severities("5,1") == [1, 5]
    with pytest.raises(ConfigError, match="corruption must be one of .*got 'rotation'.*rotate"):
        parse_corruptions("shear,rotation")
    assert parse_corruptions("motion-blur, shear") == ["motion_blur", "shear"]
    with pytest.raises(ConfigError, match="severities must be among 1 to 5; got 0"):
        robustness(run, severities=[0], write=False)
    for limit in (-5, 0, "10", 2.5, True):  # -5 scored all but the last 5, 0 "no test images"
        with pytest.raises(ConfigError) as refused:
            robustness(run, limit=limit, write=False)
        assert str(refused.value) == (
            "limit (--limit) must be a whole number >= 1, the first N test images, or None for "
            f"all of them; got {limit!r}"
        )
    (run / "bad").mkdir()
    (run / "bad" / FILE).write_text('{"clean": 1}')
    with pytest.raises(RunError, match="not a robustness.json written by mlplab"):
        read_robustness(run / "bad")


def test_the_report_section_and_analysis_json(run: Path, result) -> None:
    from mlplab.report.run_report import FIGURES, RunAnalysis, _robustness_caption

    a = RunAnalysis(run)
    assert "robustness" in FIGURES
    figure = a.figure("robustness")
    assert len([ax for ax in figure.axes if ax.get_visible() and ax.axison]) == len(FEW)
    assert f"Mean corruption accuracy: {result.mean_corruption_accuracy:.2%}" in (
        _robustness_caption(a)
    )
    summary = a.to_json()["robustness"]
    assert summary["mean_corruption_accuracy"] == result.mean_corruption_accuracy
    assert list(summary["per_corruption"]) == FEW


def test_compare_overlays_the_runs_that_have_one(run: Path, result, tmp_path: Path) -> None:
    from mlplab.report.compare import compare, compare_runs

    c = compare_runs([run])
    assert list(c.robustness) == [c.names[0]]
    assert f"{result.mean_corruption_accuracy:.2%}" in c.table()
    page = compare(c, tmp_path / "cmp")
    assert "Accuracy under the MNIST-C corruptions" in page.read_text()


def test_every_corruption_runs_on_the_run(run: Path) -> None:
    r = robustness(run, severities=[5], limit=40, write=False)
    assert list(r.corruptions) == list(NAMES)
    assert all(0 <= r.corruptions[n][5].accuracy <= 1 for n in NAMES)
    assert torch.get_num_threads() >= 1
