"""Evaluation from a run directory, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, recall_score

from mlplab import Config, Run, RunError, evaluate, load_dataset, train
from mlplab.metrics import evaluate_split


def test_evaluate_matches_sklearn(tmp_path) -> None:
    config = Config().override({"data.dataset": "digits", "model.hidden": [24], "train.epochs": 3, "train.lr": 0.01,
                                "run.dir": str(tmp_path / "runs")})  # fmt: skip
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
    config = Config().override({"data.dataset": "digits", "model.hidden": [8], "train.epochs": 1,
                                "data.val_size": 0, "run.dir": str(tmp_path)})  # fmt: skip
    run_dir = train(config).run_dir
    with pytest.raises(
        RunError, match=r"holds out no val split \(data.val_size=0\); use --split test or train$"
    ):
        evaluate(run_dir, split="val")
    assert evaluate(run_dir, split="train")["samples"] == len(load_dataset("digits").train)
