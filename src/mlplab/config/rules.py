"""The validation of a config: the table's checks, the cross-key checks and the data checks.

The table itself is declared beside each key, in its field's ``metadata`` (see
:mod:`.sections`): a ``choices`` tuple from :mod:`mlplab.vocab`, or a numeric range (``low`` /
``high``, inclusive unless ``low_open`` / ``high_open``). :func:`validate` walks it, then runs
the named cross-key checks of :data:`CROSS_KEY_CHECKS`, in order; the first bad value raises
one :class:`~mlplab.errors.ConfigError` line naming the key, the value and what is allowed.
:func:`check_against_data` checks what depends on the dataset (its task and image size), once
the data is loaded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, did_you_mean
from ..files.limits import shown
from ..vocab import AUGMENTATIONS, DATASETS, DEVICES, TTA_VIEWS

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from .sections import Config

__all__ = [
    "CROSS_KEY_CHECKS",
    "MAX_RUN_NAME",
    "check_against_data",
    "check_field",
    "check_names",
    "check_tta",
    "check_type",
    "describe_type",
    "field_kind",
    "is_path",
    "validate",
]

MAX_RUN_NAME = 100  # characters: the timestamp prefix and the 255-byte file-name limit leave room


def validate(config: Config) -> None:
    """Check every key against its row of the table, then the cross-key checks; raise
    :class:`ConfigError` on the first bad value."""
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        hints = typing.get_type_hints(type(values))
        for f in dataclasses.fields(values):
            dotted, value = f"{section.name}.{f.name}", getattr(values, f.name)
            check_type(dotted, value, hints[f.name])
            check_field(dotted, value, f.metadata)
    for check in CROSS_KEY_CHECKS:
        check(config)


# ----- the table's checks: one key at a time --------------------------------------------------
def field_kind(hint: Any) -> tuple[Any, bool]:
    """A field's type without its ``| None``, and whether None is allowed."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None)), True
    return hint, False


def describe_type(kind: Any, optional: bool) -> str:
    """What a message says a field's type takes: ``a whole number``, ``a number or none``..."""
    listed = (
        "a comma-separated list of names (e.g. shift,rotate)"
        if typing.get_args(kind) == (str,)
        else "a comma-separated list of whole numbers (e.g. 512,256)"
    )
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    name = names.get(kind, listed)
    return f"{name} or none" if optional else name


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python


_IS_KIND: dict[Any, Callable[[object], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: _is_int,
    float: lambda v: _is_int(v) or isinstance(v, float),
    str: lambda v: isinstance(v, str),
}


def check_type(dotted: str, value: object, hint: Any) -> None:
    """The value an API user set has the field's declared type (the CLI's and YAML's values
    were coerced to it on the way in)."""
    kind, optional = field_kind(hint)
    if value is None and optional:
        return
    if kind in _IS_KIND:
        ok = _IS_KIND[kind](value)
    else:  # list[int] or list[str]
        item = _IS_KIND[str] if typing.get_args(kind) == (str,) else _is_int
        ok = isinstance(value, list) and all(item(v) for v in value)
    if not ok:
        got = f"{shown(value)} ({type(value).__name__})"
        raise ConfigError(
            f"config key '{dotted}' must be {describe_type(kind, optional)}; got {got}"
        )


def check_field(dotted: str, value: object, rule: Mapping[str, Any]) -> None:
    """The value is among the row's ``choices`` (a list: each item, once) and in its range."""
    if value is None:
        return
    choices = rule.get("choices")
    if choices is not None and isinstance(value, list):
        check_names(
            value,
            choices,
            unknown=f"config key '{dotted}' takes names from {{choices}}; got {{got}}",
            twice=f"config key '{dotted}' names '{{name}}' twice; name each once",
        )
    elif choices is not None:
        check_names(
            [value],
            choices,
            unknown=f"config key '{dotted}' must be one of {{choices}}; got {{got}}",
        )
    if "low" in rule or "high" in rule:
        listed = isinstance(value, list)
        for v in value if isinstance(value, list) else [value]:
            if not _in_range(v, rule):
                raise ConfigError(
                    f"config key '{dotted}' must be {'each ' if listed else ''}"
                    f"in {_describe_range(rule)}; got {shown(value)}"
                )


def check_names(
    values: Sequence[object], choices: Sequence[str], *, unknown: str, twice: str = ""
) -> None:
    """Each of ``values`` is one of ``choices``, and (with a ``twice`` message) named once:
    the one check of a name against its choice list. ``unknown`` is the message for a name
    that is not a choice, with ``{choices}`` and ``{got}`` to fill (a "did you mean" follows);
    ``twice`` the one for a name given twice, with ``{name}``."""
    for v in values:
        if v not in choices:
            message = unknown.format(choices=", ".join(choices), got=shown(v))
            raise ConfigError(f"{message}{did_you_mean(str(v), choices)}")
    if twice and len(set(values)) < len(values):
        name = next(v for v in values if list(values).count(v) > 1)
        raise ConfigError(twice.format(name=name))


def _in_range(v: Any, rule: Mapping[str, Any]) -> bool:
    low, high = rule.get("low", -math.inf), rule.get("high", math.inf)
    # an unbounded side is open: inf itself (e.g. lr=1e400) is never a value
    above_low = v > low if rule.get("low_open") or low == -math.inf else v >= low
    below_high = v < high if rule.get("high_open") or high == math.inf else v <= high
    return above_low and below_high and not (isinstance(v, float) and math.isnan(v))


def _describe_range(rule: Mapping[str, Any]) -> str:
    low, high = rule.get("low", -math.inf), rule.get("high", math.inf)
    left = "(" if rule.get("low_open") or low == -math.inf else "["
    right = ")" if rule.get("high_open") or high == math.inf else "]"

    def number(x: float) -> str:
        return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:g}"

    return f"{left}{number(low)}, {number(high)}{right}"


