"""The run directory: the unit everything after training works from.

``runs/<YYYYmmdd-HHMMSS>-<name>/`` holds

- ``config.yaml``       the full resolved config (loads back to an identical Config)
- ``dataset.json``      what it was trained on: name, origin, image shape, classes, how to reload
- ``metrics.jsonl``     one JSON object per epoch
- ``model.safetensors`` the best-validation weights (no pickle: safe to load from anyone)
- ``model.json``        architecture, normalization and class names: rebuilds the model alone
- ``summary.json``      test results, timings, versions, device
- ``checkpoint.pt``     the last epoch's full state, for ``mlplab train --resume`` (read back
                        with torch's restricted ``weights_only`` loader: tensors and plain data)
- ``train.log``         the console output of the run

Every file is written to a temporary name and renamed, so an interrupted run leaves
complete files or none; an existing run directory is never reused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from .atomic import atomic_file, write_bytes_atomic, write_text_atomic
from .config import Config
from .data import Normalization
from .errors import ConfigError, MlplabError, RunError
from .model import MLP, input_features

__all__ = ["Run"]

CONFIG, DATASET, METRICS, WEIGHTS, MODEL, SUMMARY, CHECKPOINT, LOG = (
    "config.yaml",
    "dataset.json",
    "metrics.jsonl",
    "model.safetensors",
    "model.json",
    "summary.json",
    "checkpoint.pt",
    "train.log",
)
CHECKPOINT_FORMAT = "mlplab-checkpoint-1"


@dataclass(frozen=True)
class Run:
    """A run directory on disk."""

    path: Path

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
                f"run name {name!r} is not a plain folder name; use letters, digits, '-' or '_' "
                "(no '/', no control characters, not '.' or '..')"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create runs folder {root}: {exc.strerror}") from None
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
                raise RunError(
                    f"cannot create the run folder {path}: {exc.strerror}; choose another "
                    "--runs-dir or a shorter --name"
                ) from None
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
    ) -> None:
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
        }
        write_text_atomic(self.path / MODEL, json.dumps(info, indent=2) + "\n")

    def save_summary(self, summary: dict[str, Any]) -> None:
        write_text_atomic(self.path / SUMMARY, json.dumps(summary, indent=2) + "\n")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """The last state (model, optimizer, RNGs, bookkeeping), written atomically."""
        with atomic_file(self.path / CHECKPOINT) as file:
            torch.save(state, file)  # to a file object: given a path, a full disk aborts torch

    # ----- reading --------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, need_model: bool = True) -> Run:
        """An existing run directory; with ``need_model``, one that has finished an epoch."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(
                f"run directory {path} does not exist; pass a folder under runs/ made by `mlplab train`"
            )
        if not (path / CONFIG).is_file():
            raise RunError(
                f"{path} is not a run directory (no {CONFIG}); pass a folder made by `mlplab train`"
            )
        missing = [f for f in (WEIGHTS, MODEL) if not (path / f).is_file()]
        if need_model and missing and (path / CHECKPOINT).is_file():
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
        return Config.load(self.path / CONFIG)

    def dataset_info(self) -> dict[str, Any]:
        """``dataset.json``: what the run was trained on (see :meth:`Dataset.info`)."""
        file = self.path / DATASET
        if not file.is_file():
            raise RunError(
                f"run directory {self.path} has no {DATASET}: it was made by an older mlplab "
                "that did not record its dataset; pass the dataset explicitly"
            )
        info = _read_json(file, dict, "a dataset description")
        if not {"name", "image_shape", "classes"} <= info.keys():
            raise RunError(f"{file}: not a dataset description (needs name, image_shape, classes)")
        return info

    def metrics(self) -> list[dict[str, Any]]:
        file = self.path / METRICS
        if not file.is_file():
            return []
        try:
            return [json.loads(line) for line in file.read_text().splitlines() if line]
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{file}: unreadable metrics ({exc})") from None

    def summary(self) -> dict[str, Any]:
        file = self.path / SUMMARY
        return _read_json(file, dict, "a run summary") if file.is_file() else {}

    def model_info(self) -> dict[str, Any]:
        """``model.json``, checked: an architecture MLP accepts, normalization, class names."""
        file = self.path / MODEL
        info = _read_json(file, dict, "a model description")
        try:
            spec, norm, classes = info["model"], info["normalization"], info["classes"]
            if not isinstance(spec, dict) or spec.get("kind") != "mlp":
                raise ValueError("model.kind must be 'mlp'")
            shape = spec["input_shape"]
            if not (
                isinstance(shape, list)
                and len(shape) == 3
                and all(isinstance(v, int) and v > 0 for v in shape)
            ):
                raise ValueError(f"input_shape must be 3 positive whole numbers, got {shape!r}")
            input_features(shape, spec.get("crop", 0))  # absent before model.crop
            regression = info.get("task", "classification") == "regression"
            if not isinstance(classes, list) or (
                not regression and len(classes) != spec["classes"]
            ):
                raise ValueError("classes must list one name per output")
            Normalization.from_dict(norm)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise RunError(
                f"{file}: not a model description made by mlplab ({_why(exc)})"
            ) from None
        return info

    def load_model(
        self, device: torch.device | str = "cpu"
    ) -> tuple[MLP, Normalization, tuple[str, ...]]:
        """The trained model (eval mode), its input normalization and class names.

        Reads only ``model.json`` and ``model.safetensors`` (no pickle); refuses a weights
        file with missing, extra or wrongly shaped tensors.
        """
        info = self.model_info()
        try:
            model = MLP.from_spec(info["model"])
        except (TypeError, MlplabError) as exc:
            raise RunError(
                f"{self.path / MODEL}: not a model description made by mlplab ({exc})"
            ) from None
        file = self.path / WEIGHTS
        try:
            state = load_file(str(file), device=str(device))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise RunError(f"{file}: not a readable safetensors file ({exc})") from None
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        missing, extra = (
            sorted(expected.keys() - found.keys()),
            sorted(found.keys() - expected.keys()),
        )
        wrong = [f"{k} {found[k]} (expected {expected[k]})" for k in expected.keys() & found.keys()
                 if found[k] != expected[k]]  # fmt: skip
        if missing or extra or wrong:
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"unexpected {', '.join(extra)}"] if extra else []
            problems += [f"wrong shape {', '.join(sorted(wrong))}"] if wrong else []
            raise RunError(
                f"{file}: the weights do not fit the architecture in {MODEL}: {'; '.join(problems)}"
            )
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.to(device).eval()
        return model, Normalization.from_dict(info["normalization"]), tuple(info["classes"])

    def load_checkpoint(self, device: torch.device | str = "cpu") -> dict[str, Any]:
        """The last state saved by :meth:`save_checkpoint` (restricted unpickler: tensors
        and plain containers only)."""
        file = self.path / CHECKPOINT
        if not file.is_file():
            raise RunError(
                f"run directory {self.path} has no {CHECKPOINT} to resume from "
                "(it was made by an older mlplab, or stopped before its first epoch ended)"
            )
        try:
            state = torch.load(file, map_location=device, weights_only=True)
        except Exception as exc:  # a damaged or foreign file: the restricted loader refuses it
            raise RunError(f"{file}: not a readable mlplab checkpoint ({_why(exc)})") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{file}: not an mlplab checkpoint (format {CHECKPOINT_FORMAT})")
        return state


def _read_json(file: Path, kind: type, what: str) -> Any:
    try:
        value = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{file}: cannot read {what} ({_why(exc)})") from None
    if not isinstance(value, kind):
        raise RunError(f"{file}: not {what} (a JSON {kind.__name__} is expected)")
    return value


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
