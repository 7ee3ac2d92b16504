"""The learning-rate range test: its schedule, stopping rule, reading, the CLI's outputs, and
that it leaves the caller's RNG and threads alone (its plot and numbers: tests/report)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from mlplab import Config, ConfigError, load_dataset
from mlplab.cli import main
from mlplab.training.lr_find import _reading, lr_find

TINY = {"data.dataset": "digits", "model.hidden": [16], "train.threads": 1}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_range_reading_and_state(digits) -> None:
    torch.manual_seed(123)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's setting; the test runs at train.threads=1
    try:
        result = lr_find(Config().override(TINY), dataset=digits, steps=120)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.get_rng_state(), rng)
    n = len(result.lrs)
    assert result.lrs[0] == 1e-7 and all(
        b / a == pytest.approx((10 / 1e-7) ** (1 / 119)) for a, b in itertools.pairwise(result.lrs)
    )
    assert len(result.losses) == len(result.smoothed) == n
    # bias-corrected moving average, by hand
    average = 0.0
    for i, loss in enumerate(result.losses):
        average = 0.9 * average + 0.1 * loss
        assert result.smoothed[i] == pytest.approx(average / (1 - 0.9 ** (i + 1)))
    assert math.log(10) - 0.3 < result.smoothed[0] < math.log(10) + 0.3  # a fresh 10-class model
    assert result.method == "steepest descent" and result.suggestion == result.steepest
    assert 1e-4 < result.suggestion < result.minimum  # a descent comes before the minimum
    assert result.minimum_over_10 == result.minimum / 10
    assert result.setup["model"] == "64-16-10 relu" and result.setup["optimizer"] == "adam"
    # the same seed gives the same curve
    again = lr_find(Config().override(TINY), dataset=digits, steps=120)
    assert again.losses == result.losses


def test_a_cropped_model_is_searched_as_configured(digits) -> None:
    result = lr_find(Config().override({**TINY, "model.crop": 2}), dataset=digits, steps=20)
    assert result.setup["model"] == "16-16-10 relu"  # the central 4x4 of 8x8


def test_stops_when_the_loss_blows_up(digits) -> None:
    result = lr_find(
        Config().override({**TINY, "train.optimizer": "sgd", "train.momentum": 0.9}),
        dataset=digits,
        start=1e-4,
        end=1e4,
        steps=60,
    )
    assert len(result.lrs) < 60 and result.stopped.startswith(
        f"stopped at step {len(result.lrs)}, lr "
    )
    last = result.smoothed[-1]
    assert not math.isfinite(result.losses[-1]) or last > 4 * min(result.smoothed)


def test_reading_on_a_made_up_curve() -> None:
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]
    # flat, then falling fastest at index 30 (lr 1e-3), minimum at index 45, then up
    losses = [
        2.0 - 1.5 / (1 + math.exp(-(i - 30) / 2)) if i <= 45 else 0.5 + 0.2 * (i - 45)
        for i in range(60)
    ]
    steepest, minimum = _reading(lrs, losses)
    assert steepest == pytest.approx(1e-3) and minimum == pytest.approx(
        lrs[int(losses.index(min(losses)))]
    )
    assert _reading(lrs[:4], [3, 2, 1, 0.5]) == (None, lrs[3])  # too short for a slope


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"start": 1.0, "end": 0.1},
            "lr-find needs 0 < --start < --end (learning rates); got start=1, end=0.1",
        ),
        ({"steps": 3}, "lr-find --steps must be a whole number >= 10; got 3"),
        ({"stop_factor": 1.0}, "lr-find --stop-factor must be > 1; got 1"),
    ],
)
def test_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        lr_find(Config().override(TINY), **kwargs)
    assert str(info.value) == message


def test_cli(tmp_path: Path, capsys) -> None:
    argv = [
        "lr-find",
        "--dataset",
        "digits",
        "--hidden",
        "16",
        "--steps",
        "30",
        "--out",
        str(tmp_path / "f.png"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0].startswith("lr-find  ")
        and " of 30 steps, lr 1e-07 to " in out[0]
        and "(adam, batch 64, digits, 64-16-10 relu)" in out[0]
    )
    assert out[1].startswith("suggested lr ") and "of the smoothed loss" in out[1]
    assert out[2] == f"wrote    {tmp_path / 'f.png'}, {tmp_path / 'f.json'}"
    assert main(["lr-find", "--dataset", "digits", "--start", "0"]) == 2
    assert "lr-find needs 0 < --start < --end" in capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe",
    [
        {},
        {"train.precision": "bf16"},  # the fast and best presets' autocast
        {
            "train.precision": "bf16",
            "train.label_smoothing": 0.1,
            "augment.shift": 1,
            "augment.rotation": 10.0,
            "train.l1": 1e-4,
            "model.dropout": 0.1,
        },  # best's step
    ],
)
def test_each_step_is_the_one_training_takes(digits, recipe: dict) -> None:
    """lr-find measures the step ``train`` takes: the same forward (under the run's
    precision), loss, backward and update. With one batch per epoch (the whole training
    split) and the rate held at lr-find's first, train's first two epoch losses are
    lr-find's first two step losses, bit for bit."""
    from mlplab import train

    config = Config().override(
        {
            **TINY,
            **recipe,
            "train.batch_size": 4096,
            "train.epochs": 2,
            "train.scheduler": "none",
            "train.lr": 1e-3,
            "run.dir": "runs",
        }
    )
    history = train(config, dataset=digits).history
    found = lr_find(config, dataset=digits, start=1e-3, end=1.0, steps=10)
    assert found.losses[:2] == [r["train_loss"] for r in history]