# ----- the cross-key checks: keys that must agree, and values a table row cannot say ---------
def is_path(name: str) -> bool:
    """Does a data.dataset value name a file or folder rather than a registered dataset?"""
    return "/" in name or "\\" in name or "." in name or os.path.lexists(name)  # a link too


def _dataset_is_registered_or_a_path(config: Config) -> None:
    name = config.data.dataset
    if name not in DATASETS and not is_path(name):
        raise ConfigError(
            f"config key 'data.dataset' must be one of {', '.join(DATASETS)} or a file or folder "
            f"path; got '{name}'{did_you_mean(name, DATASETS)}"
        )


def _image_shape_is_chw(config: Config) -> None:
    shape = config.data.image_shape
    if shape is None:
        return
    parts = shape.replace("x", ",").split(",")
    if len(parts) != 3 or not all(p.strip().isdecimal() and int(p) > 0 for p in parts):
        raise ConfigError(
            f"config key 'data.image_shape' must be C,H,W (three positive whole numbers, "
            f"e.g. 1,28,28 or 3,32,32); got '{shape}'"
        )


# the data keys that describe a file: a registered dataset has them built in
_FILE_KEYS = ("format", "test_dataset", "image_shape", "images_key", "labels_key", "target")


def _file_keys_need_a_file(config: Config) -> None:
    name, defaults = config.data.dataset, type(config.data)()
    changed = [k for k in _FILE_KEYS if getattr(config.data, k) != getattr(defaults, k)]
    if name in DATASETS and changed:
        raise ConfigError(
            f"data.{changed[0]} applies to a --dataset file or folder, not to the registered "
            f"dataset '{name}'"
        )


def _target_means_regression(config: Config) -> None:
    if config.model.task == "classification" and config.data.target is not None:
        raise ConfigError(
            f"data.target='{config.data.target}' makes a regression; model.task=classification "
            "conflicts with it (leave model.task at auto)"
        )


def _nesterov_needs_sgd_momentum(config: Config) -> None:
    train = config.train
    if train.nesterov and not (train.optimizer == "sgd" and train.momentum > 0):
        raise ConfigError(
            "train.nesterov=true needs train.optimizer=sgd and train.momentum > 0; "
            f"got optimizer={train.optimizer}, momentum={train.momentum}"
        )


def _val_size_is_fraction_or_count(config: Config) -> None:
    size = config.data.val_size
    if size >= 1 and size != int(size):
        raise ConfigError(
            f"data.val_size must be a fraction in [0, 1) or a whole count; got {size}"
        )


def _smoothing_needs_logits(config: Config) -> None:
    if config.train.label_smoothing and config.model.head != "logits":
        raise ConfigError(
            f"train.label_smoothing={config.train.label_smoothing} needs model.head=logits "
            f"(cross-entropy); got head={config.model.head}"
        )


def _cycle_momentum_needs_onecycle(config: Config) -> None:
    if config.train.cycle_momentum and config.train.scheduler != "onecycle":
        raise ConfigError(
            "train.cycle_momentum=true needs train.scheduler=onecycle; "
            f"got scheduler={config.train.scheduler}"
        )


def _run_name_is_a_folder_name(config: Config) -> None:
    name = config.run.name
    if (
        any(ch in name for ch in '/\\:*?"<>|')
        or not name.isprintable()  # newlines, tabs, terminal escape codes
        or name.startswith(".")
        or name != name.strip()
        or len(name) > MAX_RUN_NAME
    ):
        raise ConfigError(
            f"config key 'run.name' must be a plain folder-name part (letters, digits, - _ and "
            f"., no path separators or control characters, not starting with '.', at most "
            f"{MAX_RUN_NAME} characters); got {shown(name)}"
        )


