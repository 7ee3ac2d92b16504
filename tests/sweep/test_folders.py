"""A sweep's folder and study: created with every trial queued, opened again from the folder
or the storage, resumed with more trials; each call refuses the options that do not go with
it (the rules `mlplab sweep` relies on), with the message the command line prints."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from mlplab import Config, ConfigError, RunError
from mlplab.sweep import add_trials, create_sweep, open_sweep, resume_sweep, run_sweep, sweep

SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]},
}


def finished_states(s) -> list[str]:
    return [t.state.name for t in s.trials()]


def test_a_study_not_made_by_mlplab_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    optuna.create_study(storage=url, study_name="theirs")
    with pytest.raises(
        ConfigError,
        match=r"^study 'theirs' in sqlite:///.*other.db was not made by `mlplab sweep`$",
    ):
        open_sweep(storage=url)


def test_resume_adds_trials_to_a_search(base: Config, digits, tmp_path: Path) -> None:
    s = sweep(base, space=SPACE, trials=2, sweeps_dir=tmp_path, dataset=digits, pruner="none")
    again = open_sweep(s.path)
    add_trials(again, 1)
    assert again.spec["trials"] == 3
    assert len(run_sweep(again, dataset=digits)) == 1
    assert finished_states(again) == ["COMPLETE"] * 3


def test_sweep_errors(base: Config, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^a sweep takes either a search space \(--space FILE\) or --grid"
    ):
        create_sweep(base, sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"^a sweep selects on the validation split, and data.val_size=0 holds none out",
    ):
        create_sweep(base.override({"data.val_size": 0}), space=SPACE, sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"^--sampler must be one of tpe, random; got 'tps' \(did you mean 'tpe'\?\)$",
    ):
        create_sweep(base, space=SPACE, sampler="tps", sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"^--storage 'foo' is not a database URL; use e.g. postgresql://"
    ):
        create_sweep(base, space=SPACE, storage="foo", sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"^--grid train.seed=... and --seeds both set the seeds; use one$"
    ):
        create_sweep(base, grid=["train.seed=1,2"], seeds=2, sweeps_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing was left behind
    with pytest.raises(
        RunError,
        match=r"is not a sweep folder \(no sweep.json\); pass a folder made by `mlplab sweep`$",
    ):
        open_sweep(tmp_path)
    s = create_sweep(base, space=SPACE, trials=1, sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"^no study 'nope' in sqlite:///.*study.db; studies there: " + s.name
    ):
        open_sweep(storage=s.storage_url, study="nope")
    with pytest.raises(ConfigError, match=r"^--trials adds trials to a search"):
        add_trials(create_sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path), 2)


# ----- which options go together: the rules `mlplab sweep` relies on ---------------------------
GRID = ["model.head=logits"]


def test_a_new_sweep_refuses_report_and_run_folder_options(base: Config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        create_sweep(base, grid=GRID, sweeps_dir=tmp_path, flags=["--grid", "--out"])
    assert str(info.value) == (
        "--out goes with `mlplab sweep report`; a sweep's runs go into its folder under "
        "--sweeps-dir"
    )
    with pytest.raises(ConfigError) as info:
        create_sweep(base, grid=GRID, sweeps_dir=tmp_path, flags=["--lr", "--runs-dir"])
    assert str(info.value) == (
        "--runs-dir: a sweep keeps its trials' runs in its own folder (SWEEP/runs); choose "
        "where sweep folders go with --sweeps-dir"
    )
    assert not list(tmp_path.iterdir())  # refused before anything was made
    made = create_sweep(base, grid=GRID, sweeps_dir=tmp_path, flags=["--lr", "--grid", "--seeds"])
    assert made.counts() == {"waiting": 1}


def test_none_means_the_default(base: Config, tmp_path: Path) -> None:
    """What the command line passes for an option not given."""
    s = create_sweep(
        base,
        space=SPACE,
        trials=1,
        seeds=None,
        sampler=None,
        pruner=None,
        seed=None,
        sweeps_dir=tmp_path,
    )
    assert (s.spec["sampler"], s.spec["pruner"], s.sampler_seed) == ("tpe", "median", 0)
    grid = create_sweep(base, grid=GRID, seeds=None, sweeps_dir=tmp_path)
    assert grid.spec["seeds"] == [base.train.seed]


def test_resume_takes_only_more_trials(base: Config, tmp_path: Path) -> None:
    folder = create_sweep(base, space=SPACE, trials=1, sweeps_dir=tmp_path).path
    with pytest.raises(ConfigError) as info:
        resume_sweep(folder, flags=["--lr", "--preset", "--space", "--resume", "--trials"])
    assert str(info.value) == (
        "--resume works on the sweep's own recipe (kept in its study); --lr, --preset, --space "
        "would change it (only --trials N, to queue N more trials of a search, goes with "
        "--resume)"
    )
    with pytest.raises(ConfigError, match=r"^--out goes with `mlplab sweep report`"):
        resume_sweep(folder, flags=["--resume", "--out"])
    resumed = resume_sweep(folder, trials=2, flags=["--resume", "--trials"])
    assert resumed.spec["trials"] == 3 and resumed.counts() == {"waiting": 3}
    assert resume_sweep(folder).counts() == {"waiting": 3}  # no --trials: nothing queued
    with pytest.raises(ConfigError, match=r"^--trials must be a whole number >= 1; got 0$"):
        resume_sweep(folder, trials=0)
