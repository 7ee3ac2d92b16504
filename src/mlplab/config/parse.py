"""From text to config values: YAML files, ``section.key`` overrides and ``--set key=value``.

Every value arrives as YAML or as a command-line string and is coerced to its field's declared
type here (``"512,256"`` to ``[512, 256]``, ``"none"`` to None); a value that does not fit gives
one line naming the key, the value and the type expected. A YAML problem is one line too
(PyYAML's own text spans several), and a key written twice in a mapping is refused.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import ConfigError, did_you_mean
from ..files.limits import printable, read_text_file, shown
from .rules import describe_type, field_kind

if TYPE_CHECKING:
    from .sections import Config

__all__ = [
    "MAX_CONFIG_BYTES",
    "apply",
    "dump_yaml",
    "flatten",
    "load_yaml",
    "parse_overrides",
    "parse_pairs",
    "read_tree",
    "read_yaml",
    "yaml_problem",
]

MAX_CONFIG_BYTES = 1024**2  # a config file is a few lines of YAML


# ----- YAML ---------------------------------------------------------------------------------
# YAML 1.1 (PyYAML's) reads a float only with a dot and a signed exponent: ``1e-4``, ``1E-4``
# and ``3e+2`` come back as text, while YAML 1.2, JSON and Python read them as numbers. Every
# YAML mlplab reads (config files, search spaces) and writes goes through the loader and dumper
# below, which read those forms as floats (and quote text that would now read as one, so a
# ``run.name: "1e5"`` round-trips).
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no tags run anything) that refuses a key written twice in one mapping:
    PyYAML keeps the last one silently, so a second ``train:`` section would drop the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key '{key}' appears twice (first on line {seen[key].line + 1}); "
                        "write each key once",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """yaml.SafeDumper that knows the loader's exponent floats, so it quotes text like them."""


for _yaml_class in (_StrictLoader, _Dumper):
    _yaml_class.add_implicit_resolver(_FLOAT_TAG, _EXPONENT_FLOAT, list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse YAML as ``yaml.safe_load`` does, refusing a key written twice in a mapping and
    reading ``1e-4``, ``1E-4`` and ``3e+2`` as floats (YAML 1.2's numbers, not 1.1's text)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no tag constructs anything
    except RecursionError:  # PyYAML composes nested lists recursively
        raise yaml.YAMLError("lists or mappings nested too deeply") from None
    except ValueError as exc:  # a number past Python's 4,300-digit limit for int("...")
        first = " ".join(str(exc).split())[:120]
        raise yaml.YAMLError(f"a value that cannot be read ({first})") from None


def dump_yaml(tree: Any, *, flow: bool | None = False) -> str:
    """YAML text that :func:`load_yaml` reads back as ``tree`` (block style; ``flow=None``
    writes lists of scalars inline). Keys keep their order."""
    return yaml.dump(tree, Dumper=_Dumper, sort_keys=False, default_flow_style=flow)


def read_yaml(path: Path, what: str, hint: str) -> Any:
    """The YAML of a small file mlplab reads (``what``: "config file", "space file"): read
    within :data:`MAX_CONFIG_BYTES` (a FIFO or a device never blocks, a huge file is not
    read) and parsed by :func:`load_yaml`; any problem is one :class:`ConfigError` line, with
    ``hint`` saying what such a file holds."""
    text = read_text_file(path, MAX_CONFIG_BYTES, what, error=ConfigError, hint=hint)
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{what} {printable(path)} is not valid YAML: {yaml_problem(exc)}"
        ) from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).split())
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{context + ': ' if context else ''}{problem}{where}"


def read_tree(path: Path) -> dict[str, Any]:
    """The ``{section: {key: value}}`` mapping of a YAML config file (an empty file: {})."""
    hint = "a config is a few lines of YAML (see `mlplab config --preset tutorial`)"
    tree = read_yaml(path, "config file", hint)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of sections, got {type(tree).__name__}"
        )
    return tree


# ----- keys ---------------------------------------------------------------------------------
def flatten(tree: dict[Any, Any], sections: list[str], source: str) -> dict[str, Any]:
    """``{section: {key: value}}`` as ``{"section.key": value}``; ``sections`` are the names
    a tree may use, ``source`` names the file (or API) in a message."""
    flat: dict[str, Any] = {}
    for section, values in tree.items():
        if section not in sections:
            raise ConfigError(
                f"{source}: unknown section '{section}'{did_you_mean(str(section), sections)}; "
                f"sections are: {', '.join(sections)}"
            )
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(
                f"{source}: section '{section}' must be a mapping of keys, got {shown(values)}"
            )
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def parse_pairs(pairs: list[str], source: str = "--set") -> dict[str, str]:
    """``["train.epochs=3"]`` as ``{"train.epochs": "3"}`` (the values still text)."""
    assignments = {}
    for pair in pairs:
        if "=" not in pair:
            also = "" if source == "--set" else f", or a mapping {{'{printable(pair)}': VALUE}}"
            raise ConfigError(
                f"{source} expects key=value (e.g. train.epochs=3){also}, got '{printable(pair)}'"
            )
        key, value = pair.split("=", 1)
        assignments[key.strip()] = value.strip()
    return assignments


