"""Evaluation from a run directory, checked against scikit-learn."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, recall_score

from mlplab import Config, Run, RunError, evaluate, load_dataset, train
from mlplab.training.metrics import evaluate_split


def test_evaluate_matches_sklearn(tmp_path) -> None:
    config = Config().override(
        {
            "data.dataset": "digits",
            "model.hidden": [24],
            "train.epochs": 3,
            "train.lr": 0.01,
            "run.dir": str(tmp_path / "runs"),
        }
    )
    result = train(config)
    metrics = evaluate(result.run_dir)
    assert metrics["accuracy"] == pytest.approx(result.summary["test_accuracy"])

    model, norm, classes = Run.open(result.run_dir).load_model()
    test = load_dataset("digits").test
    scale, offset = norm.affine()
    with torch.no_grad():
        probs = torch.softmax(model(test.images.float() * scale + offset), 1).numpy()
    y = test.labels.numpy()
    pred = probs.argmax(1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert metrics["loss"] == pytest.approx(log_loss(y, probs, labels=list(range(10))), rel=1e-4)
    np.testing.assert_allclose(
        metrics["per_class_accuracy"], recall_score(y, pred, average=None), rtol=1e-12
    )
    assert metrics["classes"] == list(classes) == [str(d) for d in range(10)]


def test_batch_size_does_not_change_scores(tiny) -> None:
    torch.manual_seed(0)
    from mlplab import MLP

    model = MLP(tiny.image_shape, [8], 4)
    scale, offset = tiny.train.images.new_ones(1).float().view(1, 1, 1) / 255, torch.zeros(1, 1, 1)
    a = evaluate_split(model, tiny.test, scale, offset, batch_size=7)
    b = evaluate_split(model, tiny.test, scale, offset, batch_size=1000)
    assert a.accuracy == b.accuracy and a.loss == pytest.approx(b.loss, rel=1e-6)


def test_a_run_without_validation_split_says_so(tmp_path) -> None:
    config = Config().override(
        {
            "data.dataset": "digits",
            "model.hidden": [8],
            "train.epochs": 1,
            "data.val_size": 0,
            "run.dir": str(tmp_path),
        }
    )
    run_dir = train(config).run_dir
    with pytest.raises(
        RunError, match=r"holds out no val split \(data.val_size=0\); use --split test or train$"
    ):
        evaluate(run_dir, split="val")
    assert evaluate(run_dir, split="train")["samples"] == len(load_dataset("digits").train)


@pytest.mark.parametrize(
    "kind, argv",
    [
        ("classification", shlex.split("--dataset digits --hidden 16 --epochs 1")),
        (
            "regression",
            shlex.split("--dataset make-regression --hidden 8 --epochs 2 --set train.loss=mae"),
        ),
        ("linear", shlex.split("--preset linreg --epochs 2")),
    ],
)
def test_evaluate_cli_on_every_kind_of_run(kind: str, argv: list, tmp_path, capsys) -> None:
    """Plain and --json, each kind prints its own figures (a regression printed "internal
    error": it formatted an accuracy of None)."""
    import json

    from mlplab.cli import main

    assert main(["train", *argv, "--runs-dir", str(tmp_path / "runs"), "-q"]) == 0
    run = capsys.readouterr().out.strip()
    summary = json.loads((tmp_path / run / "summary.json").read_text())
    assert main(["evaluate", run, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert main(["evaluate", run]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    if kind == "classification":
        assert metrics["task"] == "classification" and metrics["loss_function"] == "cross-entropy"
        assert metrics["accuracy"] == pytest.approx(summary["test_accuracy"])
        assert metrics["r2"] is None and len(metrics["per_class_accuracy"]) == 10
        assert lines[0] == f"{run}: digits test, 450 samples"
        assert lines[1] == (
            f"  loss {metrics['loss']:.4f} (cross-entropy)   accuracy {metrics['accuracy']:.2%}"
        )
        assert lines[2] == (
            f"  calibrated   ECE {metrics['ece']:.2%} (uncalibrated "
            f"{metrics['ece_uncalibrated']:.2%})   NLL {metrics['nll']:.4f}   Brier "
            f"{metrics['brier']:.4f}   temperature {metrics['temperature']:.3f}"
        )
        for key in ("ece", "ece_uncalibrated", "nll", "brier"):
            assert metrics[key] == pytest.approx(summary[f"test_{key}"], abs=1e-6)
        assert metrics["rejected_fraction"] == pytest.approx(summary["test_rejected_fraction"])
        assert lines[3].startswith(f"  rejected {metrics['rejected_fraction']:.2%} as unlike")
        assert lines[4].split() == ["class", "accuracy"] and len(lines) == 5 + 10
        return
    assert metrics["task"] == "regression" and metrics["accuracy"] is None
    assert metrics["loss_function"] == ("mae" if kind == "regression" else "mse")
    assert metrics["classes"] == [] and metrics["per_class_accuracy"] == []
    assert [metrics[k] for k in ("ece", "ece_uncalibrated", "nll", "brier", "temperature")] == [
        None
    ] * 5
    for key in ("r2", "rmse", "mae"):
        assert metrics[key] == pytest.approx(summary[f"test_{key}"], rel=1e-5)
    assert lines == [
        f"{run}: make-regression test, 100 samples",
        f"  loss {metrics['loss']:.4f} ({metrics['loss_function']})   R² {metrics['r2']:.4f}   "
        f"RMSE {metrics['rmse']:.4g}   MAE {metrics['mae']:.4g}",
    ]
