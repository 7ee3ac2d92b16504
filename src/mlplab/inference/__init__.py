"""A run's model on new inputs: image files loaded and preprocessed to the training
distribution (:mod:`.images`), the run's model on them to top-k classes (:mod:`.predictor`),
and the model exported to a file that runs without mlplab (:mod:`.export`).

``mlplab.inference.predict(run_dir, files)`` classifies image files with a run's model;
``mlplab.inference.export.export(run_dir, "onnx")`` exports it.
"""

from .predictor import Predictor, predict

__all__ = ["Predictor", "predict"]
