"""A run's summary: the test scores, how training went and where, from the facts training
hands over, in the order summary.json has them."""

from __future__ import annotations

import platform

import torch

from mlplab import Dataset, Split
from mlplab.run.summary import environment, run_summary
from mlplab.training.metrics import Scores

HISTORY = [
    {"epoch": 1, "val_loss": 0.9, "val_accuracy": 0.7, "epoch_seconds": 2.0},
    {"epoch": 2, "val_loss": 0.5, "val_accuracy": 0.8, "epoch_seconds": 3.0},
    {"epoch": 3, "val_loss": 0.6, "val_accuracy": 0.9, "epoch_seconds": 4.0},
]
KEYS = [
    "task",
    "test_accuracy",
    "test_loss",
    "test_per_class_accuracy",
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "epochs_run",
    "epochs_planned",
    "train_seconds",
    "seconds_per_epoch",
    "wall_seconds",
    "parameters",
    "dataset",
    "data_origin",
    "samples",
    "seed",
    "device",
    "device_name",
    "threads",
    "world_size",
    "backend",
    "dry_run",
    "interrupted",
    "versions",
    "platform",
]


def summary(data, test: Scores, **kwargs) -> dict:
    facts = {
        "best_epoch": 2,
        "epochs_planned": 5,
        "wall_seconds": 12.5,
        "parameters": 123,
        "samples": {"train": 9, "val": 1, "test": 4},
        "seed": 7,
        "device": torch.device("cpu"),
    }
    return run_summary(data, test, HISTORY, **{**facts, **kwargs})


def test_a_classifiers_summary(tiny) -> None:
    per_class = [0.5, 1.0, 0.75, 1.0][: len(tiny.classes)]
    s = summary(tiny, Scores(0.4, 0.8, 4, per_class), interrupted=True)
    assert list(s) == KEYS
    assert s["task"] == "classification" and (s["test_accuracy"], s["test_loss"]) == (0.8, 0.4)
    assert s["test_per_class_accuracy"] == dict(zip(tiny.classes, per_class, strict=True))
    # the kept epoch's validation numbers; the epochs' time, and their mean
    assert (s["best_epoch"], s["best_val_loss"], s["best_val_accuracy"]) == (2, 0.5, 0.8)
    assert (s["epochs_run"], s["epochs_planned"]) == (3, 5)
    assert (s["train_seconds"], s["seconds_per_epoch"], s["wall_seconds"]) == (9.0, 3.0, 12.5)
    assert (s["dataset"], s["data_origin"], s["seed"]) == (tiny.name, tiny.origin, 7)
    assert (s["world_size"], s["backend"], s["dry_run"], s["interrupted"]) == (1, None, False, True)
    assert s["versions"]["torch"] == torch.__version__ and s["platform"] == platform.platform()


def test_a_regressions_summary_adds_its_scores_after_the_loss() -> None:
    features = Split(torch.rand(8, 3, 1, 1), torch.rand(8))
    data = Dataset("table", features, features[:4], (), "memory", task="regression")
    s = summary(data, Scores(0.2, None, 4, [], r2=0.9, rmse=0.3, mae=0.25))
    assert list(s)[:7] == [
        "task",
        "test_accuracy",
        "test_loss",
        "test_r2",
        "test_rmse",
        "test_mae",
        "test_per_class_accuracy",
    ]
    assert (s["test_r2"], s["test_rmse"], s["test_mae"]) == (0.9, 0.3, 0.25)
    assert s["test_accuracy"] is None and s["test_per_class_accuracy"] == {}


def test_the_environment_names_the_device_and_the_ranks() -> None:
    torch_threads = torch.get_num_threads()
    env = environment(torch.device("cpu"), world_size=2, backend="gloo")
    assert env == {
        "device": "cpu",
        "device_name": platform.processor() or platform.machine(),
        "threads": torch_threads,
        "world_size": 2,
        "backend": "gloo",
    }