def _track_is_usable(config: Config) -> None:
    """track.experiment names an experiment; track.uri, when given, is an address."""
    track = config.track
    name = track.experiment
    if not name.strip() or not name.isprintable() or len(name) > 500:
        raise ConfigError(
            "config key 'track.experiment' must be a non-empty name on one line (at most 500 "
            f"characters); got {shown(name)}"
        )
    if track.uri is not None and (not track.uri.strip() or not track.uri.isprintable()):
        raise ConfigError(
            "config key 'track.uri' must be an address such as http://127.0.0.1:5000 or "
            f"sqlite:///runs/mlflow/mlflow.db, or none for that default; got {shown(track.uri)}"
        )


def _device_is_known(config: Config) -> None:
    device = config.train.device
    if device in DEVICES or (device.startswith("cuda:") and device[5:].isdecimal()):
        return
    raise ConfigError(
        f"train.device must be one of auto, cpu, cuda, cuda:N, mps; got '{device}'"
        f"{did_you_mean(device, DEVICES)}"
    )


# in this order: the first failing check names the problem
CROSS_KEY_CHECKS: tuple[Callable[[Config], None], ...] = (
    _dataset_is_registered_or_a_path,
    _image_shape_is_chw,
    _file_keys_need_a_file,
    _target_means_regression,
    _nesterov_needs_sgd_momentum,
    _val_size_is_fraction_or_count,
    _smoothing_needs_logits,
    _cycle_momentum_needs_onecycle,
    _run_name_is_a_folder_name,
    _track_is_usable,
    _device_is_known,
)


# ----- the data checks: what depends on the dataset, once it is loaded ------------------------
def check_tta(input_shape: Sequence[int], views: Sequence[str]) -> None:
    """``model.tta`` names views of :data:`~mlplab.vocab.TTA_VIEWS`, each once, of images of
    2x2 pixels or more; a ConfigError otherwise. (The model checks its views with this too.)"""
    if isinstance(views, str) or not all(isinstance(v, str) for v in views):
        raise ConfigError(
            f"model.tta must be a list of view names ({', '.join(TTA_VIEWS)}); got {views!r}"
        )
    check_names(
        views,
        TTA_VIEWS,
        unknown="model.tta views must be among {choices}; got {got}",
        twice="model.tta names '{name}' twice; name each view once",
    )
    shape = [int(s) for s in input_shape]
    if views and (len(shape) != 3 or min(shape[1:]) < 2):
        raise ConfigError(
            "model.tta needs images of at least 2x2 pixels; the inputs are "
            f"{'x'.join(map(str, shape))}"
        )


def check_against_data(config: Config, dataset: Dataset) -> None:
    """The config agrees with the dataset it trains on: test-time views fit its images, and a
    classifier's keys are not set for a regression (nor the other way round)."""
    check_tta(dataset.image_shape, config.model.tta)
    regression = dataset.task == "regression"
    if regression and config.model.tta:
        raise ConfigError(
            f"model.tta={','.join(config.model.tta)} averages class probabilities; a regression "
            "has none (leave it at [])"
        )
    if config.model.task not in ("auto", dataset.task):
        hint = (
            " (pass --target COLUMN for a regression on a CSV)"
            if config.model.task == "regression"
            else ""
        )
        raise ConfigError(
            f"model.task={config.model.task} but dataset '{dataset.name}' is a {dataset.task} "
            f"dataset{hint}"
        )
    if regression:
        _check_regression(config)


def _check_regression(config: Config) -> None:
    """A regression has no classes: no accuracy to select by, no class targets to smooth, no
    class probabilities for a head to give, and tabular values that augmentation does not
    apply to."""
    if config.train.select == "val_accuracy":
        raise ConfigError(
            "train.select=val_accuracy needs classes; a regression keeps the epoch of the lowest "
            "val_loss (or the last)"
        )
    if config.train.label_smoothing:
        raise ConfigError(
            f"train.label_smoothing={config.train.label_smoothing} smooths class targets; a "
            "regression has none (leave it at 0)"
        )
    default = {f.name: f.default for f in dataclasses.fields(config.train)}["accept"]
    if config.train.accept != default:
        raise ConfigError(
            f"train.accept={config.train.accept:g} sets how many inputs the rejection of "
            "unfamiliar images accepts; a regression has no rejection (leave it out)"
        )
    if config.model.head != "logits":
        raise ConfigError(
            f"model.head={config.model.head} is for classes; a regression's output is a plain "
            "value (logits)"
        )
    if any(getattr(config.augment, name) for name in AUGMENTATIONS):
        raise ConfigError(
            f"augmentation ({', '.join(AUGMENTATIONS)}) changes pixels: it does not apply to "
            "tabular regression"
        )
