"""What a sweep varies: a search space (config key -> a float or int range, or a list of
choices; ``--space FILE``) or a grid (config key -> values; ``--grid KEY=V1,V2``).

Every bound, choice and grid value is checked as a value of its key on top of the sweep's
base config, so a bad range fails before any trial runs, with one line naming the key.
A trial's parameters are Optuna's: scalars, so the values of a list-valued key are kept as
strings (``model.hidden`` ``"256,128"``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SECTIONS, Config, describe, read_yaml
from ..errors import ConfigError, did_you_mean
from ..files.limits import printable, shown

if TYPE_CHECKING:
    import optuna

__all__ = ["TYPES", "Param", "format_value", "grid_values", "parse_grid", "parse_space"]

TYPES = {  # a range's type -> the fields it takes (beyond `type`)
    "float": ("low", "high", "log", "step"),
    "int": ("low", "high", "log", "step"),
    "categorical": ("choices",),
}
SPACE_EXAMPLE = "train.lr: {type: float, low: 1e-4, high: 1e-2, log: true}"
# Python types a config key may be declared as (a dataclass field's type, as text) -> its kind
KINDS = (("int", int), ("float", float), ("list", list))


@dataclass(frozen=True)
class Param:
    """One searched config key: a float or int range (optionally log-scaled or stepped) or
    a list of choices. Choices of list-valued keys are strings (``"256,128"``)."""

    key: str
    type: str  # float, int or categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """This trial's value of the key, drawn by the study's sampler."""
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]
        if self.type == "int":
            low, high, step = int(self.low), int(self.high), int(self.step or 1)  # type: ignore[arg-type]
            return trial.suggest_int(self.key, low, high, log=self.log, step=step)
        return trial.suggest_categorical(self.key, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of the range (what ``space.yaml`` holds)."""
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def __str__(self) -> str:
        if self.type == "categorical":
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}"
        how = ", log" if self.log else f", step {self.step:g}" if self.step else ""
        return f"{self.key} {self.type} {self.low:g}..{self.high:g}{how}"


def format_value(value: Any) -> str:
    """A parameter's value as the sweep's lines and tables show it (floats to 3 digits)."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ----- search spaces ---------------------------------------------------------------------------
def parse_space(space: str | Path | dict[str, Any], base: Config) -> dict[str, Param]:
    """Read and check a search space: a YAML file (or its dict) mapping config keys to
    ranges. Every bound and choice is validated as a value of its key on top of ``base``;
    the first problem raises a one-line :class:`ConfigError` naming the key."""
    if isinstance(space, dict):
        tree, where = space, "search space"
    else:
        tree, where = _read_space_file(Path(space)), f"space file {printable(Path(space))}"
    if not isinstance(tree, dict) or not tree:
        raise ConfigError(
            f"{where} must map config keys to ranges, e.g. '{SPACE_EXAMPLE}'; got {shown(tree)}"
        )
    return {str(key): _parse_param(str(key), spec, base, where) for key, spec in tree.items()}


def _read_space_file(path: Path) -> Any:
    # the config files' reader: a FIFO, /dev/zero or a huge file is one line, nothing read
    # beyond the cap, and 1e-4 is a number here exactly as in a config file
    return read_yaml(path, "space file", f"a search space is a few lines such as '{SPACE_EXAMPLE}'")


def _parse_param(key: str, spec: Any, base: Config, where: str) -> Param:
    """One entry of a space: its type and fields, then its bounds or choices as values of
    the key on top of ``base``."""
    kind = _check_key(key, where)
    type_ = _range_type(key, spec, where)
    if type_ == "categorical":
        return _categorical(key, spec.get("choices"), base, where)
    _check_range_fits(key, kind, type_, where)
    low, high, step, log = _bounds(key, spec, type_, where)
    for name, value in (("low", low), ("high", high)):
        _grid_value(base, key, value, f"{where}: '{key}' {name}={value}")
    number = int if type_ == "int" else float
    return Param(key, type_, number(low), number(high), log, None if step is None else number(step))


def _range_type(key: str, spec: Any, where: str) -> str:
    """The entry's ``type``, once it is a mapping of a known type with only that type's fields."""
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: '{key}' must be a mapping such as {{type: float, low: 1e-4, high: 1e-2}} "
            f"or {{type: categorical, choices: [a, b]}}; got {shown(spec)}"
        )
    type_ = spec.get("type")
    if type_ not in TYPES:
        raise ConfigError(
            f"{where}: '{key}' type must be one of {', '.join(TYPES)}; got {shown(type_)}"
            f"{did_you_mean(str(type_), TYPES)}"
        )
    for name in spec:
        if name != "type" and name not in TYPES[type_]:
            raise ConfigError(
                f"{where}: '{key}' has an unknown field '{name}'"
                f"{did_you_mean(str(name), TYPES[type_])}; a {type_} range takes "
                f"{', '.join(TYPES[type_])}"
            )
    return str(type_)


def _categorical(key: str, choices: Any, base: Config, where: str) -> Param:
    if not isinstance(choices, list) or not choices:
        raise ConfigError(
            f"{where}: '{key}' (categorical) needs choices: a non-empty list; got {shown(choices)}"
        )
    values = tuple(
        _grid_value(base, key, c, f"{where}: '{key}' choice {shown(c)}") for c in choices
    )
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: '{key}' lists a choice twice: {list(choices)}")
    return Param(key, "categorical", choices=values)


def _check_range_fits(key: str, kind: type, type_: str, where: str) -> None:
    """A float or int range only for a number key (and a float range not for a whole one)."""
    if kind not in (int, float):
        hint = f" (choices: {', '.join(_choices(key))})" if _choices(key) else ""
        raise ConfigError(
            f"{where}: '{key}' is {_kind_name(kind)}: use type categorical{hint}; got type {type_}"
        )
    if type_ == "float" and kind is int:
        raise ConfigError(
            f"{where}: '{key}' is a whole number: use type int or categorical; got type float"
        )


def _bounds(
    key: str, spec: dict[str, Any], type_: str, where: str
) -> tuple[float, float, float | None, bool]:
    """``low``, ``high``, ``step`` and ``log`` of a range, each checked on its own and together."""
    missing = [f for f in ("low", "high") if f not in spec]
    if missing:
        raise ConfigError(
            f"{where}: '{key}' ({type_}) needs low and high; {' and '.join(missing)} missing"
        )
    bounds = {}
    for name in ("low", "high", "step"):
        value = spec.get(name)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value)) or (
            type_ == "int" and not float(value).is_integer()
        ):
            what = "a whole number" if type_ == "int" else "a finite number"
            raise ConfigError(f"{where}: '{key}' {name} must be {what}; got {shown(value)}")
        bounds[name] = value
    low, high, step = bounds["low"], bounds["high"], bounds.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: '{key}' log must be true or false; got {shown(log)}")
    if not low < high:
        raise ConfigError(f"{where}: '{key}' needs low < high; got low={low}, high={high}")
    if log and low <= 0:
        raise ConfigError(f"{where}: '{key}' log: true needs low > 0; got low={low}")
    if log and step is not None:
        raise ConfigError(f"{where}: '{key}' takes log or step, not both")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: '{key}' step must be > 0; got {step}")
    return low, high, step, log


# ----- grids -----------------------------------------------------------------------------------
def parse_grid(items: Sequence[str], base: Config) -> dict[str, list[Any]]:
    """``["model.head=logits,log_softmax", ...]`` -> ``{key: [values]}``, each value checked
    on top of ``base``. Values are split at commas outside brackets, so a list-valued key
    takes ``model.hidden=[128],[256,128]``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"--grid expects KEY=V1,V2,... (e.g. model.head=logits,log_softmax); got '{item}'"
            )
        key, text = (part.strip() for part in item.split("=", 1))
        _check_key(key, "--grid")
        if key in grid:
            raise ConfigError(f"--grid names '{key}' twice; give all its values in one --grid")
        raw = [v.strip() for v in re.split(r",(?![^\[]*\])", text) if v.strip()]
        if not raw:
            raise ConfigError(f"--grid {key}= needs at least one value (V1,V2,...)")
        values = [
            _grid_value(base, key, v.strip("[]") if v.startswith("[") else v, f"--grid {key}={v}")
            for v in raw
        ]
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {key} lists a value twice: {text}")
        grid[key] = values
    return grid


