"""Search spaces and grids: every kind of range, each value checked as its config key on top
of the base config, and one exact line per mistake naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlplab import Config, ConfigError
from mlplab.sweep.space import Param, format_value, grid_values, parse_grid, parse_space

SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]},
}


# ----- search spaces -------------------------------------------------------------------------
def test_space_parses_every_kind(base: Config) -> None:
    space = parse_space(
        {
            **SPACE,
            "train.epochs": {"type": "int", "low": 1, "high": 3, "step": 1},
            "model.dropout": {"type": "float", "low": 0, "high": 0.5, "step": 0.1},
            "model.head": {"type": "categorical", "choices": ["logits", "softmax"]},
            "data.limit": {"type": "categorical", "choices": [None, 100]},
            "model.init": {"type": "categorical", "choices": ["default", "kaiming"]},
        },
        base,
    )
    assert space["train.lr"] == Param("train.lr", "float", 1e-3, 1e-1, log=True)
    assert space["train.epochs"] == Param("train.epochs", "int", 1, 3, step=1)
    assert space["model.hidden"].choices == ("16", "32,16")
    assert space["data.limit"].choices == (None, 100)
    assert str(space["train.lr"]) == "train.lr float 0.001..0.1, log"
    # lists are accepted as choices of list-valued keys and stored as strings
    assert parse_space(
        {"model.hidden": {"type": "categorical", "choices": [[16], [32, 16]]}}, base
    )["model.hidden"].choices == ("16", "32,16")


def test_space_from_yaml_file(base: Config, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
    )
    assert parse_space(tmp_path / "s.yaml", base)["train.lr"].high == 1e-2


def test_the_readmes_space_line_reads_exponents_as_numbers(base: Config, tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-4 (no dot, no exponent sign) as text; the config reader takes it as a
    # number, so the space reader (the same loader) must too: README writes it this way
    (tmp_path / "s.yaml").write_text(
        "train.lr: {type: float, low: 1e-4, high: 1E-2, log: true}\n"
        "train.epochs: {type: int, low: 1, high: 3e+0}\n"
    )
    space = parse_space(tmp_path / "s.yaml", base)
    assert space["train.lr"] == Param("train.lr", "float", 1e-4, 1e-2, log=True)
    assert space["train.epochs"] == Param("train.epochs", "int", 1, 3)
    # the line README.md shows, as written there
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    line = re.search(r"`(train\.lr: \{type: float, low: 1e-4[^`]*)`", readme)
    assert line, "README.md's sweep paragraph no longer shows a space line with low: 1e-4"
    (tmp_path / "readme.yaml").write_text(line.group(1) + "\n")
    assert parse_space(tmp_path / "readme.yaml", base)["train.lr"].low == 1e-4


# a table of cases, one per line, kept from the formatter (which splits each over four lines)
@pytest.mark.parametrize(
    "space, message",
    [
        ({"train.lrr": {"type": "float", "low": 0.1, "high": 1}},
         "search space: unknown config key 'train.lrr' (did you mean 'train.lr'?); `mlplab config --list` shows every key"),
        ({"train.lr": {"type": "flaot", "low": 0.1, "high": 1}},
         "search space: 'train.lr' type must be one of float, int, categorical; got 'flaot' (did you mean 'float'?)"),
        ({"train.lr": {"type": "float", "low": 0.1, "high": 1, "logg": True}},
         "search space: 'train.lr' has an unknown field 'logg' (did you mean 'log'?); a float range takes low, high, log, step"),
        ({"train.lr": 0.1},
         "search space: 'train.lr' must be a mapping such as {type: float, low: 1e-4, high: 1e-2} or {type: categorical, choices: [a, b]}; got 0.1"),
        ({"train.lr": {"type": "float", "low": 0.1}}, "search space: 'train.lr' (float) needs low and high; high missing"),
        ({"train.lr": {"type": "float", "low": "a", "high": 1}}, "search space: 'train.lr' low must be a finite number; got 'a'"),
        ({"train.lr": {"type": "float", "low": 1, "high": 0.1}}, "search space: 'train.lr' needs low < high; got low=1, high=0.1"),
        ({"train.weight_decay": {"type": "float", "low": 0, "high": 0.1, "log": True}},
         "search space: 'train.weight_decay' log: true needs low > 0; got low=0"),
        ({"train.lr": {"type": "float", "low": -1, "high": 0.1}},
         "search space: 'train.lr' low=-1: config key 'train.lr' must be in (0, inf); got -1.0"),
        ({"train.epochs": {"type": "float", "low": 1, "high": 3}},
         "search space: 'train.epochs' is a whole number: use type int or categorical; got type float"),
        ({"train.optimizer": {"type": "float", "low": 1, "high": 3}},
         "search space: 'train.optimizer' is a string: use type categorical (choices: adam, adamw, sgd, rmsprop); got type float"),
        ({"train.optimizer": {"type": "categorical", "choices": ["adam", "adma"]}},
         "search space: 'train.optimizer' choice 'adma': config key 'train.optimizer' must be one of adam, adamw, sgd, rmsprop; got 'adma' (did you mean 'adam'?)"),
        ({"model.hidden": {"type": "categorical", "choices": []}},
         "search space: 'model.hidden' (categorical) needs choices: a non-empty list; got []"),
        ({"run.dir": {"type": "categorical", "choices": ["a"]}},
         "search space: 'run.dir' is set by the sweep for each trial; it cannot be swept"),
        ({}, "search space must map config keys to ranges, e.g. 'train.lr: {type: float, low: 1e-4, high: 1e-2, log: true}'; got {}"),
    ],
)  # fmt: skip
def test_space_errors_name_the_key(base: Config, space: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(space, base)
    assert str(info.value) == message


def test_space_file_errors(base: Config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read space file: nope.yaml: no such file$"):
        parse_space("nope.yaml", base)
    (tmp_path / "bad.yaml").write_text("train.lr: [\n")
    with pytest.raises(ConfigError, match=r"^space file .*bad.yaml is not valid YAML: "):
        parse_space(tmp_path / "bad.yaml", base)


def test_grid_values_split_outside_brackets(base: Config) -> None:
    grid = parse_grid(
        [
            "model.hidden=[16],[32,16]",
            "train.weight_decay=0,1e-5,1e-3",
            "model.head=logits,softmax",
        ],
        base,
    )
    assert grid == {
        "model.hidden": ["16", "32,16"],
        "train.weight_decay": [0.0, 1e-5, 1e-3],
        "model.head": ["logits", "softmax"],
    }


# a table of cases, one per line, kept from the formatter (which splits each over four lines)
@pytest.mark.parametrize(
    "items, message",
    [
        (["model.head"], "--grid expects KEY=V1,V2,... (e.g. model.head=logits,log_softmax); got 'model.head'"),
        (["model.heda=logits"], "--grid: unknown config key 'model.heda' (did you mean 'model.head'?); `mlplab config --list` shows every key"),
        (["model.head=logit"], "--grid model.head=logit: config key 'model.head' must be one of logits, log_softmax, softmax; got 'logit' (did you mean 'logits'?)"),
        (["model.head=logits", "model.head=softmax"], "--grid names 'model.head' twice; give all its values in one --grid"),
        (["train.lr=0.1,0.1"], "--grid train.lr lists a value twice: 0.1,0.1"),
    ],
)  # fmt: skip
def test_grid_errors(base: Config, items: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_grid(items, base)
    assert str(info.value) == message


def test_a_grid_given_as_a_dict(base: Config) -> None:
    """The Python form of a grid: values as Python objects, lists as trial strings."""
    grid = grid_values({"model.hidden": [[16], [32, 16]], "train.lr": [0.1, "0.01"]}, base)
    assert grid == {"model.hidden": ["16", "32,16"], "train.lr": [0.1, 0.01]}
    assert grid_values(["model.head=logits"], base) == {"model.head": ["logits"]}
    with pytest.raises(ConfigError) as info:
        grid_values({"run.name": ["a"]}, base)
    assert (
        str(info.value) == "grid: 'run.name' is set by the sweep for each trial; it cannot be swept"
    )


def test_int_range_and_how_a_range_is_shown(base: Config) -> None:
    space = parse_space({"train.epochs": {"type": "int", "low": 1, "high": 9, "step": 2}}, base)
    epochs = space["train.epochs"]
    assert (epochs.low, epochs.high, epochs.step) == (1, 9, 2) and isinstance(epochs.low, int)
    assert str(epochs) == "train.epochs int 1..9, step 2"
    assert epochs.to_dict() == {"type": "int", "low": 1, "high": 9, "step": 2}
    assert parse_space({"train.epochs": epochs.to_dict()}, base)["train.epochs"] == epochs


def test_values_as_the_sweep_shows_them() -> None:
    assert [format_value(v) for v in (0.000123456, 3, "32,16", None)] == [
        "0.000123",
        "3",
        "32,16",
        "None",
    ]
