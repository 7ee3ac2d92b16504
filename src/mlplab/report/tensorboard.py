"""TensorBoard event files from a run directory, written after training.

``write_events(run_dir)`` reads the run's files and writes ``RUN/tensorboard/`` for
``tensorboard --logdir``:

- scalars per epoch from ``metrics.jsonl``: ``loss/train``, ``loss/val``, ``accuracy/train``,
  ``accuracy/val`` (or ``r2/val``), ``lr``, ``time/epoch_seconds``, each at its epoch, with
  the wall time the epoch ended; and the kept weights' ``test/loss``, ``test/accuracy``
  (``test/r2``) at the kept epoch
- histograms of every tensor in ``model.safetensors`` (``weights/hidden.0.linear.weight``, ...)
- images: the first layer's strongest units reshaped to the input (what each unit looks for),
  and a few test images when the run's data can be reloaded (skipped otherwise)
- text: the config (YAML) and the summary

The training loop is untouched: everything comes from the run directory, so any finished
(or interrupted) run can be looked at this way, and ``mlplab runs --tensorboard`` puts
many runs side by side. Event files this function wrote before are replaced, so running
it again never doubles a curve; only those: its event files end in ``.mlplab`` (in the run's
own ``tensorboard/`` folder, older unmarked ones are its too), so pointing ``out`` at another
tool's log folder deletes nothing of theirs. Needs ``pip install 'mlplab[tensorboard]'``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, MlplabError, RunError
from ..extras import require
from ..files.atomic import check_folder, os_errors
from ..progress import logger
from ..run.directory import MODEL, WEIGHTS, Run

__all__ = ["SCALARS", "write_events", "write_events_for_runs"]

SCALARS = {  # metrics.jsonl key -> TensorBoard tag
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/val",
    "val_r2": "r2/val",
    "lr": "lr",
    "epoch_seconds": "time/epoch_seconds",
}
TEST_SCALARS = {  # summary.json key -> tag, drawn at the kept epoch (a regression: no accuracy)
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
    "test_r2": "test/r2",
}
FOLDER = "tensorboard"
FIRST_LAYER_UNITS = 16  # first-layer units shown as images
EVENTS = re.compile(r"^events\.out\.tfevents\.")
SUFFIX = ".mlplab"  # ends the names of the event files written here: ours to replace


def write_events(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    samples: int = 16,
    data_dir: str | Path | None = None,
) -> Path:
    """Write a run's TensorBoard event files into ``out`` (default ``RUN/tensorboard``) and
    return that folder. ``samples`` test images are added when the data reloads (0: none).

    Every run file is read (through :class:`~mlplab.run.directory.Run`'s bounded readers: a FIFO, a
    device, a huge or non-UTF-8 file is one line) before anything is written; the event file
    is written in a temporary folder inside ``out`` and moved into place only once whole, so
    a failure leaves ``out`` as it was.
    """
    if samples < 0:
        raise ConfigError(f"--samples must be >= 0; got {samples}")
    require("tensorboard", "tensorboard", "mlplab tensorboard")
    writer_module = require("torch.utils.tensorboard", "tensorboard", "mlplab tensorboard")
    path = Path(run_dir)
    run = Run.open(path, need_model=False)  # the one-line error for a missing or foreign folder
    history, summary = run.metrics(), run.summary()
    if not history:
        raise RunError(
            f"run directory {path} has no metrics.jsonl yet: no epoch finished, nothing to show"
        )
    config = run.config().to_yaml()  # bounded, a regular file, UTF-8 YAML: else one line
    best = int(summary.get("best_epoch") or len(history))
    model = _model(run, samples, data_dir) if _has_model(path) else _Pictures()
    folder = Path(out) if out is not None else path / FOLDER
    check_folder(folder, link_ok=out is not None)  # RUN/tensorboard: a real folder, not a link
    start = _started(path)
    made = not os.path.lexists(folder)
    with os_errors(folder, "choose another --out"):  # a full disk, a read-only folder: one line
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mlplab-tensorboard-", dir=folder))
        try:
            writer = writer_module.SummaryWriter(log_dir=str(staging), filename_suffix=SUFFIX)
            try:
                _write(writer, history, summary, best, start, config, model)
                writer.flush()
            finally:
                writer.close()
            written = [f for f in staging.iterdir() if EVENTS.match(f.name)]
            for old in folder.iterdir():  # our own earlier files: a second run must not double
                if _ours(old, default=out is None):
                    old.unlink()
            for file in written:
                os.replace(file, folder / file.name)  # a fresh name (time, host, process)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if made:  # the folder this call made, empty again: gone too
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def write_events_for_runs(
    run_dirs: Iterable[str | Path], root: str | Path, out: str | Path
) -> list[MlplabError]:
    """Write the events of several runs under ``out``, each at its place relative to ``root``
    (``mlplab runs ROOT --tensorboard OUT``), without test images. A run that cannot be read
    is skipped, not the end of the others: the errors of the skipped runs are returned."""
    root, out = Path(root), Path(out)
    skipped = []
    for run_dir in map(Path, run_dirs):
        target = out / (run_dir.relative_to(root) if run_dir != root else run_dir.name)
        try:
            write_events(run_dir, target, samples=0)
        except MlplabError as exc:
            skipped.append(exc)
    return skipped


@dataclass
class _Pictures:
    """What the model adds, computed before anything is written: tag -> tensor."""

    histograms: dict[str, torch.Tensor] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)


def _has_model(path: Path) -> bool:
    """The run has weights to show (present, whatever they are: their reader judges them)."""
    return any(os.path.lexists(path / name) for name in (MODEL, WEIGHTS))


def _write(
    writer: Any,
    history: list[dict[str, Any]],
    summary: dict[str, Any],
    best: int,
    start: float | None,
    config: str,
    model: _Pictures,
) -> None:
    """Everything into the event file: curves, test figures, the model's pictures, texts."""
    for record in history:
        when = start + record["elapsed_seconds"] if start and "elapsed_seconds" in record else None
        for key, tag in SCALARS.items():
            if record.get(key) is not None:
                writer.add_scalar(tag, float(record[key]), int(record["epoch"]), walltime=when)
    for key, tag in TEST_SCALARS.items():
        if summary.get(key) is not None and not (key == "test_accuracy" and "test_r2" in summary):
            writer.add_scalar(tag, float(summary[key]), best)
    for tag, tensor in model.histograms.items():
        writer.add_histogram(tag, tensor, best)
    for tag, tensor in model.images.items():
        writer.add_images(tag, tensor, best)
    writer.add_text("config", _code(config), 0)
    if summary:
        writer.add_text("summary", _code(json.dumps(summary, indent=2)), best)


