"""evaluate on another dataset: class names that differ from the run's are refused in one line,
unless --allow-class-mismatch (then a warning line, and the figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import make_images, quick

from mlplab import Dataset, RunError, evaluate, train
from mlplab.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("evaluate")
    data = make_images(classes=3, channels=1, height=4, width=4, n_train=120, n_test=30)
    return train(quick(tmp, **{"train.epochs": 1}), dataset=data).run_dir


def renamed(names: tuple[str, ...]) -> Dataset:
    data = make_images(classes=3, channels=1, height=4, width=4, n_train=120, n_test=30)
    return Dataset("other", data.train, data.test, names, "generated")


def test_other_class_names_are_refused_naming_both_lists(run: Path) -> None:
    with pytest.raises(RunError) as error:
        evaluate(run, dataset=renamed(("cat", "dog", "bird")))
    assert str(error.value) == (
        f"dataset 'other' has other classes than run {run}: cat, dog, bird; the run's: k0, k1, "
        "k2 (its labels would be scored as the run's classes by position); pass "
        "--allow-class-mismatch (allow_class_mismatch=True) to score it anyway"
    )


def test_the_same_classes_pass_and_allowing_a_mismatch_says_so(run: Path) -> None:
    same = evaluate(run, dataset=renamed(("k0", "k1", "k2")))
    assert same["class_mismatch"] is None
    allowed = evaluate(run, dataset=renamed(("cat", "dog", "bird")), allow_class_mismatch=True)
    assert allowed["class_mismatch"] == (
        "dataset 'other' has other classes than the run: cat, dog, bird; the run's: k0, k1, k2; "
        "its labels were scored as the run's classes by position"
    )
    assert allowed["accuracy"] == same["accuracy"]  # the same images and labels: same figures


def test_long_class_lists_are_abbreviated(run: Path) -> None:
    from mlplab.analysis.evaluate import class_list

    assert class_list([str(d) for d in range(10)]) == "0, 1, 2, 3, 4, ... (10 classes)"
    assert class_list(["a", "b"]) == "a, b"


def test_the_cli_refuses_in_one_line_and_allows_with_the_flag(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = renamed(("k0", "k1", "k2"))  # a CSV's classes are its label values: 0, 1, 2
    rows = np.concatenate([data.test.labels.numpy()[:, None], data.test.images.flatten(1)], 1)
    csv = tmp_path / "other.csv"
    np.savetxt(csv, rows, fmt="%d", delimiter=",")
    assert main(["evaluate", str(run), "--dataset", str(csv)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"mlplab: error: dataset 'other.csv' has other classes than run {run}: 0, 1, 2; the "
        "run's: k0, k1, k2 (its labels would be scored as the run's classes by position); pass "
        "--allow-class-mismatch (allow_class_mismatch=True) to score it anyway\n"
    )
    assert main(["evaluate", str(run), "--dataset", str(csv), "--allow-class-mismatch"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(
        "warning: dataset 'other.csv' has other classes than the run: 0, 1, 2; the run's: k0, "
        "k1, k2; its labels were scored as the run's classes by position\n"
    )
    assert "accuracy" in out
