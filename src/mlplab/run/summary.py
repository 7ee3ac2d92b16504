"""A run's summary, ``summary.json``: the kept weights' test scores, how training went, and
where it ran (device, threads, library versions), in one flat record the runs table, the
report and a notebook read.

Training hands the facts over; nothing here imports :mod:`mlplab.training` (run/ sits below
it), so the test scores come in as anything with a :class:`TestScores`' attributes.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch

from .. import __version__
from ..data import Dataset

__all__ = ["TestScores", "environment", "run_summary"]


class TestScores(Protocol):
    """What the summary reads of a split's scores (:class:`mlplab.training.metrics.Scores`)."""

    loss: float
    accuracy: float | None  # None for a regression
    per_class_accuracy: list[float]
    r2: float | None  # regression only
    rmse: float | None
    mae: float | None


def run_summary(
    data: Dataset,
    test: TestScores,
    history: list[dict[str, Any]],
    *,
    best_epoch: int,
    epochs_planned: int,
    wall_seconds: float,
    parameters: int,
    samples: dict[str, int],
    seed: int,
    device: torch.device,
    world_size: int = 1,
    backend: str | None = None,
    dry_run: bool = False,
    interrupted: bool = False,
    calibration: Mapping[str, float] | None = None,
    rejection: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The summary of a run trained on ``data`` whose kept weights (those of ``best_epoch``,
    1-based) scored ``test``; ``history`` is the epochs' records (``metrics.jsonl``) and
    ``samples`` the size of each split; ``calibration``: a classifier's test ECE (calibrated
    and not), NLL and Brier score (:func:`mlplab.trust.calibration.calibration_figures`);
    ``rejection``: the test split's ``rejected_fraction`` and ``accepted_accuracy``
    (:mod:`mlplab.trust.rejection`).
    Keys in the order ``summary.json`` has them."""
    best = history[best_epoch - 1]
    train_seconds = sum(r["epoch_seconds"] for r in history)
    regression = data.task == "regression"
    return {
        "task": data.task,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        **(
            {
                "test_ece": calibration["ece"],
                "test_ece_uncalibrated": calibration["ece_uncalibrated"],
                "test_nll": calibration["nll"],
                "test_brier": calibration["brier"],
            }
            if calibration
            else {}
        ),
        **(
            {
                "test_rejected_fraction": rejection["rejected_fraction"],
                "test_accepted_accuracy": rejection["accepted_accuracy"],
            }
            if rejection
            else {}
        ),
        **(
            {"test_r2": test.r2, "test_rmse": test.rmse, "test_mae": test.mae} if regression else {}
        ),
        "test_per_class_accuracy": dict(zip(data.classes, test.per_class_accuracy, strict=True)),
        "best_epoch": best_epoch,
        "best_val_loss": best["val_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "epochs_run": len(history),
        "epochs_planned": epochs_planned,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / len(history),
        "wall_seconds": wall_seconds,
        "parameters": parameters,
        "dataset": data.name,
        "data_origin": data.origin,
        "samples": samples,
        "seed": seed,
        **environment(device, world_size, backend),
        "dry_run": dry_run,
        "interrupted": interrupted,
        "versions": {
            "mlplab": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "platform": platform.platform(),
    }


def environment(
    device: torch.device, world_size: int = 1, backend: str | None = None
) -> dict[str, Any]:
    """Where the run trained: the device and its name (the GPU's, or the CPU's), this
    process's thread count, and the data-parallel ranks (one process: size 1, no backend)."""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "world_size": world_size,
        "backend": backend,
    }
