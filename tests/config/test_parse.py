"""From text to config values: YAML files, section.key overrides and --set strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplab import Config
from mlplab.config.parse import flatten, load_yaml, parse_pairs
from mlplab.errors import ConfigError


def test_string_overrides_are_typed() -> None:
    config = Config().with_overrides(
        [
            "train.lr=2e-3",
            "model.hidden=512,256",
            "train.nesterov=false",
            "data.limit=none",
            "augment.rotation=7",
        ]
    )
    assert config.train.lr == 0.002 and config.model.hidden == [512, 256]
    assert (
        config.train.nesterov is False
        and config.data.limit is None
        and config.augment.rotation == 7.0
    )
    assert Config().with_overrides(["model.hidden=[]"]).model.hidden == []
    assert Config().with_overrides(["model.tta=shift, rotate"]).model.tta == ["shift", "rotate"]
    assert Config().with_overrides(["model.tta=[]"]).model.tta == []


def test_yaml_sections(tmp_path: Path) -> None:
    (tmp_path / "my.yaml").write_text("train:\n  epochs: 3\n  lr: 1e-2\nmodel:\n  hidden: [32]\n")
    config = Config.preset("tutorial").merge_file(tmp_path / "my.yaml")
    assert (config.train.epochs, config.train.lr, config.model.hidden) == (3, 0.01, [32])
    assert config.augment.rotation == 5.0  # the preset's keys stay


def test_exponents_are_numbers_in_every_yaml_mlplab_reads(tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML) reads 1e-4 and 3e+2 as text: one loader, for config files and spaces
    assert load_yaml("a: 1e-4\nb: 1E-4\nc: 3e+2\nd: -2.5e3\ne: .5e-1\nf: 1.0e-4\ng: '1e-4'") == {
        "a": 1e-4,
        "b": 1e-4,
        "c": 300.0,
        "d": -2500.0,
        "e": 0.05,
        "f": 1e-4,
        "g": "1e-4",
    }
    (tmp_path / "my.yaml").write_text("train:\n  lr: 1e-4\n  weight_decay: 5E-4\n")
    config = Config.load(tmp_path / "my.yaml")
    assert (config.train.lr, config.train.weight_decay) == (1e-4, 5e-4)
    # text that now reads as a number is quoted when written, so a config round-trips
    named = Config().with_overrides(["run.name=1e5"])
    (tmp_path / "named.yaml").write_text(named.to_yaml())
    assert Config.load(tmp_path / "named.yaml").run.name == "1e5"


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file: .*missing.yaml: no such file"):
        Config.load(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        Config.load(tmp_path / "bad.yaml")
    (tmp_path / "sec.yaml").write_text("training:\n  epochs: 3\n")
    with pytest.raises(
        ConfigError, match=r"sec.yaml: unknown section 'training' \(did you mean 'train'\?\)"
    ):
        Config.load(tmp_path / "sec.yaml")
    (tmp_path / "key.yaml").write_text("train:\n  epocs: 3\n")
    with pytest.raises(
        ConfigError,
        match=r"key.yaml: unknown config key 'train.epocs' \(did you mean 'train.epochs'\?\)",
    ):
        Config.load(tmp_path / "key.yaml")


def test_hostile_config_files_are_one_short_line(tmp_path: Path) -> None:
    """A FIFO never blocks, a huge file is not read, a value is shown cut, not whole."""
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(ConfigError, match=r"fifo.yaml: a FIFO \(named pipe\), not a regular file"):
        Config.load(tmp_path / "fifo.yaml")
    (tmp_path / "big.yaml").write_text("# " + "x" * 2**20 + "\n")
    with pytest.raises(ConfigError, match=r"big.yaml is over 1 MiB; a config is a few lines"):
        Config.load(tmp_path / "big.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"run:\n  name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml is not UTF-8 text \(invalid"):
        Config.load(tmp_path / "latin.yaml")
    (tmp_path / "long.yaml").write_text("train:\n  optimizer: " + "a" * 5000 + "\n")
    with pytest.raises(ConfigError) as err:
        Config.load(tmp_path / "long.yaml")
    assert len(str(err.value)) < 400, str(err.value)


def test_yaml_too_deep_or_numbers_too_long_are_one_line(tmp_path: Path) -> None:
    """RecursionError and Python's 4,300-digit limit were 'internal error'."""
    (tmp_path / "deep.yaml").write_text("model:\n  hidden: " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(ConfigError) as err:
        Config.load(tmp_path / "deep.yaml")
    assert str(err.value) == (
        f"config file {tmp_path / 'deep.yaml'} is not valid YAML: lists or mappings nested too "
        "deeply"
    )
    (tmp_path / "digits.yaml").write_text("train:\n  epochs: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"digits\.yaml is not valid YAML: a value that cannot "
                       r"be read \(Exceeds the limit \(4300 digits\)"):  # fmt: skip
        Config.load(tmp_path / "digits.yaml")
    with pytest.raises(ConfigError, match=r"must be C,H,W .*; got '1,²,8'"):
        Config().override({"data.image_shape": "1,²,8"})  # isdigit() took it, int() did not


def test_yaml_errors_are_one_line_and_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text(
        "train:\n  lr: 0.1\nmodel:\n  hidden: [8]\ntrain:\n  epochs: 2\n"
    )
    with pytest.raises(ConfigError) as err:
        Config.load(tmp_path / "dup.yaml")
    assert str(err.value).endswith(
        "dup.yaml is not valid YAML: key 'train' appears twice (first on line 1); write each "
        "key once (line 5, column 1)"
    )
    (tmp_path / "bad.yaml").write_text("train:\n  lr: [0.1\n")
    expected = (
        r"bad.yaml is not valid YAML: while parsing a flow sequence: expected ',' or ']', "
        r"but got '<stream end>' \(line 3, column 1\)$"
    )
    with pytest.raises(ConfigError, match=expected):
        Config.load(tmp_path / "bad.yaml")


def test_set_pairs_split_at_the_first_equals_sign() -> None:
    assert parse_pairs([" run.name = a=b ", "train.lr=1e-3"]) == {
        "run.name": "a=b",
        "train.lr": "1e-3",
    }
    assert Config().with_overrides(["run.name=a=b"]).run.name == "a=b"


def test_with_overrides_takes_a_mapping_pairs_or_strings() -> None:
    """The Python path: {"train.epochs": 2} failed with the CLI's `--set expects key=value`."""
    tutorial = Config.preset("tutorial")
    expected = tutorial.override({"train.epochs": 2, "model.hidden": [64, 32]})
    assert tutorial.with_overrides({"train.epochs": 2, "model.hidden": [64, 32]}) == expected
    assert tutorial.with_overrides([("train.epochs", 2), ("model.hidden", [64, 32])]) == expected
    assert tutorial.with_overrides(["train.epochs=2", ("model.hidden", "64,32")]) == expected
    assert tutorial.with_overrides("train.epochs=2").train.epochs == 2
    assert tutorial.with_overrides({}) == tutorial


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochs"], "with_overrides expects key=value (e.g. train.epochs=3), or a mapping "
         "{'train.epochs': VALUE}, got 'train.epochs'"),
        ({"train.epoch": 2}, "with_overrides: unknown config key 'train.epoch' (did you mean "
         "'train.epochs'?); keys of 'train' are:"),
        ({"train.epochs": 0}, "config key 'train.epochs' must be in [1, inf); got 0"),
        ([("train.epochs", 2, 3)], "with_overrides: each override is a (key, value) pair or a "
         "'key=value' string; got ('train.epochs', 2, 3)"),
        ({3: "x"}, "with_overrides: a config key is a 'section.key' string (e.g. 'train.epochs'); "
         "got 3 (for the value 'x')"),
        (2, "with_overrides takes a mapping ({'train.epochs': 2}), (key, value) pairs or "
         "'key=value' strings; got 2"),
    ],
)  # fmt: skip
def test_with_overrides_errors_name_the_key(overrides, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config().with_overrides(overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_the_cli_still_says_set(capsys: pytest.CaptureFixture[str]) -> None:
    from mlplab.cli import main

    assert main(["config", "--set", "train.epochs"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: --set expects key=value (e.g. train.epochs=3), got 'train.epochs'"
    )


def test_a_section_is_a_mapping_and_an_empty_one_is_nothing() -> None:
    sections = ["train", "model"]
    assert flatten({"train": {"lr": 1}, "model": None}, sections, "f.yaml") == {"train.lr": 1}
    with pytest.raises(ConfigError) as err:
        flatten({"train": [1, 2]}, sections, "f.yaml")
    assert str(err.value) == "f.yaml: section 'train' must be a mapping of keys, got [1, 2]"


@pytest.mark.parametrize(
    "key, text, value",
    [
        ("data.limit", "None", None),
        ("data.limit", "", None),
        ("data.limit", "null", None),
        ("data.limit", "12", 12),
        ("train.epochs", 3.0, 3),
        ("train.nesterov", "off", False),
        ("train.nesterov", "Yes", True),
        ("augment.rotation", 7, 7.0),
        ("run.name", 2024, "2024"),
        ("model.hidden", "[8, 4]", [8, 4]),
        ("model.hidden", (8,), [8]),
        ("model.hidden", 32, [32]),  # `hidden: 32` in YAML, as --set model.hidden=32
        ("model.hidden", "32", [32]),
        ("train.epochs", "2.0", 2),  # --set reads what YAML reads: a whole float
        ("train.epochs", "+3", 3),
        ("model.tta", ["flip"], ["flip"]),
    ],
)
def test_values_are_coerced_to_the_field_type(key: str, text: object, value: object) -> None:
    section, name = key.split(".")
    got = getattr(getattr(Config().override({key: text}, validate=False), section), name)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.epochs", True, "config key 'train.epochs' must be a whole number; got True"),
        ("train.lr", False, "config key 'train.lr' must be a number; got False"),
        ("run.name", ["a"], "config key 'run.name' must be a string; got ['a']"),
        (
            "model.tta",
            ["flip", 3],
            "config key 'model.tta' must be a comma-separated list of names",
        ),
        (
            "data.limit",
            "some",
            "config key 'data.limit' must be a whole number or none; got 'some'",
        ),
        ("train.epochs", "2.5", "config key 'train.epochs' must be a whole number; got '2.5'"),
        ("train.epochs", "²", "config key 'train.epochs' must be a whole number; got '²'"),
        (  # it read as [] (no hidden layer): every bracket was stripped
            "model.hidden",
            "[[[]]]",
            "config key 'model.hidden' must be a comma-separated list of whole numbers",
        ),
    ],
)
def test_a_value_of_the_wrong_type_names_the_type(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config().override({key: value}, validate=False)
    assert str(err.value).startswith(message), str(err.value)
