"""The typed config tree: every key of a training run, its default, meaning and unit.

A :class:`Config` is built from defaults, a preset, a YAML file, CLI flags and
``--set section.key=value`` overrides (later ones win; see :mod:`.parse`), validated once by
:meth:`Config.validate` (see :mod:`.rules`), printed at the start of training, saved as
``config.yaml`` in the run directory, and loaded back to an identical object.

Each field's ``metadata`` is its row in the validation table: ``help`` (meaning and unit),
``choices`` (a tuple of :mod:`mlplab.vocab`) or a numeric range (``low``/``high``,
inclusive unless ``*_open``), and ``task`` for a key that only one task uses (``train.loss``:
regression; ``model.head``: classification): :meth:`Config.summary` leaves it out of the
other task's lines, where it would read as a setting in force. :func:`describe` lists the rows, as ``mlplab config --list``,
the CLI's flags and docs/config.md show them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.atomic import write_text_atomic
from ..vocab import (
    ACTIVATIONS,
    FORMATS,
    HEADS,
    INITS,
    NORMALIZATIONS,
    OPTIMIZERS,
    PIXEL_SCALES,
    PRECISIONS,
    REGRESSION_LOSSES,
    SCHEDULERS,
    SELECTIONS,
    TASKS,
    TRACKERS,
    TTA_VIEWS,
)
from . import parse, rules
from .presets import preset_overrides

__all__ = [
    "MAX_THREADS",
    "SECTIONS",
    "SEED_MAX",
    "AugmentConfig",
    "Config",
    "DataConfig",
    "Key",
    "ModelConfig",
    "RunConfig",
    "TrackConfig",
    "TrainConfig",
    "describe",
    "selection_score",
]

MAX_THREADS = 512  # CPU threads: past the largest machines (10,000 hung, 99,999 crashed torch)
SEED_MAX = 2**63 - 1  # torch.manual_seed takes at most 64 bits; YAML and JSON keep 63 exactly


def _opt(default: Any, help: str, **rule: Any) -> Any:
    """A config field: its default, its meaning (with unit) and its validation rule."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **rule})
    return field(default=default, metadata={"help": help, **rule})