def grid_values(grid: dict[str, list[Any]] | Sequence[str], base: Config) -> dict[str, list[Any]]:
    """A grid given as ``--grid`` strings (:func:`parse_grid`) or as a dict of values, checked
    on top of ``base``: ``{key: [values as trial parameters]}``."""
    if not isinstance(grid, dict):
        return parse_grid(grid, base)
    values = {k: [_grid_value(base, k, v, f"grid {k}={v}") for v in vs] for k, vs in grid.items()}
    for key in values:
        _check_key(key, "grid")
    return values


# ----- a key and its values --------------------------------------------------------------------
def _check_key(key: str, where: str) -> type:
    """The declared type of a sweepable config key; run.* belongs to the sweep."""
    keys = {k.key for k in describe()}
    if key not in keys:
        raise ConfigError(
            f"{where}: unknown config key '{printable(key)[:100]}'{did_you_mean(key[:100], keys)}; "
            "`mlplab config --list` shows every key"
        )
    if key.startswith("run."):
        raise ConfigError(
            f"{where}: '{key}' is set by the sweep for each trial; it cannot be swept"
        )
    section, name = key.split(".", 1)
    hints = {f.name: f.type for f in dataclasses.fields(SECTIONS[section])}
    text = str(hints[name])
    if text == "bool":
        return bool
    return next((kind for prefix, kind in KINDS if text.startswith(prefix)), str)


def _kind_name(kind: type) -> str:
    return {bool: "true or false", str: "a string", list: "a list"}.get(kind, "a number")


def _choices(key: str) -> tuple[str, ...]:
    return next((k.choices or () for k in describe() if k.key == key), ())


def _grid_value(base: Config, key: str, value: Any, where: str) -> Any:
    """The value as a trial parameter: checked as ``key`` on top of ``base``; scalars as
    their config type, lists as ``"256,128"`` strings (Optuna's choices are scalars)."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    try:
        config = base.override({key: value}, source=where)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(where) else f"{where}: {message}") from None
    section, name = key.split(".", 1)
    coerced = getattr(getattr(config, section), name)
    return ",".join(map(str, coerced)) if isinstance(coerced, list) else coerced
