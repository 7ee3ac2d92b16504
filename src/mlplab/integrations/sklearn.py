"""scikit-learn estimators over mlplab's own training step: ``MLPClassifier``, ``MLPRegressor``.

A drop-in for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the same parameter
names and meanings where scikit-learn has them (``hidden_layer_sizes``, ``activation``,
``solver`` 'adam' or 'sgd', ``alpha``, ``batch_size``, ``learning_rate_init``, ``max_iter`` in
epochs, ``momentum``, ``early_stopping``, ``n_iter_no_change``, ``random_state``,
``warm_start``, ...) and the same fitted attributes (``coefs_``, ``intercepts_``,
``loss_curve_``, ``validation_scores_``, ``n_iter_``), plus mlplab's own: ``image_shape``,
``augmentation`` (image input), ``normalize``, ``device`` and ``precision``.

Training is mlplab's: the data lives on the device as one tensor, batches are sliced from a
seeded permutation and augmented as a batched op (:mod:`mlplab.training.batches`), and each
epoch is the training loop's own epoch (``training.loop._train_epoch`` with
:func:`mlplab.training.session.training_step`), so a fit is as fast as ``mlplab train``
and ``random_state=S`` draws the same initial weights and batches as ``train.seed=S``.

Where it differs from scikit-learn, on purpose (docs/sklearn.md lists it):

- inputs are standardized per feature (per channel for images) on the training data
  (``normalize='standard'``, mlplab's default); ``coefs_[0]`` and ``intercepts_[0]`` have
  that step folded in, so they act on ``X`` as given, as scikit-learn's do;
- a binary classifier has two softmax outputs (scikit-learn: one logistic output), so its
  last ``coefs_`` has two columns;
- ``loss_curve_`` is the epoch's mean training loss (cross-entropy, or the squared error
  without scikit-learn's factor 1/2), without the L2 term; ``alpha`` is torch's weight decay
  ``alpha / batch_size``, which scikit-learn's gradient equals (biases are decayed too);
- ``activation='identity'``, ``solver='lbfgs'`` and ``learning_rate='invscaling'`` do not
  exist here; ``'gelu'`` does.

Pickling keeps the weights, the optimizer's state and the shuffling generator as safetensors
bytes (no pickled torch modules), so a pickled estimator predicts, and ``partial_fit``
continues, exactly where it was.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from tqdm import tqdm

from ..config import Config
from ..config.sections import SEED_MAX
from ..data import Normalization, Split
from ..data.splits import stratified_pick
from ..model.heads import probabilities
from ..model.mlp import MLP, input_features
from ..progress import log_line, show_progress
from ..training.device import busy_cores, isolated, select_device
from ..training.loop import _State, _train_epoch
from ..training.optim import Plan, make_optimizer
from ..training.session import Session, seed_streams
from ..training.threads import FLOPS_PER_THREAD, auto_threads, env_threads, step_flops

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> mlplab's (model.activation)
ACTIVATIONS = {"relu": "relu", "logistic": "sigmoid", "tanh": "tanh", "gelu": "gelu"}
AUTO_BATCH = 200  # batch_size='auto': min(200, n_samples), as scikit-learn
EVAL_BATCH = 1000  # samples per forward pass in predict
DEVICE = "device='{}'"  # how messages about the device name the setting here (not --device)
_FORMAT = "mlplab.sklearn/1"  # what __getstate__ writes; __setstate__ checks it


@dataclass(kw_only=True)
class _Session(Session):
    """A training session over arrays: :class:`Session` with the task given, not a Dataset
    (a ``partial_fit`` batch may hold a single class, which a Dataset refuses)."""

    task: str = "classification"

    @property
    def regression_loss(self) -> str | None:
        return "mse" if self.task == "regression" else None


class _BaseMLP(BaseEstimator, ABC):
    """What the classifier and the regressor share: parameters, data, the epoch loop,
    fitted attributes and pickling."""

    _task = "classification"
    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 (scikit-learn's own form)
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"adam", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "image_shape": [None, "array-like"],
        "augmentation": [None, dict],
        "normalize": [StrOptions({"standard", "none"})],
        "device": [str],
        "precision": [StrOptions({"fp32", "bf16"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        image_shape: Any = None,
        augmentation: dict[str, Any] | None = None,
        normalize: str = "standard",
        device: str = "auto",
        precision: str = "fp32",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.image_shape = image_shape
        self.augmentation = augmentation
        self.normalize = normalize
        self.device = device
        self.precision = precision

    # ----- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Any:
        """Train for up to ``max_iter`` epochs (fewer when the loss, or with
        ``early_stopping`` the validation score, stops improving by ``tol`` for
        ``n_iter_no_change`` epochs). With ``warm_start`` a fitted estimator goes on from
        its weights (and its normalization) with a fresh optimizer, as scikit-learn's does."""
        self._validate_params()
        return self._fit(X, y, incremental=False, classes=None)

    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any) -> Any:
        continuing = incremental or self.warm_start
        fitted = continuing and hasattr(self, "_model")
        images, targets = self._data(
            X, y, reset=not fitted, classes=classes, incremental=incremental
        )
        n = len(targets)
        batch = self._batch_size(n)
        select_device(self.device, DEVICE, DEVICE)  # named as this parameter, not --device
        config = self._config(batch, fitted)
        early = self.early_stopping and not incremental
        train, val = self._split(images, targets, early, config.train.seed)
        with isolated(self.device, DEVICE, DEVICE) as device:
            if not fitted:
                self._start(config, train, device)
            elif not incremental:  # warm start: scikit-learn makes a new optimizer
                self._optimizer = self._make_optimizer(config, device)
            self._threads(config, train, device)
            session = self._session(config, train, device)
            self._epochs(session, val, 1 if incremental else self.max_iter, incremental)
        return self

    def _data(
        self, X: Any, y: Any, *, reset: bool, classes: Any, incremental: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """X as a (N, C, H, W) tensor (uint8 pixels or float32 features), y as targets."""
        images = self._inputs(X, reset=reset)
        targets = self._targets(y, reset=reset, classes=classes, incremental=incremental)
        check_consistent_length(images, targets)
        return images, targets

    def _inputs(self, X: Any, *, reset: bool) -> torch.Tensor:
        """Validated X: flat ``(N, F)`` (a table, or images with ``image_shape``),
        ``(N, H, W)`` or ``(N, C, H, W)``; uint8 pixels stay uint8, the rest is float32."""
        nd = getattr(X, "ndim", None) or np.asarray(X, dtype=object).ndim
        if nd > 2:  # images: scikit-learn's n_features_in_ counts every value of one image
            array = check_array(X, allow_nd=True, dtype=None, ensure_min_samples=1)
            array = check_array(array.reshape(len(array), -1), dtype=None, input_name="X").reshape(
                array.shape
            )
            if array.ndim > 4:
                raise ValueError(
                    f"X has {array.ndim} dimensions, {array.shape}; {type(self).__name__} "
                    "takes (n_samples, n_features), (n_samples, H, W) or (n_samples, C, H, W)"
                )
            shape = (1, *array.shape[1:]) if array.ndim == 3 else tuple(array.shape[1:])
            self._check_shape(shape, math.prod(shape), reset)
        else:
            array = validate_data(self, X, reset=reset, dtype=None, ensure_min_samples=1)
            shape = self._image_shape(array.shape[1])
            if reset:
                self._input_shape = shape
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            array = check_array(array.reshape(len(array), -1), dtype=np.float64).reshape(
                array.shape
            )
        if np.iscomplexobj(array):
            raise ValueError("Complex data not supported")
        array = array.reshape(len(array), *self._input_shape)
        pixels = array.dtype == np.uint8 and self._input_shape[1:] != (1, 1)
        if self.augmentation and not pixels:
            raise ValueError(
                f"augmentation needs images of uint8 pixels (0-255) with image_shape or "
                f"(N, H, W) / (N, C, H, W) input; X is {array.dtype} of shape "
                f"{array.shape[1:]}: pass (X * 255).round().astype('uint8') for 0-1 images"
            )
        if pixels:
            return torch.from_numpy(np.ascontiguousarray(array))
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _image_shape(self, features: int) -> tuple[int, int, int]:
        """(C, H, W) of one flat row: ``image_shape`` ((H, W) or (C, H, W)), or (F, 1, 1)."""
        if self.image_shape is None:
            return (features, 1, 1)
        shape = tuple(int(v) for v in self.image_shape)
        shape = (1, *shape) if len(shape) == 2 else shape
        if len(shape) != 3 or min(shape) < 1 or math.prod(shape) != features:
            raise ValueError(
                f"image_shape={self.image_shape!r} must be (H, W) or (C, H, W) of positive "
                f"sizes whose product is the {features} features of a row of X"
            )
        return shape  # type: ignore[return-value]

    def _check_shape(self, shape: tuple[int, ...], features: int, reset: bool) -> None:
        name = type(self).__name__
        if self.image_shape is not None and tuple(self._image_shape(features)) != shape:
            raise ValueError(
                f"X holds images of shape {shape} but image_shape={self.image_shape!r}; "
                "give one or the other"
            )
        if reset:
            self.n_features_in_ = features
            self._input_shape = shape
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif tuple(self._input_shape) != shape:
            raise ValueError(
                f"X has images of shape {shape} ({features} features), but {name} is "
                f"expecting {tuple(self._input_shape)} ({self.n_features_in_} features) as input."
            )

    @abstractmethod
    def _targets(self, y: Any, *, reset: bool, classes: Any, incremental: bool) -> torch.Tensor:
        """``y`` as the loss's targets (class indices, or float rows for a regression)."""

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(AUTO_BATCH, n)
        if self.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=3,
            )
        return min(int(self.batch_size), n)

    def _config(self, batch: int, continuing: bool) -> Config:
        """The mlplab config these parameters mean (validated, as ``mlplab train`` does)."""
        seed = self._seed(continuing)
        values: dict[str, Any] = {
            "model.hidden": [int(h) for h in np.atleast_1d(self.hidden_layer_sizes)],
            "model.activation": ACTIVATIONS[self.activation],
            "train.optimizer": self.solver,
            "train.lr": float(self.learning_rate_init),
            "train.batch_size": batch,
            "train.epochs": int(self.max_iter),
            # scikit-learn's L2 gradient is alpha * W / batch: torch's weight decay
            "train.weight_decay": float(self.alpha) / batch,
            "train.seed": seed,
            "train.device": self.device,
            "train.precision": self.precision,
            "data.normalize": self.normalize,
            "data.split_seed": seed,
        }
        if self.solver == "sgd":
            values["train.momentum"] = float(self.momentum)
            values["train.nesterov"] = bool(self.nesterovs_momentum and self.momentum > 0)
        config = Config()
        for key, value in values.items():  # set, then validated once (override parses text)
            section, name = key.split(".")
            setattr(getattr(config, section), name, value)
        if self.augmentation:  # names a user wrote: override says "did you mean"
            augment = {f"augment.{k}": v for k, v in self.augmentation.items()}
            return config.override(augment, source=f"{type(self).__name__}(augmentation=...)")
        return config.validate()

    def _seed(self, continuing: bool) -> int:
        """random_state as mlplab's train.seed: an int is the seed itself (so the weights
        and batches are those of ``train.seed`` = that int); None or a RandomState draws one."""
        if isinstance(self.random_state, Integral) and not isinstance(self.random_state, bool):
            return int(self.random_state) % (SEED_MAX + 1)
        if not (hasattr(self, "_drawn_seed") and continuing):
            self._drawn_seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        return self._drawn_seed

    def _split(
        self, images: torch.Tensor, targets: torch.Tensor, early: bool, seed: int
    ) -> tuple[Split, Split | None]:
        """The training split and, with early stopping, the held-out validation split
        (stratified for a classifier, seeded by ``random_state``, as scikit-learn's)."""
        data = Split(images, targets)
        if not early:
            return data, None
        n = len(data)
        n_val = max(1, round(self.validation_fraction * n))
        if n_val >= n:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples leaves none "
                "for training; use a smaller fraction or more samples"
            )
        labels = targets if targets.ndim == 1 else targets[:, 0]
        held = stratified_pick(labels, n_val, seed)
        keep = torch.ones(n, dtype=torch.bool)
        keep[held] = False
        return data[keep.nonzero().flatten()], data[held]

    def _start(self, config: Config, train: Split, device: torch.device) -> None:
        """A fresh model (initial weights from random_state, as train.seed), normalization
        fitted on the training data, optimizer and shuffling generator."""
        model_seed, data_seed = seed_streams(config.train.seed)
        self._normalization = _fit_normalization(train.images, config.data.normalize)
        torch.manual_seed(model_seed)  # the caller's RNG is put back by `isolated`
        self._model = MLP.from_config(config.model, self._input_shape, self._outputs()).to(device)
        self._optimizer = self._make_optimizer(config, device)
        self._generator = torch.Generator(device).manual_seed(data_seed)
        self._steps = 0
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] | None = None
        self.best_validation_score_: float | None = None
        self.best_loss_: float | None = np.inf
        self._no_improvement_count = 0

    def _make_optimizer(self, config: Config, device: torch.device) -> torch.optim.Optimizer:
        optimizer = make_optimizer(self._model.parameters(), config.train, device)
        if self.solver == "adam":
            for group in optimizer.param_groups:
                group["betas"], group["eps"] = (self.beta_1, self.beta_2), self.epsilon
        return optimizer

    def _threads(self, config: Config, train: Split, device: torch.device) -> None:
        """torch's threads as ``mlplab train`` picks them (MLPLAB_THREADS, else one per
        FLOPS_PER_THREAD of a step's work, leaving busy cores alone); `isolated` puts the
        caller's count back."""
        if device.type != "cpu":
            return
        env = os.environ.get("MLPLAB_THREADS")
        if env:
            torch.set_num_threads(env_threads(env))
            return
        features = input_features(self._input_shape)
        flops = step_flops(features, config.model.hidden, self._outputs(), config.train.batch_size)
        available = torch.get_num_threads()
        busy = busy_cores() if flops >= 2 * FLOPS_PER_THREAD and available > 1 else 0.0
        torch.set_num_threads(auto_threads(flops, available, busy))

    def _session(self, config: Config, train: Split, device: torch.device) -> _Session:
        self._model.to(device)
        steps = math.ceil(len(train) / config.train.batch_size)
        for group in self._optimizer.param_groups:  # the rate of this call (adaptive lowers it)
            group["weight_decay"] = config.train.weight_decay
        return _Session(
            config=config,
            data=None,  # type: ignore[arg-type]
            task=self._task,
            device=device,
            splits={"train": train.to(device)},
            normalization=self._normalization,
            model=self._model,
            optimizer=self._optimizer,
            plan=Plan(config.train.epochs, steps),
            generator=self._generator,
            max_batches=None,
        )

    def _epochs(self, s: _Session, val: Split | None, epochs: int, incremental: bool) -> None:
        """mlplab's own epochs (``_train_epoch``: seeded batches, augmentation, the training
        step), with scikit-learn's stopping rule and bookkeeping around them."""
        if not self.shuffle:
            s.generator = None  # type: ignore[assignment]  # the data's own order
        if val is not None:
            self.validation_scores_ = self.validation_scores_ or []
            self.best_loss_ = None  # scikit-learn's: the validation score is what is tracked
        elif not incremental:
            self.validation_scores_ = None
        best_state = None
        show = bool(self.verbose) and show_progress()
        bar = tqdm(total=epochs * s.plan.steps_per_epoch, disable=not show, leave=False)
        converged = False
        try:
            for _ in range(epochs):
                # epoch 0 of a partial_fit batch: augmentation's clean_epochs count from max_iter
                state = _State(epoch=0 if incremental else self.n_iter_, step=self._steps)
                loss, _accuracy = _train_epoch(s, state, bar)
                self._steps = state.step
                self.n_iter_ += 1
                self.t_ += len(s.splits["train"])
                self.loss_curve_.append(loss)
                if not math.isfinite(loss):
                    raise ValueError(
                        f"Solver produced non-finite parameter weights (loss {loss} in epoch "
                        f"{self.n_iter_}). The input data may contain large values and need "
                        "to be preprocessed, or learning_rate_init "
                        f"({self.learning_rate_init:g}) lowered."
                    )
                message = f"Iteration {self.n_iter_}, loss = {loss:.8f}"
                if val is not None:
                    score = self._val_score(val, s.device)
                    self.validation_scores_.append(score)  # type: ignore[union-attr]
                    message += f", validation score = {score:.6f}"
                if self.verbose:
                    log_line(message, bar if show else None)
                if incremental:
                    continue
                improved = self._update_no_improvement(loss, val is not None)
                if improved and val is not None:
                    best_state = copy.deepcopy(self._model.state_dict())
                if self._no_improvement_count > self.n_iter_no_change:
                    adaptive = self.learning_rate == "adaptive" and self.solver == "sgd"
                    if adaptive and s.config.train.lr > 1e-6:  # scikit-learn's rule
                        s.config.train.lr /= 5
                        self._no_improvement_count = 0
                        if self.verbose:
                            log_line(f"Setting learning rate to {s.config.train.lr:f}")
                        continue
                    converged = True
                    if self.verbose:
                        what = "Validation score" if val is not None else "Training loss"
                        log_line(
                            f"{what} did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs. Stopping."
                        )
                    break
        except KeyboardInterrupt:  # Ctrl-C: keep the epochs finished, as scikit-learn's
            converged = True
            warnings.warn("Training interrupted by user.", stacklevel=4)
        finally:
            bar.close()
            self._model.eval()
        if val is not None and best_state is not None:
            self._model.load_state_dict(best_state)
        if not incremental and not converged and self.n_iter_ >= self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _update_no_improvement(self, loss: float, validated: bool) -> bool:
        """scikit-learn's rule: an epoch counts as no improvement unless it beats the best
        by ``tol``; returns whether this epoch is the best so far."""
        if validated:
            score = self.validation_scores_[-1]  # type: ignore[index]
            best = (
                self.best_validation_score_ if self.best_validation_score_ is not None else -np.inf
            )
            self._no_improvement_count = (
                self._no_improvement_count + 1 if score < best + self.tol else 0
            )
            if score > best:
                self.best_validation_score_ = score
                return True
            return False
        best = self.best_loss_ if self.best_loss_ is not None else np.inf
        self._no_improvement_count = self._no_improvement_count + 1 if loss > best - self.tol else 0
        if loss < best:
            self.best_loss_ = loss
            return True
        return False

    @abstractmethod
    def _val_score(self, val: Split, device: torch.device) -> float:
        """The held-out score early stopping follows (accuracy, or R²)."""

    @abstractmethod
    def _outputs(self) -> int:
        """Units of the output layer."""

    # ----- predicting ---------------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, images: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
        """The model's float32 outputs on X (normalized as in training), in batches."""
        device = device or next(self._model.parameters()).device
        scale, offset = self._normalization.affine(device)
        model = self._model.eval()
        outputs = []
        bf16 = self.precision == "bf16"
        for start in range(0, len(images), EVAL_BATCH):
            x = images[start : start + EVAL_BATCH].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(torch.addcmul(offset, x.float(), scale))
            outputs.append(out.float().cpu())
        if not outputs:
            return torch.zeros(0, self._outputs())
        return torch.cat(outputs)

    def _predict_inputs(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        return self._inputs(X, reset=False)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_model")

    # ----- fitted attributes, in scikit-learn's form --------------------------------------
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices ``(fan_in, fan_out)``, input to output; the first has the input
        normalization folded in, so ``X @ coefs_[0] + intercepts_[0]`` is the first layer's
        pre-activation on ``X`` as given (flattened, for images)."""
        return self._layers()[0]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, input to output (the first with the normalization folded in)."""
        return self._layers()[1]

    @property
    def n_layers_(self) -> int:
        return len(self.coefs_) + 1

    @property
    def n_outputs_(self) -> int:
        return self._outputs()

    def _layers(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if not hasattr(self, "_model"):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet")
        model = self._model
        linears = [block.linear for block in model.hidden] + [model.output]
        weights = [layer.weight.detach().cpu().double() for layer in linears]
        biases = [layer.bias.detach().cpu().double() for layer in linears]
        scale, offset = self._normalization.affine("cpu")
        shape = tuple(self._input_shape)
        s = scale.double().expand(shape).reshape(-1)
        o = offset.double().expand(shape).reshape(-1)
        biases[0] = biases[0] + weights[0] @ o
        weights[0] = weights[0] * s
        return [w.T.numpy() for w in weights], [b.numpy() for b in biases]

    # ----- pickling: safetensors bytes, no torch pickle -----------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object's is the __dict__ itself
        if "_model" not in state:
            return state
        model = state.pop("_model")
        optimizer = state.pop("_optimizer")
        generator = state.pop("_generator")
        normalization = state.pop("_normalization")
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
        }
        opt_state = optimizer.state_dict()
        for index, values in opt_state["state"].items():
            for key, value in values.items():
                tensors[f"optimizer.{index}.{key}"] = (
                    torch.as_tensor(value).detach().cpu().contiguous()
                )
        tensors["generator"] = generator.get_state().cpu()
        groups = [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]
        meta = {
            "format": _FORMAT,
            "spec": model.spec(),
            "normalization": normalization.to_dict(),
            "param_groups": groups,
            "optimizer": type(optimizer).__name__,
        }
        state["_tensors"] = save_tensors(tensors, metadata={"mlplab": json.dumps(meta)})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_tensors", None)
        super().__setstate__(state)
        if blob is None:
            return
        tensors = load_tensors(blob)
        meta = json.loads(_metadata(blob)["mlplab"])
        if meta.get("format") != _FORMAT:
            raise ValueError(
                f"this pickle holds a {meta.get('format')!r} estimator; this mlplab reads {_FORMAT!r}"
            )
        device = select_device(self.device, DEVICE, DEVICE)
        model = MLP.from_spec(meta["spec"])
        model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        self._model = model.to(device).eval()
        self._normalization = Normalization.from_dict(meta["normalization"])
        optimizer = {"Adam": torch.optim.Adam, "SGD": torch.optim.SGD}[meta["optimizer"]]
        self._optimizer = optimizer(self._model.parameters(), **meta["param_groups"][0])
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                opt_state.setdefault(int(index), {})[name] = value
        self._optimizer.load_state_dict(
            {
                "state": opt_state,
                "param_groups": [
                    {
                        **meta["param_groups"][0],
                        "params": list(range(len(list(model.parameters())))),
                    }
                ],
            }
        )
        self._generator = torch.Generator(device)
        self._generator.set_state(tensors["generator"])


def _fit_normalization(images: torch.Tensor, kind: str) -> Normalization:
    """The input normalization fitted on the training inputs: mlplab's own for uint8 pixels
    (per channel, exact); for float inputs the mean and standard deviation of each channel
    (each feature of a table) in float64, a chunk of rows at a time, a constant one scaled
    by 1 as ``StandardScaler`` does (a pixel that is 0 in every training image must not
    blow up a test image that has ink there)."""
    if not images.is_floating_point():
        return Normalization.fit(images, kind)
    channels = images.shape[1]
    if kind == "none":
        return Normalization((0.0,) * channels, (1 / 255,) * channels)
    rows = images.cpu().numpy().reshape(len(images), channels, -1)
    chunks = range(0, len(rows), 4096)
    count = rows.shape[0] * rows.shape[2]
    mean = sum(rows[i : i + 4096].sum(axis=(0, 2), dtype=np.float64) for i in chunks) / count
    square = sum(
        ((rows[i : i + 4096] - mean[None, :, None]) ** 2).sum(axis=(0, 2), dtype=np.float64)
        for i in chunks
    )
    std = np.sqrt(square / count)
    std[std < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))] = 1.0
    return Normalization(tuple((mean / 255).tolist()), tuple((std / 255).tolist()))


