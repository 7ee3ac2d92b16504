"""The data of a run: reloaded as its ``dataset.json`` records it, checked against the model.

Everything after training (evaluate, the report, resume) gets a run's data here, so a
dataset that does not fit the run is refused in one place, with what differs.
"""

from __future__ import annotations

from pathlib import Path

from ..data import Dataset, load_dataset
from ..errors import RunError
from .directory import Run

__all__ = ["run_dataset"]


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
        dataset = load_dataset(
            reload["dataset"],
            data_dir or config.data_dir,
            download=config.download,
            mirror=config.mirror,
            **options,
        )
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


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))