def parse_overrides(overrides: Any, source: str) -> dict[str, Any]:
    """Overrides as ``{"section.key": value}`` from any of the forms a caller writes: a
    mapping (``{"train.epochs": 2}``), ``(key, value)`` pairs, ``"key=value"`` strings (the
    CLI's ``--set``; their values are text, parsed as in a config file), or one such string.
    A later key wins, as with repeated ``--set``."""
    if isinstance(overrides, str):
        overrides = [overrides]
    elif hasattr(overrides, "keys"):  # a mapping
        overrides = list(overrides.items())
    elif not isinstance(overrides, typing.Iterable):
        raise ConfigError(
            f"{source} takes a mapping ({{'train.epochs': 2}}), (key, value) pairs or "
            f"'key=value' strings; got {shown(overrides)}"
        )
    assignments: dict[str, Any] = {}
    for item in overrides:
        if isinstance(item, str):
            assignments.update(parse_pairs([item], source))
            continue
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ConfigError(
                f"{source}: each override is a (key, value) pair or a 'key=value' string; "
                f"got {shown(item)}"
            )
        key, value = item
        if not isinstance(key, str):
            raise ConfigError(
                f"{source}: a config key is a 'section.key' string (e.g. 'train.epochs'); "
                f"got {shown(key)} (for the value {shown(value)})"
            )
        assignments[key.strip()] = value
    return assignments


def apply(config: Config, assignments: dict[str, Any], source: str) -> Config:
    """A copy of ``config`` with ``{"section.key": value}`` set, each value coerced to its
    field's type (not yet validated: that is the caller's, once every step is merged)."""
    new = dataclasses.replace(
        config,
        **{
            s.name: dataclasses.replace(getattr(config, s.name)) for s in dataclasses.fields(config)
        },
    )
    for dotted, value in assignments.items():
        section_name, key = _split_key(new, dotted, source)
        section = getattr(new, section_name)
        hint = typing.get_type_hints(type(section))[key]
        setattr(section, key, _coerce(f"{section_name}.{key}", hint, value))
    return new


def _split_key(config: Config, dotted: str, source: str) -> tuple[str, str]:
    """``"train.lr"`` as ``("train", "lr")``, or a ConfigError with the closest key."""
    keys = {
        s.name: [f.name for f in dataclasses.fields(getattr(config, s.name))]
        for s in dataclasses.fields(config)
    }
    everything = [f"{section}.{key}" for section, names in keys.items() for key in names]
    close = did_you_mean(dotted, everything)
    if "." not in dotted:
        raise ConfigError(
            f"{source}: config key '{dotted}' must be section.key{close}; "
            f"sections are: {', '.join(keys)}"
        )
    section, key = dotted.split(".", 1)
    if section not in keys:
        raise ConfigError(
            f"{source}: unknown config key '{dotted}'{close}; sections are: {', '.join(keys)}"
        )
    if key not in keys[section]:
        raise ConfigError(
            f"{source}: unknown config key '{dotted}'{close}; "
            f"keys of '{section}' are: {', '.join(keys[section])}"
        )
    return section, key


# ----- values -------------------------------------------------------------------------------
def _coerce(dotted: str, hint: Any, value: Any) -> Any:
    """A value from YAML or the command line as the field's declared type."""
    kind, optional = field_kind(hint)
    if optional and (value is None or (isinstance(value, str) and value.lower() in _NONE)):
        return None
    convert = _CONVERT.get(kind) or _list_of(typing.get_args(kind))
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config key '{dotted}' must be {describe_type(kind, optional)}; got {shown(value)}"
        ) from None


_NONE = ("none", "null", "")  # what an optional key takes for None, from the command line
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in _TRUE + _FALSE:
        return v.lower() in _TRUE
    raise ValueError(v)


def _to_int(v: Any) -> int:
    """An int from an int, a whole float or a decimal string; ValueError otherwise."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):  # as YAML reads the same text: 12, +12, 2.0 (a whole float)
        text = v.strip()
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return int(text)
        number = float(text)  # ValueError for words
        if number.is_integer():
            return int(number)
    raise ValueError(v)


def _to_float(v: Any) -> float:
    if isinstance(v, bool):  # float(True) is 1.0: a typo, not a number
        raise ValueError(v)
    return float(v)


def _to_text(v: Any) -> str:
    """A string key's value: text, or a number YAML read as one (``run.name: 2024``)."""
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise ValueError(v)
    return str(v)


def _to_name(v: Any) -> str:
    """An item of a list of names: a string only (a number is not a name)."""
    if isinstance(v, str):
        return v
    raise ValueError(v)


_CONVERT: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_text,
}


def _list_of(item_types: tuple[Any, ...]) -> Callable[[Any], list[Any]]:
    """A list[int] or list[str] field's converter: a YAML list, or ``"a,b"`` / ``"[a, b]"``."""
    item = _to_int if item_types == (int,) else _to_name

    def convert(value: Any) -> list[Any]:
        if item is _to_int and isinstance(value, int) and not isinstance(value, bool):
            value = [value]  # `hidden: 32` in YAML, as `--set model.hidden=32`
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):  # one pair: "[[[]]]" is no list
                text = text[1:-1].strip()
            value = [] if not text else [v.strip() for v in text.split(",")]
        if not isinstance(value, (list, tuple)):
            raise ValueError(value)
        return [item(v.strip() if isinstance(v, str) else v) for v in value]

    return convert
