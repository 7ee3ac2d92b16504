"""The validation: the table's checks, the cross-key checks and the checks against the data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mlplab import Config
from mlplab.config import rules
from mlplab.data import Dataset, Split
from mlplab.errors import ConfigError


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
        Config().with_overrides(pairs, source="--set")  # as the CLI calls it
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


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


# one case a line: inputs and the messages they pin read better as a table than wrapped
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.image_shape": "1,28"}, "config key 'data.image_shape' must be C,H,W"),
        ({"data.target": "y"}, "data.target applies to a --dataset file or folder, not to the registered dataset 'mnist'"),
        ({"data.dataset": "t.csv", "data.target": "y", "model.task": "classification"}, "data.target='y' makes a regression; model.task=classification conflicts"),
        ({"train.label_smoothing": 0.1, "model.head": "softmax"}, "train.label_smoothing=0.1 needs model.head=logits"),
        ({"train.cycle_momentum": True}, "train.cycle_momentum=true needs train.scheduler=onecycle; got scheduler=none"),
        ({"train.device": "cuda:x"}, "train.device must be one of auto, cpu, cuda, cuda:N, mps; got 'cuda:x' (did you mean 'cuda'?)"),
    ],
)  # fmt: skip
def test_each_cross_key_check_names_its_keys(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config().override(overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_the_cross_key_checks_run_in_order() -> None:
    """Two problems at once: the first check of CROSS_KEY_CHECKS names its own."""
    names = [check.__name__ for check in rules.CROSS_KEY_CHECKS]
    assert names.index("_nesterov_needs_sgd_momentum") < names.index("_device_is_known")
    with pytest.raises(ConfigError, match="^train.nesterov=true needs"):
        Config().override({"train.nesterov": True, "train.device": "gpu"})
    assert Config().override({"train.device": "cuda:1"}).train.device == "cuda:1"


def test_validate_returns_the_config_and_changes_nothing() -> None:
    config = Config.preset("best")
    before = config.to_dict()
    assert config.validate() is config and config.to_dict() == before


def test_one_name_check_serves_the_config_and_the_model() -> None:
    from mlplab.model import mlp

    assert mlp.check_tta is rules.check_tta
    with pytest.raises(ConfigError) as err:
        rules.check_names(["a", "b", "a"], ("a", "b"), unknown="{got}", twice="{name} twice")
    assert str(err.value) == "a twice"
    with pytest.raises(ConfigError) as err:
        rules.check_names(["adma"], ("adam", "sgd"), unknown="{got} is not one of {choices}")
    assert str(err.value) == "'adma' is not one of adam, sgd (did you mean 'adam'?)"
    rules.check_names(["a", "a"], ("a",), unknown="")  # without a `twice` message, repeats pass


def _dataset(task: str, shape: tuple[int, ...] = (1, 4, 4)) -> Dataset:
    images = torch.zeros(8, *shape, dtype=torch.uint8)
    labels = torch.rand(8) if task == "regression" else torch.tensor([0, 1] * 4)
    classes = () if task == "regression" else ("a", "b")
    split = Split(images, labels)
    return Dataset("tiny", split, split, classes, "memory", task=task)


# one case a line: inputs and the messages they pin read better as a table than wrapped
@pytest.mark.parametrize(
    "task, overrides, message",
    [
        ("classification", {"model.task": "regression"}, "model.task=regression but dataset 'tiny' is a classification dataset (pass --target COLUMN for a regression on a CSV)"),
        ("regression", {"model.task": "classification"}, "model.task=classification but dataset 'tiny' is a regression dataset"),
        ("regression", {"model.tta": ["flip"]}, "model.tta=flip averages class probabilities; a regression has none (leave it at [])"),
        ("regression", {"train.select": "val_accuracy"}, "train.select=val_accuracy needs classes; a regression keeps the epoch of the lowest val_loss (or the last)"),
        ("regression", {"train.label_smoothing": 0.1}, "train.label_smoothing=0.1 smooths class targets; a regression has none (leave it at 0)"),
        ("regression", {"model.head": "softmax"}, "model.head=softmax is for classes; a regression's output is a plain value (logits)"),
        ("regression", {"augment.erase": 0.5}, "augmentation (rotation, shift, hflip, scale, elastic, erase) changes pixels: it does not apply to tabular regression"),
    ],
)  # fmt: skip
def test_the_config_is_checked_against_the_data(task: str, overrides: dict, message: str) -> None:
    rules.check_against_data(Config(), _dataset(task))  # the defaults fit either task
    with pytest.raises(ConfigError) as err:
        rules.check_against_data(Config().override(overrides), _dataset(task))
    assert str(err.value) == message


def test_test_time_views_need_images_of_2x2_pixels() -> None:
    config = Config().override({"model.tta": ["shift"]})
    rules.check_against_data(config, _dataset("classification", (1, 2, 2)))
    with pytest.raises(ConfigError) as err:
        rules.check_against_data(config, _dataset("classification", (5, 1, 1)))
    assert str(err.value) == "model.tta needs images of at least 2x2 pixels; the inputs are 5x1x1"