def _model(run: Run, samples: int, data_dir: Any) -> _Pictures:
    """Weight histograms, the first layer as images, and a few test images."""
    from ..analysis.weights import first_layer

    model, _, classes = run.load_model()
    pictures = _Pictures()
    for name, tensor in model.state_dict().items():
        pictures.histograms[f"weights/{name}"] = tensor.detach().cpu()
    _, h, w = model.input_shape
    if h * w == 1:  # tabular features: no picture to draw
        return pictures
    first = first_layer(model, n=FIRST_LAYER_UNITS, classes=classes)
    units = torch.from_numpy(first.weights)
    scale = units.abs().flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1, 1)
    pictures.images[f"first_layer/{first.layer}"] = units / scale * 0.5 + 0.5
    if samples <= 0:
        return pictures
    from ..run.splits import run_dataset

    try:
        data = run_dataset(run, data_dir=data_dir)
    except (MlplabError, OSError) as exc:  # offline, moved, passed in memory: skip the pictures
        logger.info(f"tensorboard: no sample images ({exc})")
        return pictures
    pictures.images["samples/test"] = data.test.images[:samples].float() / 255
    return pictures


def _ours(file: Path, *, default: bool) -> bool:
    """An event file this module wrote (a regular file, not a link): it may be deleted."""
    if not EVENTS.match(file.name) or not file.is_file() or file.is_symlink():
        return False
    return file.name.endswith(SUFFIX) or default  # the run's own folder: older unmarked ones too


def _started(path: Path) -> float | None:
    """When training began (seconds since the epoch), from the run folder's stamp."""
    match = re.match(r"^(\d{8}-\d{6})", path.name)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").timestamp()


def _code(text: str) -> str:
    """TensorBoard renders text as Markdown: indent it into a code block."""
    return "\n".join("    " + line for line in text.splitlines())
