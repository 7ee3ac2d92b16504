"""Shared fixtures: isolation from the user's files, small data, real MNIST when present."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

from mlplab import Config, Dataset, Split

torch.set_num_threads(1)  # tests may share the machine: one thread never collapses

# Ctrl-C as a test sends it (SIGINT to a child `mlplab train`, to `mlplab serve`) needs a child
# that does not ignore SIGINT, and children inherit an ignored signal: a suite started as a
# background job of a script (`nohup .ci/run &`, cron) has SIGINT ignored from its shell.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REAL_DATA_DIR = os.environ.get("MLPLAB_DATA_DIR")

# Fuzzing (tests marked ``fuzz``): a bounded run by default, so the suite stays within minutes
# on 2 cores; ``make fuzz`` selects the "long" profile (MLPLAB_FUZZ=long) for a local soak.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,  # a reader's first call pays for imports; time is bounded per test instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # CI is reproducible: the same examples every run
)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("long" if os.environ.get("MLPLAB_FUZZ") == "long" else "ci")


# --- running on several cores (pytest-xdist; `make test` passes -n auto --dist loadfile) -------
# Each test module runs whole on one worker: a module's shared fixture (a trained run, the docs
# harness's world, the first-hour test's wheel and venv) is built once, and the docs harness's
# blocks of a page run in order, as it needs. (xdist's `loadgroup` would let the short tests
# spread further, but it groups nothing under pytest 9.2: pytest-xdist issue 1386.)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-n N`` without ``--dist`` means ``--dist loadfile`` here: xdist's default, ``load``,
    would split a module's shared fixture, and a docs page's blocks, across workers."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "loadfile"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty folder with its own cache, no mirrors and no progress bars."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLPLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLPLAB_PROGRESS", "0")
    monkeypatch.delenv("MLPLAB_MIRROR", raising=False)
    monkeypatch.delenv("MLPLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("MLPLAB_THREADS", "1")  # tests share the machine: one thread never collapses
    return tmp_path


def real_data(name: str, probe: str = "train-images-idx3-ubyte.gz") -> Path:
    """The folder holding ``<name>/`` with the real files, or skip (never download)."""
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / name / probe).is_file():
        why = f"real {name} not available: set MLPLAB_DATA_DIR to a folder holding {name}/{probe}"
        pytest.skip(reason=why)
    return Path(REAL_DATA_DIR)


@pytest.fixture
def mnist_dir() -> Path:
    """The folder holding mnist/ (real files), or skip."""
    return real_data("mnist")


@pytest.fixture
def fashion_dir() -> Path:
    """The folder holding fashion-mnist/ (real files), or skip."""
    return real_data("fashion-mnist")


def make_dataset(
    n_train: int = 512, n_test: int = 128, classes: int = 4, size: int = 8, seed: int = 0
) -> Dataset:
    """Learnable synthetic images: each class lights up its own block of pixels, plus noise."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        labels = torch.randint(0, classes, (n,), generator=g)
        images = torch.randint(0, 60, (n, 1, size, size), generator=g)
        rows = size // classes
        for c in range(classes):
            images[labels == c, :, c * rows : (c + 1) * rows, :] += 150
        return Split(images.clamp(0, 255).to(torch.uint8), labels)

    return Dataset(
        "synthetic",
        split(n_train),
        split(n_test),
        tuple(f"c{i}" for i in range(classes)),
        "generated",
    )


@pytest.fixture
def tiny() -> Dataset:
    return make_dataset()


@pytest.fixture
def quick_config(tmp_path: Path) -> Config:
    """A seconds-long config: small MLP, 3 epochs, runs under tmp_path."""
    return Config().override(
        {
            "model.hidden": [16],
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.eval_batch_size": 100,
            "run.dir": str(tmp_path / "runs"),
            "run.name": "test",
        }
    )
