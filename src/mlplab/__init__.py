"""mlplab: train, understand and ship multilayer perceptrons on image data with PyTorch.

The CLI (``mlplab ...``) is a thin shell over these functions::

    from mlplab import Config, load_dataset, train, evaluate
    result = train(Config.preset("tutorial"))
    evaluate(result.run_dir)

Each submodule name means one thing (the module): ``mlplab.report.report(run_dir)``,
``mlplab.export.export(run_dir, "onnx")``, ``mlplab.predict.predict(run_dir, files)``.
"""

__version__ = "0.1.0"

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
from .loop import Epoch, TrainResult, resume, train
from .metrics import evaluate
from .model import MLP, model_summary
from .report import RunAnalysis
from .run import Run

__all__ = [
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
    "load_dataset",
    "model_summary",
    "resume",
    "split_train_val",
    "train",
]