def _metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (the header: 8 bytes of length, then JSON)."""
    size = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + size]).get("__metadata__", {})


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier trained by mlplab: scikit-learn's ``MLPClassifier``
    parameters and attributes (see the module docstring for the differences), plus
    ``image_shape``, ``augmentation``, ``normalize``, ``device`` and ``precision``.

    >>> from mlplab.sklearn import MLPClassifier
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=20, random_state=0)
    """

    _task = "classification"

    def _targets(self, y: Any, *, reset: bool, classes: Any, incremental: bool) -> torch.Tensor:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        kind = type_of_target(y, input_name="y")
        if kind in ("multilabel-indicator", "multiclass-multioutput"):
            raise ValueError(
                f"{type(self).__name__} takes one label per sample; y is {kind} "
                "(for several labels per sample use sklearn.multioutput.MultiOutputClassifier)"
            )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if reset:
            if incremental and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            known = np.unique(classes if classes is not None else y)
            self.classes_ = known
        elif (
            incremental
            and classes is not None
            and not np.array_equal(self.classes_, np.unique(classes))
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the first call to partial_fit "
                f"({self.classes_!r})"
            )
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y contains labels {unseen.tolist()[:5]} that are not in classes_ "
                f"{self.classes_.tolist()[:10]} (the classes of the first fit)"
            )
        if not incremental and not reset and len(np.unique(y)) < 1:
            raise ValueError("y has no labels")
        return torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))

    def _outputs(self) -> int:
        return max(2, len(self.classes_))

    def _val_score(self, val: Split, device: torch.device) -> float:
        predicted = self._forward(val.images, device).argmax(1)
        return float(accuracy_score(val.labels.cpu().numpy(), predicted.numpy()))

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); the first call needs ``classes`` (every label there will
        be), as scikit-learn's. Early stopping does not apply here."""
        if not hasattr(self, "_model"):
            self._validate_params()
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        outputs = self._forward(self._predict_inputs(X))
        p = probabilities(self._model.head, outputs.double()).numpy()
        return p[:, : len(self.classes_)] if len(self.classes_) > 1 else p[:, :1] / p[:, :1]

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (a label of ``classes_``)."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor trained by mlplab (squared error): scikit-learn's
    ``MLPRegressor`` parameters and attributes (see the module docstring for the
    differences), plus ``image_shape``, ``augmentation``, ``normalize``, ``device`` and
    ``precision``. Targets may be ``(n_samples,)`` or ``(n_samples, n_targets)``."""

    _task = "regression"

    def _targets(self, y: Any, *, reset: bool, classes: Any, incremental: bool) -> torch.Tensor:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the "
                "shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=5,
            )
            y = y.ravel()
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if reset:
            self._n_targets = outputs
            self._target_1d = y.ndim == 1
        elif outputs != self._n_targets:
            raise ValueError(
                f"y has {outputs} targets but {type(self).__name__} was fitted on {self._n_targets}"
            )
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    def _outputs(self) -> int:
        return self._n_targets

    def _val_score(self, val: Split, device: torch.device) -> float:
        predicted = self._forward(val.images, device).numpy()
        truth = val.labels.cpu().numpy()
        return float(r2_score(truth, predicted.reshape(truth.shape)))

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y); early stopping does not apply here."""
        if not hasattr(self, "_model"):
            self._validate_params()
        return self._fit(X, y, incremental=True, classes=None)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, ``(n_samples,)`` (or ``(n_samples, n_targets)``)."""
        outputs = self._forward(self._predict_inputs(X)).double().numpy()
        return outputs[:, 0] if self._target_1d else outputs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
