"""`mlplab train --dataset <file or folder>` for every format, with no other flag than the
format's own; reload for evaluate; bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import make_dataset
from PIL import Image

from mlplab import Config, evaluate, train
from mlplab.cli import main

QUICK = ["--hidden", "16", "--epochs", "3", "--lr", "0.01", "--threads", "1", "--val-size", "0.1"]


def arrays(n: int = 300, size: int = 8, classes: int = 4, seed: int = 0, channels: int = 1):
    """Learnable uint8 images (N, C, size, size) and labels (see conftest.make_dataset)."""
    split = make_dataset(n_train=n, n_test=1, classes=classes, size=size, seed=seed).train
    images = split.images.numpy()
    return np.repeat(images, channels, axis=1), split.labels.numpy()


def trained(tmp_path: Path, capsys, *args: str) -> tuple[Path, dict]:
    argv = ["train", *QUICK, *args, "--runs-dir", str(tmp_path / "runs"), "-q"]  # args win
    assert main(argv) == 0, capsys.readouterr().err
    run = Path(capsys.readouterr().out.strip())
    return run, json.loads((run / "summary.json").read_text())


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool = False) -> Path:
    rows = np.column_stack([labels, images.reshape(len(images), -1)])
    head = (
        ",".join(["label"] + [f"pixel{i}" for i in range(rows.shape[1] - 1)]) + "\n"
        if header
        else ""
    )
    path.write_text(head + "\n".join(",".join(map(str, r)) for r in rows.tolist()) + "\n")
    return path


def test_csv_without_header_and_a_held_out_test_split(tmp_path: Path, capsys) -> None:
    images, labels = arrays()
    path = write_csv(tmp_path / "train.csv", images, labels)
    run, summary = trained(tmp_path, capsys, "--dataset", str(path))
    assert summary["samples"] == {"train": 216, "val": 24, "test": 60}  # 20% test, then 10% val
    assert summary["test_accuracy"] > 0.9
    info = json.loads((run / "dataset.json").read_text())
    assert info["image_shape"] == [1, 8, 8] and info["reload"]["dataset"] == str(path)
    assert evaluate(run)["accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )  # reloaded from the file


def test_csv_with_header_and_a_test_file(tmp_path: Path, capsys) -> None:
    images, labels = arrays()
    train_csv = write_csv(tmp_path / "train.csv", images, labels, header=True)
    test_images, test_labels = arrays(n=80, seed=1)
    test_csv = write_csv(tmp_path / "test.csv", test_images, test_labels, header=True)
    _, summary = trained(
        tmp_path, capsys, "--dataset", str(train_csv), "--test-dataset", str(test_csv)
    )
    assert summary["samples"]["test"] == 80 and summary["test_accuracy"] > 0.9


def test_hdf5_groups(tmp_path: Path, capsys) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        for split, seed, n in (("train", 0, 300), ("test", 1, 80)):
            images, labels = arrays(n=n, seed=seed)
            f[f"{split}/data"] = images.reshape(n, -1).astype(np.float32) / 255  # USPS's layout
            f[f"{split}/target"] = labels
    _, summary = trained(tmp_path, capsys, "--dataset", str(path))
    assert summary["samples"]["test"] == 80 and summary["test_accuracy"] > 0.9


def test_npz_keras_layout(tmp_path: Path, capsys) -> None:
    (x, y), (xt, yt) = arrays(), arrays(n=80, seed=1)
    np.savez(tmp_path / "mnist.npz", x_train=x[:, 0], y_train=y, x_test=xt[:, 0], y_test=yt)
    _, summary = trained(tmp_path, capsys, "--dataset", str(tmp_path / "mnist.npz"))
    assert summary["samples"]["test"] == 80 and summary["test_accuracy"] > 0.9


def test_rgb_image_folders_of_any_shape(tmp_path: Path, capsys) -> None:
    images, labels = arrays(n=200, size=12, classes=3, channels=3)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "photos" / f"class_{'abc'[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        rgb = image.transpose(1, 2, 0)[:, :10]  # 12 high, 10 wide
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(folder / f"{i}.png")
    run, summary = trained(
        tmp_path, capsys, "--dataset", str(tmp_path / "photos"), "--rotation", "5", "--hflip"
    )
    info = json.loads((run / "dataset.json").read_text())
    assert info["image_shape"] == [3, 12, 10] and info["classes"] == [
        "class_a",
        "class_b",
        "class_c",
    ]
    model = json.loads((run / "model.json").read_text())
    assert model["model"]["input_shape"] == [3, 12, 10] and len(model["normalization"]["mean"]) == 3
    assert summary["test_accuracy"] > 0.8


def test_cifar10_binary_batches_with_the_cifar10_preset(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, seed in [(f"data_batch_{i}", i) for i in range(1, 6)] + [("test_batch", 9)]:
        images, labels = arrays(n=40, size=32, classes=10, seed=seed, channels=3)
        records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(40, -1)], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    argv = [
        "train",
        "--preset",
        "cifar10",
        "--dataset",
        str(folder),
        "--dry-run",
        "--runs-dir",
        str(tmp_path / "r"),
        "-q",
    ]
    assert main(argv) == 0
    run = Path(capsys.readouterr().out.strip())
    assert json.loads((run / "dataset.json").read_text())["image_shape"] == [3, 32, 32]
    assert json.loads((run / "model.json").read_text())["classes"][0] == "airplane"


def test_tabular_regression_on_a_named_column(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 + rng.normal(scale=0.1, size=400)
    rows = "\n".join(f"{a:.5f},{b:.5f},{c:.5f},{t:.5f}" for (a, b, c), t in zip(x, y, strict=True))
    (tmp_path / "houses.csv").write_text("size,age,noise,price\n" + rows + "\n")
    flags = shlex.split("--target price --loss mae --epochs 40 --lr 0.02")
    run, summary = trained(tmp_path, capsys, "--dataset", str(tmp_path / "houses.csv"), *flags)
    assert summary["task"] == "regression" and summary["test_accuracy"] is None
    assert summary["test_r2"] > 0.95 and summary["test_rmse"] < 0.5
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["val_r2"] is not None
    assert evaluate(run)["r2"] == pytest.approx(summary["test_r2"])


def test_linreg_preset_agrees_with_scikit_learn(tmp_path: Path) -> None:
    result = train(Config.preset("linreg").override({"run.dir": str(tmp_path), "train.threads": 1}))
    line = result.summary["line"]
    assert line["slope"] == pytest.approx(line["sklearn_slope"], abs=0.05)
    assert line["intercept"] == pytest.approx(line["sklearn_intercept"], abs=0.05)
    assert line["sklearn_slope"] == pytest.approx(45.3, abs=0.5)  # make_regression's seed-0 line
    assert (result.run_dir / "line.png").stat().st_size > 1000 and result.summary["test_r2"] > 0.95


def test_logistic_preset_is_a_single_linear_layer(tmp_path: Path) -> None:
    config = Config.preset("logistic").override(
        {
            "data.dataset": "digits",
            "train.epochs": 20,
            "train.lr": 0.01,
            "run.dir": str(tmp_path),
            "train.threads": 1,
        }
    )
    result = train(config)
    assert result.model.hidden_sizes == [] and result.summary["parameters"] == 64 * 10 + 10
    assert result.summary["test_accuracy"] > 0.9


def test_usps_preset_on_real_data(tmp_path: Path) -> None:
    from conftest import real_data

    data_dir = real_data("usps", "usps.h5")
    config = Config.preset("usps").override(
        {"data.data_dir": str(data_dir), "run.dir": str(tmp_path), "train.threads": 1}
    )
    result = train(config)
    assert result.summary["samples"] == {"train": 6562, "val": 729, "test": 2007}
    assert result.summary["test_accuracy"] >= 0.94  # seed 0; 3 seeds in benchmarks/usps.py


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,2,3\n4,5\n", r"mlplab: error: .*bad.csv.*line 2"),
        ("1,2,x\n", r"mlplab: error: .*bad.csv.*"),
        ("", r"mlplab: error: .*bad.csv.*empty"),
    ],
)
def test_bad_csv_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys, content: str, message: str
) -> None:
    import re

    (tmp_path / "bad.csv").write_text(content)
    assert (
        main(
            ["train", "--dataset", str(tmp_path / "bad.csv"), "--runs-dir", str(tmp_path / "runs")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert re.match(message, err) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_data_inspect(tmp_path: Path, capsys) -> None:
    images, labels = arrays()
    path = write_csv(tmp_path / "train.csv", images, labels)
    assert main(["data", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "csv" in out and "1x8x8" in out and "300" in out
    assert main(["data", "inspect", "digits"]) == 0
    assert "1,347" in capsys.readouterr().out


def test_a_path_that_does_not_exist(tmp_path: Path, capsys) -> None:
    assert main(["train", "--dataset", str(tmp_path / "nope.csv")]) == 2
    assert "is neither a registered dataset" in capsys.readouterr().err


def test_regression_refuses_augmentation_and_class_heads(tmp_path: Path, capsys) -> None:
    runs = ["--runs-dir", str(tmp_path)]
    assert main(["train", "--preset", "linreg", "--rotation", "5", *runs]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: augmentation (rotation, shift, hflip, scale, elastic, erase) "
        "changes pixels: it does not apply to tabular regression"
    )
    assert main(["train", "--preset", "linreg", "--select", "val_accuracy", *runs]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: train.select=val_accuracy needs classes; a regression keeps the epoch "
        "of the lowest val_loss (or the last)"
    )
    assert main(["train", "--preset", "linreg", "--set", "train.label_smoothing=0.1", *runs]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: train.label_smoothing=0.1 smooths class targets; a regression has none "
        "(leave it at 0)"
    )
    assert main(["train", "--preset", "linreg", "--head", "softmax", *runs]) == 2
    assert (
        "model.head=softmax is for classes; a regression's output is a plain value"
        in capsys.readouterr().err
    )
    assert main(["train", "--dataset", "digits", "--task", "regression", *runs]) == 2
    assert (
        "model.task=regression but dataset 'digits' is a classification dataset "
        "(pass --target COLUMN" in capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []  # refused before any run directory was kept
