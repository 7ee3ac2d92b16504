"""mlplab: train, understand and ship multilayer perceptrons on image data with PyTorch.

The CLI (``mlplab ...``) is a thin shell over these functions::

    from mlplab import Config, load_dataset, train, evaluate
    result = train(Config.preset("tutorial"))
    evaluate(result.run_dir)

Each submodule name means one thing (the module): ``mlplab.report.run_report.report(run_dir)``,
``mlplab.inference.export.export(run_dir, "onnx")``, ``mlplab.inference.predict(run_dir, files)``.

The names below load on first use (PEP 562): ``import mlplab`` does not load torch until a
name needs it, so a program can still set torch's environment (``OMP_WAIT_POLICY``,
``OMP_NUM_THREADS``) after importing mlplab; ``from mlplab import train`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the submodule that defines it
_EXPORTS = {
    "Config": "config",
    "PRESETS": "config",
    "Dataset": "data",
    "Normalization": "data",
    "Split": "data",
    "load_dataset": "data",
    "split_train_val": "data",
    "ConfigError": "errors",
    "DataError": "errors",
    "DownloadError": "errors",
    "FormatError": "errors",
    "MissingExtraError": "errors",
    "MlplabError": "errors",
    "RunError": "errors",
    "TrainingError": "errors",
    "Epoch": "training.loop",
    "TrainResult": "training.loop",
    "resume": "training.loop",
    "train": "training.loop",
    "evaluate": "analysis.evaluate",
    "explain": "inference.explain",
    "MLP": "model.mlp",
    "model_summary": "model.mlp",
    "RunAnalysis": "report.run_report",
    "Run": "run.directory",
}

__all__ = [  # a literal, for tools; tests/test_api.py keeps it equal to _EXPORTS
    "MLP",
    "PRESETS",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "DownloadError",
    "Epoch",
    "FormatError",
    "MissingExtraError",
    "MlplabError",
    "Normalization",
    "Run",
    "RunAnalysis",
    "RunError",
    "Split",
    "TrainResult",
    "TrainingError",
    "__version__",
    "evaluate",
    "explain",
    "load_dataset",
    "model_summary",
    "resume",
    "split_train_val",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # once loaded, an ordinary attribute
        return value
    raise AttributeError(f"module 'mlplab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .analysis.evaluate import evaluate
    from .config import PRESETS, Config
    from .data import Dataset, Normalization, Split, load_dataset, split_train_val
    from .errors import (
        ConfigError,
        DataError,
        DownloadError,
        FormatError,
        MissingExtraError,
        MlplabError,
        RunError,
        TrainingError,
    )
    from .inference.explain import explain
    from .model.mlp import MLP, model_summary
    from .report.run_report import RunAnalysis
    from .run.directory import Run
    from .training.loop import Epoch, TrainResult, resume, train
