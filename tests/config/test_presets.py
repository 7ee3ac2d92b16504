"""The presets: the tutorials' recipes, each a valid config on its own."""

from __future__ import annotations

import pytest

from mlplab import PRESETS, Config
from mlplab.config.presets import preset_overrides
from mlplab.errors import ConfigError
from mlplab.training.session import aligns_once


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
    assert fast.train.precision == "auto" and fast.train.epochs == 2
    # never augmented, so its images are aligned once, inside the first epoch
    assert fast.model.deskew and fast.model.center and aligns_once(fast)
    # the speed and record presets choose their precision on the machine (bf16 where native)
    assert {Config.preset(n).train.precision for n in ("best", "fashion-best")} == {"auto"}
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


def test_unknown_preset() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown preset 'tutorail' \(did you mean 'tutorial'\?\); choose one of: tutorial, quickstart, dudl, sigmoid",
    ):
        Config.preset("tutorail")


def test_a_preset_names_its_run_and_explains_itself() -> None:
    assert Config.preset("fast").run.name == "fast"
    assert preset_overrides("fast") is PRESETS["fast"]["overrides"]
    assert all(isinstance(p["help"], str) and p["help"] for p in PRESETS.values())
    with pytest.raises(ConfigError, match=r"unknown preset 'fsat' \(did you mean 'fast'\?\)"):
        preset_overrides("fsat")
