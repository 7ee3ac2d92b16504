"""Evaluation from a run directory alone: the best weights, the run's own data and splits.

:func:`evaluate` rebuilds the best model from the run, reloads the data it was trained on
(as ``dataset.json`` records it) and scores the split asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import Dataset
from ..data.splits import configured_splits
from ..errors import RunError
from ..files.limits import printable
from ..model.heads import CLASSIFICATION_LOSSES
from ..run.directory import Run
from ..run.splits import run_dataset
from ..training.device import select_device
from ..training.metrics import evaluate_split
from ..trust.calibration import calibration_figures, outputs_on
from ..trust.rejection import Rejector, why_off

__all__ = ["SPLITS", "class_list", "evaluate"]

SPLITS = ("test", "val", "train")
SHOWN_CLASSES = 5  # class names written out in a mismatch message, then "... (N classes)"


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    dataset: Dataset | str | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    reject: bool = True,
    allow_class_mismatch: bool = False,
) -> dict[str, Any]:
    """Score a run's best weights on a split of the data it was trained on.

    ``split`` is test, val or train (val and train are the run's own, rebuilt from its
    config and seeds). ``dataset`` scores another dataset of the same image shape and
    number of classes instead (its test split, or its training split for val/train).
    Returns ``{"loss", "accuracy", "samples", "per_class_accuracy", "r2", "rmse", "mae",
    "classes", "dataset", "split", "task", "loss_function", "ece", "ece_uncalibrated", "nll",
    "brier", "temperature"}``: a classification has an accuracy and no R², RMSE or MAE (None);
    a regression the other way round, and its ``loss_function`` names the loss: the run's
    ``train.loss`` (mse or mae) for a regression. The calibration figures (a classification's
    only, else None) use the run's temperature (:mod:`mlplab.trust.calibration`), all but
    ``ece_uncalibrated``; ``accuracy`` and ``loss`` are the model's own. With the run's
    rejection of unfamiliar inputs (:mod:`mlplab.trust.rejection`; ``reject=False`` turns it
    off): ``"rejected_fraction"`` and ``"accepted_accuracy"`` (the accuracy on the inputs
    it accepts), else None, and ``"rejection_off"``: why there is none (None when on or
    turned off by the caller).

    Another ``dataset`` whose class names differ from the run's (names or order) is refused
    (RunError): its labels would be scored as the run's classes by position, and a digits
    model "evaluated" on Fashion-MNIST gave 6%. ``allow_class_mismatch`` scores it anyway;
    ``"class_mismatch"`` then says so in one line (None when the classes are the run's).
    """
    if split not in SPLITS:
        raise RunError(f"split must be one of {', '.join(SPLITS)}; got '{split}'")
    run = Run.open(run_dir)
    config = run.config()
    device = select_device(device)
    model, normalization, classes = run.load_model(device)  # first: the cheap checks
    data = run_dataset(run, dataset=dataset, data_dir=data_dir, same_data=False)
    mismatch = _class_mismatch(run, data, list(classes), allow_class_mismatch)
    train, val, test = configured_splits(data, config.data)
    chosen = {"test": test, "val": val, "train": train}[split]
    if len(chosen) == 0:
        raise RunError(
            f"run {run.path} holds out no {split} split (data.val_size={config.data.val_size:g}); "
            f"use --split {' or '.join(s for s in SPLITS if s != split)}"
        )
    scale, offset = normalization.affine(device)
    loss = config.train.loss if data.task == "regression" else None
    scores = evaluate_split(
        model, chosen.to(device), scale, offset, batch_size=config.train.eval_batch_size, loss=loss
    )
    loss_function = loss or CLASSIFICATION_LOSSES[model.head]
    calibrated: dict[str, float | None] = dict.fromkeys(
        ("ece", "ece_uncalibrated", "nll", "brier", "temperature")
    )
    if loss is None:  # a classification: its calibration on the split
        batch = config.train.eval_batch_size
        outputs, labels = outputs_on(model, chosen, scale, offset, batch_size=batch)
        calibrated.update(calibration_figures(model.head, outputs, labels, run.temperature()))
    rejection: dict[str, Any] = {
        "rejected_fraction": None,
        "accepted_accuracy": None,
        "rejection_off": None,
    }
    rejector = Rejector.load(run) if reject and loss is None else None
    if rejector is not None:
        batch = config.train.eval_batch_size
        rejection.update(rejector.figures(model, chosen.to(device), batch_size=batch))
    elif reject and loss is None:
        rejection["rejection_off"] = why_off(run)
    return {
        **scores.to_dict(),
        "classes": list(classes),
        "dataset": data.name,
        "split": split,
        "task": data.task,
        "loss_function": loss_function,
        "class_mismatch": mismatch,
        **calibrated,
        **rejection,
    }


def class_list(names: list[str]) -> str:
    """``names`` joined by commas, the first SHOWN_CLASSES of a longer list then a count."""
    if len(names) <= SHOWN_CLASSES:
        return ", ".join(names)
    return ", ".join(names[:SHOWN_CLASSES]) + f", ... ({len(names)} classes)"


def _class_mismatch(run: Run, data: Dataset, classes: list[str], allow: bool) -> str | None:
    """None when ``data`` has the run's class names (a regression has none); else RunError,
    or with ``allow`` the line that says what was scored."""
    theirs = [printable(name) for name in data.classes]
    if data.task == "regression" or list(data.classes) == classes:
        return None
    ours = class_list([printable(name) for name in classes])
    named = f"dataset '{printable(data.name)}' has other classes than"
    if not allow:
        raise RunError(
            f"{named} run {run.path}: {class_list(theirs)}; the run's: {ours} (its labels would "
            "be scored as the run's classes by position); pass --allow-class-mismatch "
            "(allow_class_mismatch=True) to score it anyway"
        )
    return (
        f"{named} the run: {class_list(theirs)}; the run's: {ours}; its labels were scored as "
        "the run's classes by position"
    )
