"""End to end on real MNIST: one epoch on a slice, through the CLI, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab.cli import main


def test_one_epoch_on_a_slice_of_mnist(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--preset", "tutorial", "--data-dir", str(mnist_dir), "--limit", "6000", "--epochs", "1",
            "--runs-dir", str(tmp_path / "runs"), "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "data     mnist: 5,400 train / 600 val / 10,000 test, 1x28x28, 10 classes" in out
    assert "limit    a seeded, class-stratified 6,000 of the 60,000 training samples" in out
    assert "parameters=222,360" in out
    run = Path(out.strip().splitlines()[-1].split("run directory: ")[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["samples"] == {"train": 5400, "val": 600, "test": 10000}
    assert summary["test_accuracy"] > 0.8  # one epoch on 5,400 augmented images (84.8% seen)
    assert summary["threads"] == 1 and summary["parameters"] == 222_360
    assert main(["evaluate", str(run), "--data-dir", str(mnist_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )


def test_dry_run_on_mnist(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "train",
                "--preset",
                "tutorial",
                "--data-dir",
                str(mnist_dir),
                "--dry-run",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "epoch 2/2" in capsys.readouterr().out
