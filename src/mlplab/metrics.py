"""Metrics of a model on a split, and evaluation from a run directory alone.

:func:`evaluate_split` is what the training loop calls every epoch; :func:`evaluate` takes
only a run directory, rebuilds the best model from it, reloads the data it was trained on
(as ``dataset.json`` records it) and scores the split asked for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .batches import iterate_batches
from .data import Dataset, Split, load_dataset
from .data.splits import run_splits
from .device import select_device
from .errors import RunError
from .losses import loss_fn
from .model import MLP
from .run import Run

__all__ = ["SPLITS", "Scores", "evaluate", "evaluate_split", "run_dataset"]

SPLITS = ("test", "val", "train")
# what evaluate_split's loss is for each head (losses.loss_fn)
_CLASSIFICATION_LOSSES = {"logits": "cross-entropy", "log_softmax": "nll",
                          "softmax": "nll of probabilities"}  # fmt: skip


@dataclass
class Scores:
    """Loss and accuracy on a split, with the per-class picture."""

    loss: float
    accuracy: float | None  # fraction in [0, 1]; None for a regression
    samples: int
    per_class_accuracy: list[float] = field(default_factory=list)  # recall of each class
    r2: float | None = None  # regression only: coefficient of determination
    rmse: float | None = None
    mae: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def evaluate_split(
    model: MLP,
    split: Split,
    scale: torch.Tensor,
    offset: torch.Tensor,
    *,
    batch_size: int = 1000,
    max_batches: int | None = None,
    regression: str | None = None,
) -> Scores:
    """Score ``model`` on a device split (never augmented), in eval mode.

    Works on every device: per-batch loss sums stay on the device in float32 (MPS has no
    float64) and are added up on the host, exactly, once.
    """
    was_training = model.training
    model.eval()
    criterion = loss_fn(model.head, regression)
    loss_sums, predictions, labels = [], [], []
    for x, y in iterate_batches(split, batch_size, scale, offset, max_batches=max_batches):
        out = model(x)
        loss_sums.append(criterion(out, y) * len(y))
        predictions.append(out[:, 0] if regression else out.argmax(1))
        labels.append(y)
    model.train(was_training)
    if not labels:
        return Scores(loss=float("nan"), accuracy=float("nan"), samples=0)
    pred, true = torch.cat(predictions).cpu(), torch.cat(labels).cpu()
    total_loss = math.fsum(torch.stack(loss_sums).tolist())  # one transfer, summed exactly
    if regression:
        return _regression_scores(total_loss, pred.numpy(), true.numpy())
    n, hit = len(true), pred == true
    correct = torch.bincount(true[hit], minlength=model.classes).tolist()
    counts = torch.bincount(true, minlength=model.classes).tolist()
    return Scores(
        loss=total_loss / n,
        accuracy=int(hit.sum()) / n,
        samples=n,
        per_class_accuracy=[k / max(m, 1) for k, m in zip(correct, counts, strict=True)],
    )


def _regression_scores(total_loss: float, pred: Any, true: Any) -> Scores:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    n = len(true)
    return Scores(
        loss=total_loss / n,
        accuracy=None,
        samples=n,
        r2=float(r2_score(true, pred)) if n > 1 else float("nan"),
        rmse=float(mean_squared_error(true, pred) ** 0.5),
        mae=float(mean_absolute_error(true, pred)),
    )


def run_dataset(
    run: Run,
    *,
    dataset: Dataset | str | None = None,
    data_dir: str | Path | None = None,
    same_data: bool = True,
) -> Dataset:
    """The data for a run: reloaded as ``dataset.json`` records it, or the one given.

    ``dataset`` (a :class:`Dataset` or a registered name) replaces the recorded one; it
    must have the run's image shape and number of classes, and with ``same_data`` also
    its name and class names (resuming needs the very same data).
    """
    info = run.dataset_info()
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, data_dir)
    if dataset is None:
        reload = info.get("reload")
        if not reload:
            raise RunError(
                f"run {run.path} was trained on dataset '{info['name']}' ({info.get('origin')}), "
                "which was passed in memory and cannot be reloaded; pass the dataset explicitly"
            )
        config = run.config().data
        options = {k: v for k, v in reload.items() if k != "dataset"}
        dataset = load_dataset(reload["dataset"], data_dir or config.data_dir,
                               download=config.download, mirror=config.mirror, **options)  # fmt: skip
    shape, classes = list(dataset.image_shape), list(dataset.classes)
    problems = []
    if shape != info["image_shape"]:
        problems.append(
            f"images are {_shape(shape)}, the model takes {_shape(info['image_shape'])}"
        )
    if len(classes) != len(info["classes"]):
        problems.append(f"{len(classes)} classes, the model has {len(info['classes'])}")
    if dataset.task != info.get("task", "classification"):
        problems.append(f"it is a {dataset.task} dataset, the run is a {info.get('task')}")
    if same_data and not problems and (dataset.name, classes) != (info["name"], info["classes"]):
        problems.append(f"it is '{dataset.name}', the run was trained on '{info['name']}'")
    if problems:
        raise RunError(
            f"dataset '{dataset.name}' does not fit run {run.path}: {'; '.join(problems)}"
        )
    return dataset


def evaluate(
    run_dir: str | Path,
    *,
    split: str = "test",
    dataset: Dataset | str | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Score a run's best weights on a split of the data it was trained on.

    ``split`` is test, val or train (val and train are the run's own, rebuilt from its
    config and seeds). ``dataset`` scores another dataset of the same image shape and
    number of classes instead (its test split, or its training split for val/train).
    Returns ``{"loss", "accuracy", "samples", "per_class_accuracy", "r2", "rmse", "mae",
    "classes", "dataset", "split", "task", "loss_function"}``: a classification has an
    accuracy and no R², RMSE or MAE (None); a regression the other way round, and its
    ``loss_function`` names the loss: the run's ``train.loss`` (mse or mae) for a regression.
    """
    if split not in SPLITS:
        raise RunError(f"split must be one of {', '.join(SPLITS)}; got '{split}'")
    run = Run.open(run_dir)
    config = run.config()
    device = select_device(device)
    model, normalization, classes = run.load_model(device)  # first: the cheap checks
    data = run_dataset(run, dataset=dataset, data_dir=data_dir, same_data=False)
    train, val, test = run_splits(
        data, config.data.limit, config.data.val_size, config.data.split_seed
    )
    chosen = {"test": test, "val": val, "train": train}[split]
    if len(chosen) == 0:
        raise RunError(
            f"run {run.path} holds out no {split} split (data.val_size={config.data.val_size:g}); "
            f"use --split {' or '.join(s for s in SPLITS if s != split)}"
        )
    scale, offset = normalization.affine(device)
    regression = config.train.loss if data.task == "regression" else None
    scores = evaluate_split(model, chosen.to(device), scale, offset,
                            batch_size=config.train.eval_batch_size, regression=regression)  # fmt: skip
    loss_function = regression or _CLASSIFICATION_LOSSES[model.head]
    return {**scores.to_dict(), "classes": list(classes), "dataset": data.name, "split": split,
            "task": data.task, "loss_function": loss_function}  # fmt: skip


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))
