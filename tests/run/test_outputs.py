"""One output root: every command's default output goes under runs/, and what earlier
versions wrote elsewhere (sweeps/) is still found."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

from mlplab import Config, train
from mlplab.cli import main
from mlplab.run.outputs import COMPARE, LR_FIND, OLD_SWEEPS, ROOT, SWEEPS, sweep_folder
from mlplab.sweep import create_sweep, open_sweep

TINY = {"data.dataset": "digits", "model.hidden": [16], "train.epochs": 1, "train.threads": 1}


def test_the_layout_is_under_the_runs_folder() -> None:
    assert ROOT == Path("runs") == Path(Config().run.dir)
    assert Path("runs/compare") == COMPARE
    assert Path("runs/lr_find.png") == LR_FIND
    assert Path("runs/sweeps") == SWEEPS


def test_every_command_writes_under_runs_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """In a fresh folder (conftest: the test's own), compare, explore, lr-find and a sweep
    leave nothing but runs/ in the working directory, the one folder to git-ignore."""
    run = train(Config().override(TINY)).run_dir
    assert main(["compare", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(Path("runs/compare/compare.html"))
    assert main(["explore", "digits", "--per-class", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(Path("runs/explore-digits/explore.html"))
    assert main(["lr-find", "--dataset", "digits", "--hidden", "16", "--steps", "20"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "wrote    runs/lr_find.png, runs/lr_find.json"
    )
    made = create_sweep(Config().override(TINY), grid=["train.lr=0.1,0.01"])
    assert made.path.parent == Path("runs/sweeps")
    assert sorted(os.listdir(".")) == ["runs"]
    assert main(["runs"]) == 0  # the other outputs in runs/ are not rows
    assert capsys.readouterr().out.count("\n") == 2  # the header and the one run


def test_a_sweep_folder_of_an_earlier_version_is_still_found(tmp_path: Path) -> None:
    assert sweep_folder(SWEEPS, "s") == Path("runs/sweeps/s")
    (OLD_SWEEPS / "s").mkdir(parents=True)
    assert sweep_folder(SWEEPS, "s") == Path("sweeps/s")  # an existing study goes on there
    assert sweep_folder(tmp_path, "s") == tmp_path / "s"  # a folder asked for is that folder
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    old = create_sweep(
        Config().override(TINY), grid=["train.lr=0.1"], storage=url, sweeps_dir=OLD_SWEEPS
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    joined = open_sweep(storage=url, study=old.study.study_name)
    assert joined.path == old.path and joined.path.parent == OLD_SWEEPS
