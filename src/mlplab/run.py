"""The run directory: the unit everything after training works from.

``runs/<YYYYmmdd-HHMMSS>-<name>/`` holds

- ``config.yaml``       the full resolved config (loads back to an identical Config)
- ``metrics.jsonl``     one JSON object per epoch
- ``model.safetensors`` the best-validation weights (no pickle: safe to load from anyone)
- ``model.json``        architecture, normalization and class names: rebuilds the model alone
- ``summary.json``      test results, timings, versions, device

Every file is written to a temporary name and renamed, so an interrupted run leaves
complete files or none; an existing run directory is never reused.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_write, write_text_atomic
from .config import Config
from .data import Normalization
from .errors import RunError
from .model import MLP

__all__ = ["Run"]

CONFIG, METRICS, WEIGHTS, MODEL, SUMMARY = (
    "config.yaml",
    "metrics.jsonl",
    "model.safetensors",
    "model.json",
    "summary.json",
)


@dataclass(frozen=True)
class Run:
    """A run directory on disk."""

    path: Path

    # ----- creating and writing -------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, name: str) -> Run:
        """Make a new, empty run directory; never reuse an existing one."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create runs folder {root}: {exc.strerror}") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{name}" if name else stamp
        for attempt in range(1, 1000):
            path = root / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                path.mkdir()  # atomic: fails if it exists, so two runs never share a folder
                return cls(path)
            except FileExistsError:
                continue
        raise RunError(f"cannot find a free run folder name under {root} for '{base}'")

    def save_config(self, config: Config) -> None:
        config.save(self.path / CONFIG)

    def save_metrics(self, history: list[dict[str, Any]]) -> None:
        write_text_atomic(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in history))

    def save_model(
        self, model: MLP, normalization: Normalization, classes: tuple[str, ...]
    ) -> None:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        atomic_write(
            self.path / WEIGHTS,
            lambda tmp: save_file(state, str(tmp), metadata={"format": "mlplab"}),
        )
        info = {
            "model": model.spec(),
            "normalization": normalization.to_dict(),
            "classes": list(classes),
        }
        write_text_atomic(self.path / MODEL, json.dumps(info, indent=2) + "\n")

    def save_summary(self, summary: dict[str, Any]) -> None:
        write_text_atomic(self.path / SUMMARY, json.dumps(summary, indent=2) + "\n")

    # ----- reading --------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing, complete run directory."""
        path = Path(path)
        if not path.is_dir():
            raise RunError(
                f"run directory {path} does not exist; pass a folder under runs/ made by `mlplab train`"
            )
        missing = [f for f in (CONFIG, WEIGHTS, MODEL) if not (path / f).is_file()]
        if missing:
            raise RunError(
                f"run directory {path} is incomplete (missing {', '.join(missing)}); "
                "was training interrupted before the first epoch ended?"
            )
        return cls(path)

    def config(self) -> Config:
        return Config.load(self.path / CONFIG)

    def metrics(self) -> list[dict[str, Any]]:
        file = self.path / METRICS
        return (
            [json.loads(line) for line in file.read_text().splitlines() if line]
            if file.is_file()
            else []
        )

    def summary(self) -> dict[str, Any]:
        file = self.path / SUMMARY
        return json.loads(file.read_text()) if file.is_file() else {}

    def model_info(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / MODEL).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{self.path / MODEL}: unreadable model description ({exc})") from None

    def load_model(
        self, device: torch.device | str = "cpu"
    ) -> tuple[MLP, Normalization, tuple[str, ...]]:
        """The trained model (eval mode), its input normalization and class names."""
        info = self.model_info()
        model = MLP.from_spec(info["model"])
        try:
            state = load_file(str(self.path / WEIGHTS), device=str(device))
            model.load_state_dict(state)
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise RunError(f"{self.path / WEIGHTS}: cannot load weights ({exc})") from None
        model.to(device).eval()
        return model, Normalization.from_dict(info["normalization"]), tuple(info["classes"])