@dataclass
class DataConfig:
    """Where the images come from, how they are split and how they are scaled."""

    dataset: str = _opt(
        "mnist", "dataset name (see `mlplab datasets`), or a file or folder (see docs/formats.md)"
    )
    format: str = _opt(
        "auto", "file format of a --dataset path; auto: detected from the file", choices=FORMATS
    )
    test_dataset: str | None = _opt(
        None, "a separate file or folder for the test split (same format options)"
    )
    test_size: float = _opt(
        0.2,
        "fraction held out (seeded by split_seed, stratified) as the test split of a file that "
        "has none",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    image_shape: str | None = _opt(
        None,
        "C,H,W of flat pixel rows (CSV, HDF5, npz) or the size images are brought to (folders)",
    )
    pixel_scale: str = _opt(
        "auto", "pixel values of a file: 255 (0-255), 1 (0-1), auto: detected", choices=PIXEL_SCALES
    )
    images_key: str | None = _opt(
        None, "HDF5/npz key of the images (default: images, x_train, ...)"
    )
    labels_key: str | None = _opt(
        None, "HDF5/npz key, or CSV header column, of the labels (default: labels, label, ...)"
    )
    target: str | None = _opt(
        None, "CSV column to predict: a tabular regression on the other columns", task="regression"
    )
    data_dir: str | None = _opt(
        None, "folder searched first for dataset files; None: the usual places"
    )
    val_size: float = _opt(
        0.1,
        "validation hold-out (class-stratified): fraction of the training split if < 1, else a "
        "count",
        low=0.0,
        high=math.inf,
        high_open=True,
    )
    split_seed: int = _opt(
        0,
        "seed of the train/validation split (kept apart from train.seed, so the split stays put)",
        low=0,
        high=SEED_MAX,
    )
    normalize: str = _opt(
        "standard",
        "standard: (x-mean)/std from the training split; symmetric: [-1, 1]; none: [0, 1]",
        choices=NORMALIZATIONS,
    )
    limit: int | None = _opt(
        None,
        "use a seeded, class-stratified N of the training samples (quick looks); None: all",
        low=1,
    )
    download: bool = _opt(True, "download missing files from the mirrors into the cache")
    verify: bool = _opt(
        True, "check local copies of known datasets against their published checksums (once)"
    )
    mirror: str | None = _opt(None, "base URL that replaces the mirror list (also MLPLAB_MIRROR)")


@dataclass
class AugmentConfig:
    """Random changes to the training images, each off at its default (0 / false)."""

    rotation: float = _opt(
        0.0,
        "degrees: each training image is rotated by a uniform angle in [-rotation, rotation]",
        low=0.0,
        high=180.0,
    )
    shift: int = _opt(
        0,
        "pixels: random shift per axis in [-shift, shift], as a crop with zero padding",
        low=0,
        high=16,
    )
    hflip: bool = _opt(
        False, "mirror half the training images left-right (for data where that keeps the label)"
    )
    scale: float = _opt(
        0.0,
        "zoom each training image by a uniform factor in [1-scale, 1+scale]; > 0 switches to "
        "the bilinear warp (rotation, continuous shift, zoom, elastic in one resampling)",
        low=0.0,
        high=0.5,
    )
    elastic: float = _opt(
        0.0,
        "elastic distortion strength alpha (Simard et al. 2003: a random field smoothed by a "
        "Gaussian of elastic_sigma pixels, times alpha; ~34 on 28x28); > 0 switches to the warp",
        low=0.0,
        high=100.0,
    )
    elastic_sigma: float = _opt(
        4.0, "pixels: smoothness of the elastic displacement field", low=0.5, high=16.0
    )
    erase: float = _opt(
        0.0,
        "probability that a training image gets one random rectangle set to 0 (random erasing, "
        "Zhong et al. 2017, as torchvision's RandomErasing: 2-33% of the area, aspect 0.3-3.3)",
        low=0.0,
        high=1.0,
    )
    clean_epochs: int = _opt(
        0,
        "the last N epochs train on the images as they are, without augmentation (0: every "
        "epoch augmented)",
        low=0,
    )


@dataclass
class ModelConfig:
    """The MLP: its task, layers, output head, initialization and input steps."""

    task: str = _opt(
        "auto",
        "classification or regression (MSE/MAE, R²); auto: regression when data.target is set",
        choices=TASKS,
    )
    hidden: list[int] = _opt(  # noqa: RUF009 (_opt returns a field with a default_factory)
        [250, 100], "hidden layer widths, input to output; [] is logistic regression", low=1
    )
    activation: str = _opt("relu", "activation after each hidden layer", choices=ACTIVATIONS)
    dropout: float = _opt(
        0.0, "dropout probability after each hidden activation", low=0.0, high=1.0, high_open=True
    )
    head: str = _opt(
        "logits",
        "output: logits (cross-entropy), log_softmax (NLL), softmax (NLL on probabilities: the "
        "tutorials' ablation)",
        choices=HEADS,
        task="classification",
    )
    init: str = _opt(
        "default",
        "weight init: default (PyTorch's), kaiming, xavier, orthogonal; biases start at 0 unless "
        "default",
        choices=INITS,
    )
    crop: int = _opt(
        0,
        "pixels the model drops off each border of its input before the first layer (MNIST's "
        "digits fill the central 20x20: 2 keeps 24x24, 26% less first-layer work); predict and "
        "export still take whole images",
        low=0,
    )
    deskew: bool = _opt(
        False,
        "shear each image so its ink stands upright, pivoting on its centre of mass, before "
        "the first layer (the classic MNIST deskewing, for bright strokes on a dark "
        "background); inside the model, so predict, serve and export do it too; training "
        "without augmentation aligns its images once",
    )
    center: bool = _opt(
        False,
        "move each image so its ink's centre of mass sits at the image's centre, before the "
        "first layer (inside the model, as deskew; it undoes shifts the augmentation made)",
    )
    tta: list[str] = _opt(  # noqa: RUF009 (_opt returns a field with a default_factory)
        [],
        "test-time augmentation: in evaluation, predict, serve and export the model averages its "
        "class probabilities over the image and these views of it: shift (1 pixel each way), "
        "rotate (±5°), flip (mirrored); []: the image alone",
        choices=TTA_VIEWS,
        task="classification",
    )


@dataclass
class TrainConfig:
    """The optimization: epochs, batches, optimizer, schedule, regularization, device."""

    epochs: int = _opt(10, "passes over the training split", low=1)
    batch_size: int = _opt(64, "samples per optimizer step", low=1)
    optimizer: str = _opt("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = _opt(1e-3, "learning rate (peak rate for onecycle)", low=0.0, low_open=True)
    momentum: float = _opt(0.0, "momentum for sgd and rmsprop", low=0.0, high=1.0, high_open=True)
    nesterov: bool = _opt(False, "Nesterov momentum (sgd with momentum > 0)")
    weight_decay: float = _opt(0.0, "L2 penalty (decoupled for adamw)", low=0.0)
    l1: float = _opt(0.0, "L1 penalty on weights, added to the loss", low=0.0)
    label_smoothing: float = _opt(
        0.0,
        "training targets mix this much of the uniform distribution in (model.head=logits); "
        "train_loss includes it, val and test losses stay plain cross-entropy",
        low=0.0,
        high=1.0,
        high_open=True,
        task="classification",
    )
    loss: str = _opt(
        "mse",
        "regression loss: mse or mae (classification: the head's)",
        choices=REGRESSION_LOSSES,
        task="regression",
    )
    scheduler: str = _opt(
        "none",
        "learning-rate schedule: step and plateau per epoch, cosine and onecycle per step",
        choices=SCHEDULERS,
    )
    cycle_momentum: bool = _opt(
        False,
        "onecycle only: also cycle momentum (beta1 for Adam) 0.95 -> 0.85 -> 0.95; false: as "
        "configured",
    )
    step_size: int = _opt(5, "epochs between lr drops (step)", low=1)
    gamma: float = _opt(
        0.1,
        "lr factor at each drop (step, plateau)",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    ema: float = _opt(
        0.0,
        "decay of an exponential moving average of the weights (Polyak averaging), folded in "
        "after every step; the average is what is validated (and so what plateau watches), kept "
        "and saved (e.g. 0.999: about the last 1,000 steps; 0: off)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    select: str = _opt(
        "val_loss",
        "which epoch's weights the run keeps: lowest val_loss, highest val_accuracy, or the last "
        "(without a validation split: the training figures)",
        choices=SELECTIONS,
    )
    accept: float = _opt(
        0.98,
        "fraction, in (0, 1], of the validation split the rejection of unfamiliar inputs "
        "accepts: its threshold, fitted when training ends (classification with a validation "
        "split; docs/trust.md)",
        low=0.0,
        high=1.0,
        low_open=True,
        task="classification",
    )
    patience: int = _opt(2, "epochs without val-loss improvement before a drop (plateau)", low=0)
    seed: int = _opt(
        0,
        "seed of weights, shuffling, augmentation and dropout (each draws its own stream)",
        low=0,
        high=SEED_MAX,
    )
    device: str = _opt("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    threads: int = _opt(
        0,
        "CPU threads for torch; 0: auto (one per ~25 MFLOP of a step's work, at most torch's "
        "count (the physical cores) less the cores other processes keep busy, so it can vary "
        "with the load; a resume keeps the run's count; MLPLAB_THREADS overrides)",
        low=0,
        high=MAX_THREADS,
    )
    precision: str = _opt(
        "fp32",
        "fp32; bf16: autocast matrix products to bfloat16 (CPUs with AVX512-BF16/AMX, CUDA); "
        "auto: whichever a whole training step measured faster here at the run's shapes "
        "(bf16 from 1.1x), chosen at the start and recorded in the run's config",
        choices=PRECISIONS,
    )
    eval_batch_size: int = _opt(1000, "samples per forward pass when evaluating", low=1)
    dist_timeout: float = _opt(
        300.0,
        "seconds a data-parallel rank waits for the others before it fails (torchrun)",
        low=1.0,
    )
    dry_run: bool = _opt(False, "smoke test: a few batches of every epoch and split, then stop")


@dataclass
class RunConfig:
    """Where the run directory goes and what it is called."""

    name: str = _opt(
        "", "run name, appended to the run folder's timestamp; '': preset name or 'mlp'"
    )
    dir: str = _opt("runs", "folder that holds the run folders")


@dataclass
class TrackConfig:
    """Where the run is also logged while it trains: an experiment tracker (training.tracking)."""

    to: str = _opt(
        "none",
        "also log the run to an experiment tracker: none, or mlflow (pip install "
        "'mlplab[mlflow]'): params, per-epoch metrics, the summary, the run's files",
        choices=TRACKERS,
    )
    uri: str | None = _opt(
        None,
        "the tracker's address, e.g. http://127.0.0.1:5000 or sqlite:///path.db; None: "
        "sqlite:///<run.dir>/mlflow/mlflow.db, artifacts beside it",
    )
    experiment: str = _opt("mlplab", "the tracker's experiment the run is logged under")


SECTIONS = {
    "data": DataConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "run": RunConfig,
    "track": TrackConfig,
}


@dataclass
class Config:
    """The whole configuration of a training run (see each section for its keys)."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    # ----- construction ---------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> Config:
        """The config of a named preset (see :data:`~.presets.PRESETS`)."""
        config = cls().override(preset_overrides(name), validate=False)
        if not config.run.name:
            config.run.name = name
        return config

    @classmethod
    def from_dict(cls, tree: dict[str, Any], *, source: str = "config") -> Config:
        """Build and validate a config from a nested dict (missing keys keep defaults)."""
        return cls().merge(tree, source=source)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Load a YAML config file written by :meth:`save` or by hand."""
        return cls().merge_file(path)

    def merge_file(self, path: str | Path, *, validate: bool = True) -> Config:
        """A copy with the keys of a YAML file applied on top."""
        path = Path(path)
        return self.merge(parse.read_tree(path), source=str(path), validate=validate)

    def merge(
        self, tree: dict[str, Any], *, source: str = "config", validate: bool = True
    ) -> Config:
        """A copy with a nested ``{section: {key: value}}`` dict applied on top."""
        flat = parse.flatten(tree, list(SECTIONS), source)
        return self.override(flat, source=source, validate=validate)

    def override(
        self, assignments: dict[str, Any], *, source: str = "--set", validate: bool = True
    ) -> Config:
        """A copy with ``{"section.key": value}`` applied (strings are parsed), validated
        unless ``validate=False`` (for a step on the way to the final, merged config)."""
        new = parse.apply(self, assignments, source)
        return new.validate() if validate else new

    def with_overrides(
        self,
        overrides: Mapping[str, Any] | Iterable[str | tuple[str, Any]] | str,
        *,
        validate: bool = True,
        source: str = "with_overrides",
    ) -> Config:
        """A copy with the overrides applied, given as a mapping (``{"train.epochs": 2}``,
        as :meth:`override`), ``(key, value)`` pairs, or ``"key=value"`` strings (the CLI's
        ``--set``, values parsed as in a config file), mixed as you like; errors name the key
        and ``source`` (the CLI passes ``"--set"``)."""
        return self.override(
            parse.parse_overrides(overrides, source), source=source, validate=validate
        )

    def validate(self) -> Config:
        """Check every value against its rule (see :mod:`.rules`); raise
        :class:`~mlplab.errors.ConfigError` on the first bad one."""
        rules.validate(self)
        return self

    @property
    def task(self) -> str:
        """classification or regression: model.task, or what data.target implies."""
        if self.model.task != "auto":
            return self.model.task
        return "regression" if self.data.target is not None else "classification"

    # ----- output ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    def summary(self, task: str | None = None) -> str:
        """One line per section, ``key=value`` pairs: what training prints first. Keys for
        the other task (their field's ``task``) are left out: ``task`` is the data's
        (classification or regression), by default :attr:`task`."""
        task = task or self.task
        return "\n".join(
            f"{name}: "
            + " ".join(
                f"{f.name}={getattr(section, f.name)}"
                for f in dataclasses.fields(section)
                if f.metadata.get("task", task) == task
            )
            for name, section in ((n, getattr(self, n)) for n in SECTIONS)
        )

    def to_yaml(self) -> str:
        return parse.dump_yaml(self.to_dict(), flow=None)  # lists of numbers inline

    def save(self, path: str | Path) -> None:
        write_text_atomic(Path(path), self.to_yaml())


@dataclass(frozen=True)
class Key:
    """One row of the validation table, as the CLI flags and the docs show it."""

    key: str  # section.name
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] | None


def describe() -> list[Key]:
    """Every config key with its default, meaning and choices, in section order."""
    return [
        Key(
            key=f"{section_name}.{f.name}",
            name=f.name,
            default=f.default_factory()
            if f.default_factory is not dataclasses.MISSING
            else f.default,
            help=f.metadata["help"],
            choices=f.metadata.get("choices"),
        )
        for section_name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]


def selection_score(record: dict[str, Any], select: str) -> float:
    """How good an epoch is by ``train.select``, lower being better: its validation loss,
    its validation accuracy negated, or its number negated (the last epoch); without a
    validation split, the training figures."""
    if select == "last":
        return -record["epoch"]
    if select == "val_accuracy":
        accuracy = record["val_accuracy"]
        return -(accuracy if accuracy is not None else record["train_accuracy"])
    loss = record["val_loss"]
    return loss if loss is not None else record["train_loss"]
