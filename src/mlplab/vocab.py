"""Every choice list the config validates against: the names a user may write.

A leaf: it imports nothing from mlplab, so any layer may import it (the config validates
against these tuples; the model, the optimizers and the data readers build from them).
Where a registry maps a name to code (``model.mlp._ACTIVATIONS``, ``training.optim.OPTIMIZERS``
and ``SCHEDULES``, ``data.formats.FORMATS``, ``data.sources.DATASETS``), the registry stays
beside its code and ``tests/test_vocab.py`` pins its names equal to the tuple here: adding a
name means adding it in both places, in the same order.
"""

from __future__ import annotations

__all__ = [
    "ACTIVATIONS",
    "AUGMENTATIONS",
    "DATASETS",
    "DEVICES",
    "FORMATS",
    "HEADS",
    "INITS",
    "NORMALIZATIONS",
    "OPTIMIZERS",
    "PIXEL_SCALES",
    "PRECISIONS",
    "REGRESSION_LOSSES",
    "SCHEDULERS",
    "SELECTIONS",
    "TASKS",
    "TRACKERS",
    "TTA_VIEWS",
]

# ----- data ---------------------------------------------------------------------------------
# data.dataset: the registered datasets (data.sources.DATASETS); anything else is a path
DATASETS = ("mnist", "fashion-mnist", "digits", "make-regression", "usps", "cifar10")
# data.format: auto (detected from the file) or a reader of data.formats.FORMATS
FORMATS = ("auto", "csv", "hdf5", "npz", "folders", "cifar", "idx")
# data.pixel_scale: 255 (0-255 values), 1 (0-1 floats), auto (largest value <= 1 means 0-1)
PIXEL_SCALES = ("auto", "255", "1")
# data.normalize: (x-mean)/std of the training split, [-1, 1], or [0, 1]
NORMALIZATIONS = ("standard", "symmetric", "none")

# the augment keys that switch augmentation on (training.augment.Augmentation.SWITCHES)
AUGMENTATIONS = ("rotation", "shift", "hflip", "scale", "elastic", "erase")

# ----- model --------------------------------------------------------------------------------
# model.task: auto means regression when data.target is set, else classification
TASKS = ("auto", "classification", "regression")
# model.activation: the nonlinearity after each hidden layer (model.mlp._ACTIVATIONS)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
# model.head: the output layer and its loss (logits: cross-entropy; the others: NLL)
HEADS = ("logits", "log_softmax", "softmax")
# model.init: weight initialization (default: PyTorch's own)
INITS = ("default", "kaiming", "xavier", "orthogonal")
# model.tta: test-time views averaged with the image (model.views._VIEW_COUNTS)
TTA_VIEWS = ("shift", "rotate", "flip")

# ----- training -----------------------------------------------------------------------------
# train.optimizer: training.optim.OPTIMIZERS builds each
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# train.scheduler: the learning-rate schedules of training.optim.SCHEDULES
SCHEDULERS = ("none", "step", "plateau", "cosine", "onecycle")
# train.loss: the regression losses (a classifier's loss follows model.head)
REGRESSION_LOSSES = ("mse", "mae")
# train.precision: fp32, bf16 autocast of the matrix products, or auto (measured at the start
# of the run: training.machine.resolve_precision)
PRECISIONS = ("fp32", "bf16", "auto")
# train.select: which epoch's weights a run keeps
SELECTIONS = ("val_loss", "val_accuracy", "last")
# train.device: these names, or cuda:N for the N-th CUDA device
DEVICES = ("auto", "cpu", "cuda", "mps")

# ----- run ----------------------------------------------------------------------------------
# track.to: where a run is also logged (training.tracking): nowhere, or an MLflow store
TRACKERS = ("none", "mlflow")
