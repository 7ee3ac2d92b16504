"""The config tree: defaults, presets, YAML round trip, overrides, and pinned error messages."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlplab import PRESETS, Config
from mlplab.errors import ConfigError


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    config = Config.preset("tutorial").override({"model.dropout": 0.25, "data.limit": 100})
    config.save(tmp_path / "c.yaml")
    again = Config.load(tmp_path / "c.yaml")
    assert again == config
    assert again.to_yaml() == config.to_yaml()


def test_presets() -> None:
    tutorial = Config.preset("tutorial")
    assert tutorial.model.hidden == [250, 100] and tutorial.train.optimizer == "adam"
    assert (tutorial.augment.rotation, tutorial.augment.shift) == (5.0, 2)
    assert (tutorial.train.batch_size, tutorial.train.epochs, tutorial.train.lr) == (64, 10, 1e-3)
    assert tutorial.run.name == "tutorial"
    quick = Config.preset("quickstart")
    assert (
        quick.model.hidden == [128, 64]
        and quick.model.head == "log_softmax"
        and quick.data.normalize == "symmetric"
    )
    dudl = Config.preset("dudl")
    assert (
        dudl.model.hidden == [64, 32, 32] and dudl.train.batch_size == 32 and dudl.train.lr == 0.01
    )
    assert Config.preset("sigmoid").model.activation == "sigmoid"
    usps = Config.preset("usps")
    assert (usps.data.dataset, usps.model.hidden, usps.model.activation) == (
        "usps",
        [256],
        "sigmoid",
    )
    cifar = Config.preset("cifar10")
    assert cifar.augment.hflip and cifar.model.dropout > 0 and cifar.train.weight_decay > 0
    assert (
        Config.preset("logistic").model.hidden == []
        and Config.preset("linreg").task == "classification"
    )
    assert set(PRESETS) == {
        "tutorial",
        "quickstart",
        "dudl",
        "sigmoid",
        "logistic",
        "linreg",
        "usps",
        "cifar10",
        "fast",
        "best",
        "fashion-best",
    }
    fast, best = Config.preset("fast"), Config.preset("best")
    assert fast.train.precision == "bf16" and fast.train.epochs == 3
    assert best.augment.elastic > 0 and best.train.label_smoothing > 0
    assert Config.preset("fashion-best").data.dataset == "fashion-mnist"
    assert best.model.tta == ["shift", "rotate"] and Config.preset("fashion-best").model.tta == [
        "flip"
    ]
    for record in ("best", "fashion-best"):  # chosen on validation, fitted on every image
        config = Config.preset(record)
        assert config.data.val_size == 0 and config.train.select == "last"
    for name in PRESETS:  # every preset is a valid config on its own
        Config.preset(name).validate()


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


@pytest.mark.parametrize(
    "pairs, message",
    [
        (
            ["train.lerning_rate=1"],
            "--set: unknown config key 'train.lerning_rate' (did you mean 'train.lr'?); keys of 'train' are: epochs, batch_size",
        ),
        (
            ["train.epoch=3"],
            "--set: unknown config key 'train.epoch' (did you mean 'train.epochs'?); keys of 'train' are:",
        ),
        (
            ["trian.epochs=3"],
            "--set: unknown config key 'trian.epochs' (did you mean 'train.epochs'?); sections are: data, augment, model, train, run",
        ),
        (
            ["epochs=3"],
            "--set: config key 'epochs' must be section.key (did you mean 'train.epochs'?); sections are:",
        ),
        (["train.epochs"], "--set expects key=value (e.g. train.epochs=3), got 'train.epochs'"),
        (["train.lr=-1"], "config key 'train.lr' must be in (0, inf); got -1.0"),
        (["train.epochs=0"], "config key 'train.epochs' must be in [1, inf); got 0"),
        (["train.epochs=2.5"], "config key 'train.epochs' must be a whole number; got '2.5'"),
        (["model.dropout=1"], "config key 'model.dropout' must be in [0, 1); got 1.0"),
        (
            ["model.hidden=512,0"],
            "config key 'model.hidden' must be each in [1, inf); got [512, 0]",
        ),
        (
            ["model.hidden=a,b"],
            "config key 'model.hidden' must be a comma-separated list of whole numbers (e.g. 512,256); got 'a,b'",
        ),
        (
            ["model.tta=flip,shfit"],
            "config key 'model.tta' takes names from shift, rotate, flip; got 'shfit' (did you mean 'shift'?)",
        ),
        (["model.tta=flip,flip"], "config key 'model.tta' names 'flip' twice; name each once"),
        (
            ["train.optimizer=adma"],
            "config key 'train.optimizer' must be one of adam, adamw, sgd, rmsprop; got 'adma' (did you mean 'adam'?)",
        ),
        (
            ["model.activation=Relu"],
            "config key 'model.activation' must be one of relu, sigmoid, tanh, gelu; got 'Relu' (did you mean 'relu'?)",
        ),
        (
            ["data.dataset=fashion_mnist"],
            "config key 'data.dataset' must be one of mnist, fashion-mnist, digits, make-regression, usps, cifar10 or a file or folder path; got 'fashion_mnist' (did you mean 'fashion-mnist'?)",
        ),
        (
            ["train.nesterov=maybe"],
            "config key 'train.nesterov' must be true or false; got 'maybe'",
        ),
        (
            ["train.nesterov=true"],
            "train.nesterov=true needs train.optimizer=sgd and train.momentum > 0; got optimizer=adam, momentum=0.0",
        ),
        (
            ["data.val_size=10.5"],
            "data.val_size must be a fraction in [0, 1) or a whole count; got 10.5",
        ),
        (
            ["train.device=gpu"],
            "train.device must be one of auto, cpu, cuda, cuda:N, mps; got 'gpu'",
        ),
        (["augment.rotation=nan"], "config key 'augment.rotation' must be in [0, 180]; got nan"),
    ],
)
def test_errors_name_key_value_and_what_is_allowed(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config().with_overrides(pairs)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_preset() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown preset 'tutorail' \(did you mean 'tutorial'\?\); choose one of: tutorial, quickstart, dudl, sigmoid",
    ):
        Config.preset("tutorail")


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


def test_docs_list_every_key_with_its_default() -> None:
    """docs/config.md's table is the validation table: it must not drift from the code."""
    from mlplab.config import describe

    text = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
    for k in describe():
        assert f"| `{k.key}` | `{k.default}` | {k.help} |" in text, k.key


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        (
            "train",
            "epochs",
            2.5,
            "config key 'train.epochs' must be a whole number; got 2.5 (float)",
        ),
        (
            "model",
            "hidden",
            (250, 100),
            "config key 'model.hidden' must be a comma-separated list of whole numbers (e.g. 512,256); got (250, 100) (tuple)",
        ),
        (
            "model",
            "tta",
            "shift",
            "config key 'model.tta' must be a comma-separated list of names (e.g. shift,rotate); got 'shift' (str)",
        ),
        ("model", "tta", [1], "config key 'model.tta' must be a comma-separated list of names"),
        ("data", "val_size", math.inf, "config key 'data.val_size' must be in [0, inf); got inf"),
        ("train", "lr", math.inf, "config key 'train.lr' must be in (0, inf); got inf"),
        ("train", "lr", 1e400, "config key 'train.lr' must be in (0, inf); got inf"),
        (
            "train",
            "seed",
            2**64,
            "config key 'train.seed' must be in [0, 9.22337e+18]; got 18446744073709551616",
        ),
        ("train", "lr", "0.1", "config key 'train.lr' must be a number; got '0.1' (str)"),
        ("train", "nesterov", 1, "config key 'train.nesterov' must be true or false; got 1 (int)"),
        ("run", "name", "a/b", "config key 'run.name' must be a plain folder-name part"),
        ("run", "name", "a\nb", "config key 'run.name' must be a plain folder-name part"),
        ("run", "name", "\x1b[31mred", "config key 'run.name' must be a plain folder-name part"),
        ("run", "name", "x" * 101, "config key 'run.name' must be a plain folder-name part"),
    ],
)
def test_api_values_are_type_checked_at_validate(section, key, value, message) -> None:
    config = Config()
    setattr(getattr(config, section), key, value)
    with pytest.raises(ConfigError) as err:
        config.validate()
    assert str(err.value).startswith(message), str(err.value)


def test_validated_once_on_the_merged_config(tmp_path: Path, capsys) -> None:
    """A YAML file and flags that are only valid together are accepted."""
    from mlplab.cli import main

    (tmp_path / "nesterov.yaml").write_text("train:\n  nesterov: true\n")
    argv = [
        "config",
        "--config",
        str(tmp_path / "nesterov.yaml"),
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
    ]
    assert main(argv) == 0
    assert "nesterov: true" in capsys.readouterr().out
    assert main(argv[:3]) == 2  # alone, the file is not
    assert "train.nesterov=true needs train.optimizer=sgd" in capsys.readouterr().err


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
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML: while parsing a flow "
                       r"sequence: expected ',' or ']', but got '<stream end>' \(line 3, column 1\)$"):  # fmt: skip
        Config.load(tmp_path / "bad.yaml")
