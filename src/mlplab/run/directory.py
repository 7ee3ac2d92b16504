"""The run directory: the unit everything after training works from.

``runs/<YYYYmmdd-HHMMSS>-<name>/`` holds

- ``config.yaml``       the full resolved config (loads back to an identical Config)
- ``dataset.json``      what it was trained on: name, origin, image shape, classes, how to reload
- ``metrics.jsonl``     one JSON object per epoch
- ``model.safetensors`` the best-validation weights (no pickle: safe to load from anyone)
- ``model.json``        architecture, normalization and class names: rebuilds the model alone
- ``summary.json``      test results, timings, versions, device
- ``rejection.safetensors`` the constants of its rejection of unfamiliar inputs (class
                        means, precision, PCA axes, validation scores; model.json's "rejection"
                        says how to read them: :mod:`mlplab.trust.rejection`)
- ``checkpoint.pt``     the last epoch's full state, for ``mlplab train --resume`` (read back
                        with torch's restricted ``weights_only`` loader: tensors and plain data)
- ``train.log``         the console output of the run

Every file is written to a temporary name and renamed, so an interrupted run leaves
complete files or none; an existing run directory is never reused. One process at a time
trains in a run directory (:meth:`Run.exclusive`): a second ``--resume`` of a run that is
still training is refused instead of interleaving its checkpoints with the first's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..config import Config
from ..config.rules import is_path
from ..data import Normalization
from ..errors import ConfigError, FormatError, MlplabError, RunError
from ..files.atomic import (
    RUN_FILE_NAMES,
    atomic_file,
    describe,
    write_bytes_atomic,
    write_error,
    write_text_atomic,
)
from ..files.limits import check_alloc, check_declared, open_regular, shown
from ..model.mlp import MLP, check_size, check_spec, excerpt, input_features, state_shapes
from ..notebook.cards import card, run_facts, summary_notes
from ..notebook.svg import from_history
from ..vocab import DATASETS

__all__ = ["Run"]

CONFIG, DATASET, METRICS, WEIGHTS, MODEL, SUMMARY, CHECKPOINT, LOG, REJECTION = RUN_FILE_NAMES
CHECKPOINT_FORMAT = "mlplab-checkpoint-1"


@dataclass(frozen=True)
class Run:
    """A run directory on disk."""

    path: Path

    def __post_init__(self) -> None:  # Run("runs/x") as well as Run(Path("runs/x"))
        if not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))

    # ----- creating and writing -------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, name: str) -> Run:
        """Make a new, empty run directory; never reuse an existing one.

        ``name`` must be one plain folder name (no separator, not ``.`` or ``..``, no control
        character): the folder is always directly under ``root``.
        """
        root = Path(root)
        if (
            not isinstance(name, str)
            or name in (".", "..")
            or any(sep in name for sep in ("/", "\\", os.sep))
            or not name.isprintable()  # newlines, terminal escape codes
        ):
            raise RunError(
                f"run name {shown(name)} is not a plain folder name; use letters, digits, '-' or '_' "
                "(no '/', no control characters, not '.' or '..')"
            )
        if root.exists() and not root.is_dir():  # mkdir would say only "File exists"
            raise RunError(
                f"runs folder {root} is not a folder ({describe(root)}); choose another --runs-dir"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only disk, no permission: the system's refusal (exit 1)
            raise write_error(exc, root, "choose another --runs-dir") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{name}" if name else stamp
        for attempt in range(1, 1000):
            path = root / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                path.mkdir()  # atomic: fails if anything has the name, so two runs never share
                return cls(path)  # a folder and an existing one (or a link) is never reused
            except FileExistsError:
                continue
            except OSError as exc:  # a full or read-only disk, a name too long: one line
                fix = "choose another --runs-dir or a shorter --name"
                raise write_error(exc, path, fix) from None
        raise RunError(f"cannot find a free run folder name under {root} for '{base}'")

    def save_config(self, config: Config) -> None:
        config.save(self.path / CONFIG)

    def save_dataset(self, info: dict[str, Any]) -> None:
        """What the run was trained on: name, origin, image shape, classes, how to reload it."""
        write_text_atomic(self.path / DATASET, json.dumps(info, indent=2) + "\n")

    def save_metrics(self, history: list[dict[str, Any]]) -> None:
        write_text_atomic(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in history))

    def save_model(
        self,
        model: MLP,
        normalization: Normalization,
        classes: tuple[str, ...],
        task: str = "classification",
        temperature: float | None = None,
    ) -> None:
        """The weights and ``model.json``; ``temperature``: the calibration's (absent: 1)."""
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        # Serialized in memory, written by Python: safetensors' own writer reports a full
        # disk as a SafetensorError, not an OSError that becomes one clear line.
        data = safetensors_bytes(state, metadata={"format": "mlplab"})
        write_bytes_atomic(self.path / WEIGHTS, data)
        info = {
            "model": model.spec(),
            "normalization": normalization.to_dict(),
            "classes": list(classes),
            "task": task,
            **({"temperature": temperature} if temperature is not None else {}),
        }
        write_text_atomic(self.path / MODEL, json.dumps(info, indent=2) + "\n")

    def save_temperature(self, temperature: float) -> None:
        """Rewrite ``model.json`` (atomically) with the calibration's ``temperature``."""
        info = self.model_info()
        info["temperature"] = temperature
        write_text_atomic(self.path / MODEL, json.dumps(info, indent=2) + "\n")

    def save_rejection(self, block: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """The rejection's tensors (``rejection.safetensors``), then ``model.json`` with its
        ``"rejection"`` block, each atomically (a crash between leaves the run without one)."""
        data = safetensors_bytes(tensors, metadata={"format": "mlplab-rejection"})
        write_bytes_atomic(self.path / REJECTION, data)
        info = self.model_info()
        info["rejection"] = block
        write_text_atomic(self.path / MODEL, json.dumps(info, indent=2) + "\n")

    def save_summary(self, summary: dict[str, Any]) -> None:
        write_text_atomic(self.path / SUMMARY, json.dumps(summary, indent=2) + "\n")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """The last state (model, optimizer, RNGs, bookkeeping), written atomically."""
        with atomic_file(self.path / CHECKPOINT) as file:
            torch.save(state, file)  # to a file object: given a path, a full disk aborts torch

    @contextlib.contextmanager
    def exclusive(self, hold: bool = True) -> Iterator[None]:
        """The run directory held by this process while it trains there (``hold``: this
        rank writes; a data-parallel run's other ranks do not hold it): an advisory lock
        on the folder itself (``flock``, released when the process ends however it ends),
        so no lock file is left behind. Another process holding it is a RunError. Where
        the system has no such lock (Windows, some network disks) nothing is held."""
        try:
            import fcntl
        except ImportError:  # Windows
            fcntl = None  # type: ignore[assignment]
        fd = None
        if hold and fcntl is not None:
            with contextlib.suppress(OSError):  # a folder that cannot be opened: not held
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        if fd is None:
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunError(
                    f"run {self.path} is being trained by another process right now "
                    "(a training or a --resume still running); wait for it to end, then "
                    "resume it"
                ) from None
            except OSError:  # no flock here (some network file systems): not held
                pass
            yield
        finally:
            os.close(fd)

    # ----- reading --------------------------------------------------------------------
    # A run directory may come from anyone (a colleague's share, a downloaded archive):
    # every reader below treats its files as untrusted. Each file must be a regular file
    # (a FIFO would block, a device never end) of a bounded size, read once; its JSON is
    # checked for depth, types and ranges before anything is built from it; and each
    # problem is one RunError naming the file, the key and the value.
    @classmethod
    def open(cls, path: str | Path, *, need_model: bool = True) -> Run:
        """An existing run directory; with ``need_model``, one that has finished an epoch."""
        if not isinstance(path, (str, os.PathLike)):
            raise RunError(
                f"a run directory is a path (a str or a pathlib.Path); got {type(path).__name__} "
                f"{excerpt(path)}"
            )
        path = Path(path)
        if not path.is_dir():
            what = "is not a folder" if os.path.lexists(path) else "does not exist"
            raise RunError(
                f"run directory {path} {what}; pass a folder under runs/ made by `mlplab train`"
            )
        if not os.path.lexists(path / CONFIG):
            raise RunError(
                f"{path} is not a run directory (no {CONFIG}); pass a folder made by `mlplab train`"
            )
        # present, not "a regular file": a FIFO named model.json is refused by its reader,
        # in words, rather than taken for a missing file
        missing = [f for f in (WEIGHTS, MODEL) if not os.path.lexists(path / f)]
        if need_model and missing and os.path.lexists(path / CHECKPOINT):
            raise RunError(
                f"run directory {path} has no finished model yet (missing {', '.join(missing)}): "
                f"training stopped early (see its {LOG}); continue it with `mlplab train --resume {path}`"
            )
        if need_model and missing:
            raise RunError(
                f"run directory {path} is empty: training stopped before its first epoch ended "
                f"(missing {', '.join(missing)}); delete it and train again"
            )
        return cls(path)

    def config(self) -> Config:
        """``config.yaml`` (YAML's safe loader: no tags, no objects), of a bounded size.

        A dataset named by a bare folder name (``--dataset photos``) is a path relative to
        where training ran: read from elsewhere, or once the folder moved, it is neither a
        registered dataset nor a path, so the absolute path ``dataset.json`` recorded
        stands in for it (the run's own files still read; its data is found if it is there).
        """
        file = self.path / CONFIG
        _read_bytes(file, "a config", size_only=True)  # a regular file, not gigabytes
        config = Config().merge_file(file, validate=False)
        name = config.data.dataset
        if name not in DATASETS and not is_path(name) and os.path.lexists(self.path / DATASET):
            recorded = (self.dataset_info().get("reload") or {}).get("dataset")
            if isinstance(recorded, str) and recorded:
                config = config.override({"data.dataset": recorded}, validate=False)
        return config.validate()

    def dataset_info(self) -> dict[str, Any]:
        """``dataset.json``: what the run was trained on (see :meth:`Dataset.info`)."""
        file = self.path / DATASET
        if not os.path.lexists(file):
            raise RunError(
                f"run directory {self.path} has no {DATASET}: it was made by an older mlplab "
                "that did not record its dataset; pass the dataset explicitly"
            )
        info = _read_json(file, dict, "a dataset description")
        if not {"name", "image_shape", "classes"} <= info.keys():
            raise RunError(f"{file}: not a dataset description (needs name, image_shape, classes)")
        _check_dataset(file, info)
        return info

    def metrics(self) -> list[dict[str, Any]]:
        """``metrics.jsonl``: one record per finished epoch, each a JSON object whose known
        figures are numbers (or null)."""
        file = self.path / METRICS
        if not os.path.lexists(file):
            return []
        text = _decode(file, _read_bytes(file, "metrics"), "metrics")
        history = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            record = _parse_json(file, line, f"unreadable metrics at line {number}")
            if not isinstance(record, dict):
                raise RunError(f"{file}: line {number} is not an epoch's record (a JSON object)")
            _check_fields(file, record, _METRIC_FIELDS, where=f"line {number}: ")
            history.append(record)
        return history

    def summary(self) -> dict[str, Any]:
        """``summary.json`` (``{}`` before the run's end), its known figures checked."""
        file = self.path / SUMMARY
        if not os.path.lexists(file):
            return {}
        summary = _read_json(file, dict, "a run summary")
        _check_fields(file, summary, _SUMMARY_FIELDS)
        return summary

    def model_info(self) -> dict[str, Any]:
        """``model.json``, checked: an architecture MLP accepts (keys, types and ranges;
        :func:`mlplab.model.mlp.check_spec`), its normalization, class names and task. Nothing
        is built: sizes are checked against memory by :meth:`load_model`."""
        file = self.path / MODEL
        info = _read_json(file, dict, "a model description")
        try:
            for key in ("model", "normalization", "classes"):
                if key not in info:
                    raise KeyError(key)
            spec, classes, task = info["model"], info["classes"], info.get("task", "classification")
            check_spec(spec)
            if task not in TASKS:
                raise ValueError(f"task must be {' or '.join(TASKS)}; got {excerpt(task)}")
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise ValueError(f"classes must be a list of names; got {excerpt(classes)}")
            if task == "regression" and spec["classes"] != 1:
                raise ValueError(f"a regression has 1 output; model.classes is {spec['classes']}")
            if task == "classification" and len(classes) != spec["classes"]:
                raise ValueError(
                    f"classes must list one name per output: {len(classes):,} names, "
                    f"{spec['classes']:,} outputs"
                )
            _check_normalization(info["normalization"], spec["input_shape"][0])
            _check_temperature(info.get("temperature", 1.0))
            if "rejection" in info:
                _check_rejection(info["rejection"])
        except (KeyError, ValueError, ConfigError) as exc:
            raise RunError(
                f"{file}: not a model description made by mlplab ({_why(exc)})"
            ) from None
        return info

    def temperature(self) -> float:
        """The calibration's temperature from ``model.json`` (1 when absent: an older run, a
        regression, a run without a validation split)."""
        return float(self.model_info().get("temperature", 1.0))

    def rejection_tensors(self, expected: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
        """``rejection.safetensors``' float32 tensors, on the host: exactly ``expected`` (name:
        shape, from model.json's "rejection" block and the model), each finite. Checked from
        the header first, as the weights are (bounded, inside the file, of their shapes)."""
        file = self.path / REJECTION
        if not os.path.lexists(file):
            raise RunError(
                f"{file} is missing, though {MODEL} has a rejection block: copy the whole run "
                "directory (or pass --no-reject)"
            )
        _check_fit(file, expected, _weights_header(file))
        try:
            tensors = {k: v.float() for k, v in load_file(str(file)).items()}
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise RunError(f"{file}: not a readable safetensors file ({_why(exc)})") from None
        for name, tensor in tensors.items():
            if not torch.isfinite(tensor).all():
                raise RunError(f"{file}: tensor {name} holds NaN or infinite values")
        return tensors

    def load_model(
        self, device: torch.device | str = "cpu"
    ) -> tuple[MLP, Normalization, tuple[str, ...]]:
        """The trained model (eval mode), its input normalization and class names.

        Reads only ``model.json`` and ``model.safetensors`` (no pickle). Before any tensor
        is made it refuses a model whose weights would not fit in memory, a weights file
        that would not (or is not a regular file, or whose header declares bytes it does not
        hold), and weights that do not fit the architecture in ``model.json``: missing,
        extra or wrongly shaped tensors (a ``model.json`` declaring more parameters than the
        weights file holds).
        """
        info = self.model_info()
        spec = info["model"]
        features = input_features(spec["input_shape"], spec.get("crop", 0))
        check_size(
            features,
            spec["hidden"],
            spec["classes"],
            error=RunError,
            what=f"{self.path / MODEL}: the MLP of model.input_shape={excerpt(spec['input_shape'])}, "
            f"model.hidden={excerpt(spec['hidden'])}, model.classes={spec['classes']:,}",
        )
        file = self.path / WEIGHTS
        expected = state_shapes(features, spec["hidden"], spec["classes"])
        _check_fit(file, expected, _weights_header(file))
        model = MLP.from_spec(spec)
        try:
            state = load_file(str(file), device=str(device))
            model.load_state_dict({k: v.float() for k, v in state.items()})
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise RunError(f"{file}: not a readable safetensors file ({_why(exc)})") from None
        model.to(device).eval()
        return model, Normalization.from_dict(info["normalization"]), tuple(info["classes"])

    # ----- in a notebook ----------------------------------------------------------------
    def _repr_html_(self) -> str:
        return self.card_html()

    def card_html(self, extra: str = "", notes: tuple[str, ...] = ()) -> str:
        """The run as a notebook shows it: name, dataset, model, test figures, calibration
        and rejection when present, training time, path and the curves, from its JSON files
        alone (no weights, no data: milliseconds). A file that cannot be read becomes a note
        on the card, not an error. ``extra``: HTML appended (escaped by its maker)."""
        problems, spec = list(notes), None

        def read(what: Any, default: Any) -> Any:
            try:
                return what()
            except MlplabError as exc:
                problems.append(str(exc))
                return default

        summary = read(self.summary, {})
        history = read(self.metrics, [])
        if os.path.lexists(self.path / MODEL):
            spec = read(lambda: self.model_info()["model"], None)
        problems += summary_notes(summary)
        name = self.path.name
        return card(
            name,
            str(self.path),
            run_facts(summary, spec, history),
            from_history(name, history, summary.get("best_epoch")),
            notes=problems,
            extra=extra,
        )

    def load_checkpoint(self, device: torch.device | str = "cpu") -> dict[str, Any]:
        """The last state saved by :meth:`save_checkpoint`.

        Read with torch's restricted ``weights_only`` unpickler (tensors and plain
        containers: no code runs), from a regular file no larger than the memory budget
        whose zip members hold what they declare; the bookkeeping a resume relies on
        (epoch, step, history, ...) is checked for its types.
        """
        file = self.path / CHECKPOINT
        if not os.path.lexists(file):
            raise RunError(
                f"run directory {self.path} has no {CHECKPOINT} to resume from "
                "(it was made by an older mlplab, or stopped before its first epoch ended)"
            )
        try:
            with open_regular(file) as f:
                size = os.fstat(f.fileno()).st_size
                check_alloc(size, f"{file}", error=RunError)
                _check_zip(file, f, size)
                f.seek(0)
                state = torch.load(f, map_location=device, weights_only=True)
        except FormatError as exc:  # not a regular file, or not readable
            raise RunError(str(exc)) from None
        except RunError:
            raise
        except Exception as exc:  # a damaged or foreign file: the restricted loader refuses it
            raise RunError(f"{file}: not a readable mlplab checkpoint ({_why(exc)})") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{file}: not an mlplab checkpoint (format {CHECKPOINT_FORMAT})")
        _check_checkpoint(file, state)
        return state


# ----- reading untrusted files -------------------------------------------------------------
MAX_TEXT_BYTES = 16 * 1024**2  # a run's JSON and YAML files: mlplab writes kilobytes
_SAFETENSORS_HEADER_LIMIT = 100 * 1024**2  # safetensors' own bound on its JSON header
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
_DTYPE_BYTES |= {"U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
TASKS = ("classification", "regression")
_NUMBER, _WHOLE, _TEXT, _FLAG = "a number", "a whole number >= 0", "a string", "true or false"
# The figures readers use (runs, report, compare, serve, tensorboard): null or of this kind.
_METRIC_FIELDS = {
    "epoch": _WHOLE,
    **dict.fromkeys(
        [
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "val_r2",
            "lr",
            "epoch_seconds",
            "elapsed_seconds",
        ],
        _NUMBER,
    ),
}
_SUMMARY_FIELDS = {
    **dict.fromkeys(
        [
            "test_accuracy",
            "test_loss",
            "test_ece",
            "test_ece_uncalibrated",
            "test_nll",
            "test_brier",
            "test_rejected_fraction",
            "test_accepted_accuracy",
            "test_r2",
            "test_rmse",
            "test_mae",
            "best_val_loss",
            "best_val_accuracy",
            "train_seconds",
            "seconds_per_epoch",
            "wall_seconds",
        ],
        _NUMBER,
    ),
    **dict.fromkeys(
        [
            "best_epoch",
            "epochs_run",
            "epochs_planned",
            "parameters",
            "seed",
            "threads",
            "world_size",
        ],
        _WHOLE,
    ),
    **dict.fromkeys(["task", "dataset", "data_origin", "device", "device_name"], _TEXT),
    **dict.fromkeys(("interrupted", "dry_run"), _FLAG),
}
# dataset.json's "reload": the keyword arguments load_dataset is called with again
_RELOAD_FIELDS = {
    **dict.fromkeys(
        ["dataset", "format", "test_dataset", "target", "images_key", "labels_key"], _TEXT
    ),
    "test_size": _NUMBER,
    "split_seed": _WHOLE,
    "pixel_scale": _NUMBER,
    "image_shape": "3 whole numbers",
}


def _read_bytes(file: Path, what: str, *, size_only: bool = False) -> bytes:
    """The bytes of a regular file of at most MAX_TEXT_BYTES (``size_only``: just check)."""
    try:
        with open_regular(file) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_TEXT_BYTES:
                raise RunError(_too_big(file, what, size))
            if size_only:
                return b""
            data = f.read(MAX_TEXT_BYTES + 1)  # a file that grows (or lies) is still bounded
    except FormatError as exc:  # a FIFO, device or folder, or unreadable: its one line
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"{file}: cannot read {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_TEXT_BYTES:
        raise RunError(_too_big(file, what, len(data)))
    return data


def _too_big(file: Path, what: str, size: int) -> str:
    return (
        f"{file}: {size:,} bytes, more than the {MAX_TEXT_BYTES:,} mlplab reads for {what} "
        "(mlplab writes a few kilobytes: the file is damaged or was not written by mlplab)"
    )


def _decode(file: Path, data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunError(f"{file}: cannot read {what} (not UTF-8 text: byte {exc.start})") from None


def _parse_json(file: Path, text: str | bytes, problem: str) -> Any:
    """JSON from a file, or one RunError ``{file}: {problem} (why)``: malformed, nested too
    deeply (a RecursionError), or an integer too long to convert (a ValueError)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise RunError(f"{file}: {problem} (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, and integers of thousands of digits
        raise RunError(f"{file}: {problem} ({_why(exc)})") from None


def _read_json(file: Path, kind: type, what: str) -> Any:
    value = _parse_json(file, _decode(file, _read_bytes(file, what), what), f"cannot read {what}")
    if not isinstance(value, kind):
        raise RunError(f"{file}: not {what} (a JSON {kind.__name__} is expected)")
    return value


def _is(value: Any, kind: str) -> bool:
    if kind == _NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _WHOLE:
        return type(value) is int and value >= 0
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _FLAG:
        return isinstance(value, bool)
    return isinstance(value, list) and len(value) == 3 and all(_is(v, _WHOLE) for v in value)


def _check_fields(
    file: Path, record: dict[str, Any], fields: dict[str, str], where: str = ""
) -> None:
    """Each known field of ``record`` is null or of its kind (NaN is a number)."""
    for key, kind in fields.items():
        value = record.get(key)
        if value is not None and not _is(value, kind):
            raise RunError(f"{file}: {where}{key} must be {kind} or null; got {excerpt(value)}")


def _check_dataset(file: Path, info: dict[str, Any]) -> None:
    if not isinstance(info["name"], str):
        raise RunError(f"{file}: name must be a string; got {excerpt(info['name'])}")
    shape, classes = info["image_shape"], info["classes"]
    if not (_is(shape, "3 whole numbers") and all(v >= 1 for v in shape)):
        raise RunError(f"{file}: image_shape must be 3 whole numbers >= 1; got {excerpt(shape)}")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise RunError(f"{file}: classes must be a list of names; got {excerpt(classes)}")
    if info.get("task", "classification") not in TASKS:
        raise RunError(f"{file}: task must be {' or '.join(TASKS)}; got {excerpt(info['task'])}")
    reload = info.get("reload")
    if reload is None:
        return
    if not isinstance(reload, dict) or not isinstance(reload.get("dataset"), str):
        raise RunError(f"{file}: reload must be an object naming a dataset; got {excerpt(reload)}")
    for key in reload:
        if key not in _RELOAD_FIELDS:
            raise RunError(
                f"{file}: reload has an unknown key {excerpt(key)}; it may hold "
                f"{', '.join(_RELOAD_FIELDS)}"
            )
    _check_fields(file, reload, _RELOAD_FIELDS, where="reload.")


def _check_normalization(norm: Any, channels: int) -> None:
    """``{"mean": [...], "std": [...]}``: one finite mean and one finite std > 0 per channel."""
    if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
        raise ValueError(f"normalization must hold mean and std; got {excerpt(norm)}")
    for key in ("mean", "std"):
        values = norm[key]
        if not (
            isinstance(values, list)
            and len(values) == channels
            and all(_is(v, _NUMBER) and math.isfinite(v) for v in values)
            and (key == "mean" or all(v > 0 for v in values))
        ):
            what = "finite numbers" if key == "mean" else "finite numbers > 0"
            raise ValueError(
                f"normalization.{key} must be {channels} {what} (one per channel); got {excerpt(values)}"
            )


def _check_temperature(value: Any) -> None:
    """A temperature is a finite number > 0 (softmax(z / T) needs one)."""
    if not (_is(value, _NUMBER) and math.isfinite(value) and value > 0):
        raise ValueError(f"temperature must be a finite number > 0; got {excerpt(value)}")


_REJECTION_FIELDS = {
    **dict.fromkeys(["accept", "threshold", "ink_margin", "ink_limit"], _NUMBER),
    **dict.fromkeys(["version", "components", "reference"], _WHOLE),
    **dict.fromkeys(["method", "pixels", "combine"], _TEXT),
    "features": _FLAG,
}


def _check_rejection(block: Any) -> None:
    """model.json's "rejection": each field of its kind (finite), ``accept`` in (0, 1], at
    least one component and one reference score (the tensors' shapes follow from these)."""
    if not isinstance(block, dict):
        raise ValueError(f"rejection must be an object; got {excerpt(block)}")
    for key, kind in _REJECTION_FIELDS.items():
        value = block.get(key)
        if not _is(value, kind) or (kind == _NUMBER and not math.isfinite(value)):
            raise ValueError(f"rejection.{key} must be {kind}; got {excerpt(value)}")
    if block["method"] != "max-rank" or block["version"] != 1:
        raise ValueError(
            f"rejection method {excerpt(block['method'])} version {block['version']} is not "
            "one this mlplab reads (max-rank, version 1)"
        )
    if block["pixels"] not in ("mahalanobis", "ppca", "reconstruction"):
        raise ValueError(
            "rejection.pixels must be mahalanobis, ppca or reconstruction; got "
            f"{excerpt(block['pixels'])}"
        )
    if block.get("residual", False) not in (True, False):
        raise ValueError(
            f"rejection.residual must be true or false; got {excerpt(block['residual'])}"
        )
    if block["pixels"] == "ppca" and not block.get("residual"):
        raise ValueError("rejection.pixels ppca needs its residual variance (residual: true)")
    if block.get("confidence", "energy") not in ("energy", "max_log_p"):
        raise ValueError(
            f"rejection.confidence must be energy or max_log_p; got {excerpt(block['confidence'])}"
        )
    if block["combine"] not in ("max", "fisher"):
        raise ValueError(
            f"rejection.combine must be max or fisher; got {excerpt(block['combine'])}"
        )
    if not 0 < block["accept"] <= 1:
        raise ValueError(f"rejection.accept must be in (0, 1]; got {excerpt(block['accept'])}")
    for key in ("components", "reference"):
        if not 1 <= block[key] <= 1_000_000:
            raise ValueError(f"rejection.{key} must be from 1 to 1,000,000; got {block[key]:,}")


def _weights_header(file: Path) -> dict[str, tuple[int, ...]]:
    """The tensors ``model.safetensors`` holds (name: shape), from its header, checked
    against the file: its size within the memory budget, each tensor's bytes inside the
    file and its shape's worth. Read before safetensors reads the file."""
    try:
        with open_regular(file) as f:
            size = os.fstat(f.fileno()).st_size
            check_alloc(size, f"{file}", error=RunError)
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= min(size - 8, _SAFETENSORS_HEADER_LIMIT):
                raise RunError(
                    f"{file}: not a readable safetensors file (its header's length "
                    f"{length:,} does not fit its {size:,} bytes)"
                )
            header = _parse_json(file, f.read(length), "not a readable safetensors file")
    except FormatError as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"{file}: cannot read the weights ({exc.strerror or exc})") from None
    if not isinstance(header, dict):
        raise RunError(f"{file}: not a readable safetensors file (its header is not an object)")
    data, shapes = size - 8 - length, {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            if not (isinstance(shape, list) and all(_is(v, _WHOLE) for v in shape)):
                raise ValueError(f"shape {excerpt(shape)}")
            if not (_is(begin, _WHOLE) and _is(end, _WHOLE) and begin <= end <= data):
                raise ValueError("its bytes lie outside the file")
            if end - begin != math.prod(shape) * _DTYPE_BYTES[dtype]:
                raise ValueError("its shape and its bytes disagree")
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(
                f"{file}: not a readable safetensors file (tensor {excerpt(name)}: {_why(exc)})"
            ) from None
        shapes[name] = tuple(shape)
    return shapes


def _check_fit(
    file: Path, expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> None:
    """The weights file holds exactly the tensors the architecture has, of their shapes."""
    missing = sorted(expected.keys() - found.keys())
    extra = sorted(found.keys() - expected.keys())
    wrong = [
        f"{k} {found[k]} (expected {expected[k]})"
        for k in expected.keys() & found.keys()
        if found[k] != expected[k]
    ]
    if missing or extra or wrong:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unexpected {', '.join(extra)}"] if extra else []
        problems += [f"wrong shape {', '.join(sorted(wrong))}"] if wrong else []
        message = f"{file}: the weights do not fit the architecture in {MODEL}: "
        raise RunError(excerpt(message + "; ".join(problems), quote=False, limit=1000))


def _check_zip(file: Path, f: Any, size: int) -> None:
    """torch.save's zip holds its members uncompressed: each must declare no more bytes
    than it stores, so that no member is allocated at a size the file does not back."""
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise RunError(
            f"{file}: not a readable mlplab checkpoint (not a zip written by torch.save: {_why(exc)})"
        ) from None
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED or member.file_size != member.compress_size:
            raise RunError(
                f"{file}: not a readable mlplab checkpoint (member {excerpt(member.filename)} "
                f"declares {member.file_size:,} bytes and stores {member.compress_size:,})"
            )
    check_declared(sum(m.file_size for m in members), size, f"{file}")


def _check_checkpoint(file: Path, state: dict[str, Any]) -> None:
    """The bookkeeping a resume reads before anything else: whole numbers and records."""
    for key in ("epoch", "step", "best_epoch"):
        if not _is(state.get(key), _WHOLE):
            raise RunError(f"{file}: {key} must be {_WHOLE}; got {excerpt(state.get(key))}")
    threads = state.get("threads")
    if threads is not None and not (_is(threads, _WHOLE) and 1 <= threads <= 4096):
        raise RunError(
            f"{file}: threads must be a whole number from 1 to 4096; got {excerpt(threads)}"
        )
    history = state.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise RunError(f"{file}: history must be a list of epoch records; got {excerpt(history)}")
    if state["epoch"] != len(history):
        raise RunError(
            f"{file}: epoch is {state['epoch']} but the history has {len(history)} epochs"
        )
    for number, record in enumerate(history, 1):
        _check_fields(file, record, _METRIC_FIELDS, where=f"history[{number}]: ")


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return excerpt(
        f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__, quote=False, limit=300
    )
