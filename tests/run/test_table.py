"""The runs table: one row per run directory, whatever state it was left in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab import Config, ConfigError, RunError, load_dataset, train
from mlplab.cli import main
from mlplab.run.directory import Run
from mlplab.run.table import filter_runs, list_runs, runs_table, sort_runs

TINY = {
    "data.dataset": "digits",
    "model.hidden": [16],
    "train.epochs": 2,
    "train.lr": 0.01,
    "train.threads": 1,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A folder with a finished, an interrupted, a killed, an empty, a damaged and a
    regression run, and a sweep-like nested one."""
    root = tmp_path_factory.mktemp("runs")
    digits = load_dataset("digits")
    config = Config().override({**TINY, "run.dir": str(root)})
    train(
        config.override({"run.name": "done", "model.hidden": [32], "model.crop": 1,
                         "model.deskew": True, "model.tta": ["shift", "rotate"]}),
        dataset=digits,
    )  # fmt: skip

    def stop(epoch):
        raise KeyboardInterrupt

    train(config.override({"run.name": "ctrl-c"}), dataset=digits, on_epoch=stop)
    killed = train(
        config.override({"run.name": "killed", "model.center": True, "model.tta": ["flip"]}),
        dataset=digits,
    ).run_dir
    for name in ("summary.json", "model.json", "model.safetensors"):
        (killed / name).unlink()  # as if killed between its last epoch and the end
    empty = Run.create(root, "empty")
    empty.save_config(config)
    damaged = train(config.override({"run.name": "damaged"}), dataset=digits).run_dir
    (damaged / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n{"epo')
    linreg = Config.preset("linreg").override({"train.epochs": 2, "data.val_size": 0.2, "run.dir": str(root),
                                               "train.threads": 1})  # fmt: skip
    train(linreg)
    nested = root / "sweeps" / "s1" / "runs"
    train(config.override({"run.name": "trial-0000", "run.dir": str(nested)}), dataset=digits)
    return root


def by_name(rows):
    return {r.name: r for r in rows}


def test_statuses_and_columns(runs: Path) -> None:
    rows = by_name(list_runs(runs))
    assert set(rows) == {"done", "ctrl-c", "killed", "empty", "damaged", "linreg", "trial-0000"}
    done = rows["done"]
    summary = json.loads((Path(done.path) / "summary.json").read_text())
    assert (done.status, done.dataset, done.architecture, done.epochs) == (
        "finished",
        "digits",
        "36-32-10 relu deskew tta shift+rotate",  # 6x6 of the 8x8 digits: the first layer's width
        "2/2",
    )
    assert done.val == summary["best_val_accuracy"] and done.test == summary["test_accuracy"]
    assert done.seconds == summary["train_seconds"] and done.parameters == summary["parameters"]
    assert (rows["ctrl-c"].status, rows["ctrl-c"].epochs) == ("interrupted", "1/2")
    killed = rows["killed"]
    assert (killed.status, killed.epochs, killed.test) == ("interrupted", "2/2", None)
    assert killed.val is not None and killed.architecture == "?-16-? relu center tta flip"
    assert (rows["empty"].status, rows["empty"].epochs, rows["empty"].val) == ("empty", "0/2", None)
    assert rows["damaged"].status == "unreadable"
    assert rows["damaged"].problem.startswith("metrics.jsonl: unreadable metrics")
    linreg = rows["linreg"]
    assert linreg.task == "regression" and linreg.architecture == "1-1 relu"
    assert linreg.cells()["test"].startswith("R² ") and linreg.cells()["val"].startswith("R² ")


def test_text_table_and_nested_runs(runs: Path) -> None:
    text = runs_table(list_runs(runs), root=runs)
    header, *lines = text.splitlines()
    assert header.split() == [
        "date",
        "run",
        "dataset",
        "architecture",
        "epochs",
        "val",
        "test",
        "time",
        "status",
    ]
    assert (
        len(lines) == 7
        and len({len(line) for line in [header, *lines] if "unreadable" not in line}) > 0
    )
    assert any(" sweeps/s1/runs/" in line and line.rstrip().endswith("finished") for line in lines)
    assert any("unreadable (metrics.jsonl: unreadable metrics" in line for line in lines)
    # columns line up: every row's status column starts where the header's does
    start = header.index("status")
    assert all(line[start - 2 : start] == "  " for line in lines)


def test_sort_and_filter(runs: Path) -> None:
    rows = list_runs(runs)
    best_first = sort_runs([r for r in rows if r.task == "classification"], "test", reverse=True)
    tests = [r.test for r in best_first if r.test is not None]
    assert tests == sorted(tests, reverse=True) and best_first[-1].test is None  # missing last
    assert [r.name for r in filter_runs(rows, ["status=interrupted"])] == ["ctrl-c", "killed"]
    assert [r.name for r in filter_runs(rows, ["dataset=make-*", "status=finished"])] == ["linreg"]
    assert [r.name for r in filter_runs(rows, ["architecture=36-32-10*"])] == ["done"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda rows: filter_runs(rows, ["datset=mnist"]),
         "--filter key 'datset' is not a column (did you mean 'dataset'?); filter on one of: path, date, name, dataset, architecture, epochs, val, test, time, status, task, parameters, sweep"),
        (lambda rows: filter_runs(rows, ["mnist"]), "--filter expects KEY=VALUE (e.g. dataset=mnist); got 'mnist'"),
        (lambda rows: sort_runs(rows, "tset"),
         "--sort must be one of date, name, dataset, architecture, epochs, val, test, time, status; got 'tset' (did you mean 'test'?)"),
    ],
)  # fmt: skip
def test_errors(runs: Path, call, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call(list_runs(runs))
    assert str(info.value) == message


def test_cli(runs: Path, capsys, tmp_path: Path) -> None:
    assert (
        main(["runs", str(runs), "--filter", "status=finished", "--sort", "val", "--reverse"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("date ") and len(out) == 4
    assert main(["runs", str(runs), "--json", "--filter", "name=done"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "done" and row["status"] == "finished" and 0 < row["test"] <= 1
    assert main(["runs", str(runs), "--markdown", "--filter", "name=done"]) == 0
    assert capsys.readouterr().out.startswith("| date | run | dataset |")
    assert main(["runs", str(runs), "--filter", "name=nothing"]) == 0
    assert capsys.readouterr().out == f"no runs under {runs} match name=nothing\n"
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == (
        f"mlplab: error: runs folder {tmp_path / 'nope'} does not exist; pass a folder holding run directories\n"
    )


def test_one_run_directory_is_a_table_of_one(runs: Path) -> None:
    done = next(r for r in list_runs(runs) if r.name == "done")
    assert [r.name for r in list_runs(done.path)] == ["done"]
    with pytest.raises(RunError):
        list_runs(runs / "missing")


def test_a_runs_folder_that_is_a_file_or_fifo_says_what_it_is(tmp_path: Path, capsys) -> None:
    """It said 'does not exist' of /etc/passwd and of a FIFO."""
    import os

    from mlplab.cli import main

    (tmp_path / "notes.txt").write_text("hello")
    os.mkfifo(tmp_path / "pipe")
    for name, what in (("notes.txt", "is a file of 5 bytes, not a folder"),
                       ("pipe", "is a FIFO (named pipe), not a folder"),
                       ("missing", "does not exist")):  # fmt: skip
        assert main(["runs", str(tmp_path / name)]) == 2
        assert f"runs folder {tmp_path / name} {what}; pass a folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder as a user has it: runs/ with a run, a --dry-run run and a sweep
    (runs/sweeps/SWEEP/sweep.json) with one trial in its runs/, and a sweep of an earlier
    mlplab in ./sweeps/ with one trial."""
    root = tmp_path_factory.mktemp("project")
    digits = load_dataset("digits")
    config = Config().override({**TINY, "run.dir": str(root / "runs")})
    train(config.override({"run.name": "real"}), dataset=digits)
    train(config.override({"run.name": "smoke", "train.dry_run": True}), dataset=digits)
    for sweep, trial in (("runs/sweeps/20261202-000000-s", "trial-0000"),
                         ("sweeps/20261201-000000-old", "trial-0009")):  # fmt: skip
        run_dir = str(root / sweep / "runs")
        train(config.override({"run.name": trial, "run.dir": run_dir}), dataset=digits)
        (root / sweep / "sweep.json").write_text("{}")
    return root


def test_plain_runs_lists_the_trials_of_sweeps_too(project: Path, monkeypatch, capsys) -> None:
    """`mlplab runs` with no folder lists runs/ (its sweeps' trials too) and an earlier
    version's sweeps/, each trial at its real path (.../SWEEP/runs/...), which names its
    sweep; --filter sweep= leaves them out."""
    monkeypatch.chdir(project)
    rows = by_name(list_runs())
    assert set(rows) == {"real", "smoke", "trial-0000", "trial-0009"}
    assert rows["trial-0000"].sweep == str(Path("runs/sweeps/20261202-000000-s"))
    assert rows["trial-0009"].sweep == str(Path("sweeps/20261201-000000-old"))
    assert rows["real"].sweep == ""
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (trial,) = [line.split()[2] for line in lines if "trial-0000" in line]
    assert trial.startswith("runs/sweeps/20261202-000000-s/runs/") and Path(trial).is_dir()
    (old,) = [line.split()[2] for line in lines if "trial-0009" in line]
    assert old.startswith("sweeps/20261201-000000-old/runs/") and Path(old).is_dir()
    (real,) = [line.split()[2] for line in lines if "real" in line]
    assert real.endswith("-real") and "/" not in real  # a plain run: its name, as before
    assert main(["runs", "--json", "--filter", "sweep="]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"real", "smoke"}
    assert main(["runs", "sweeps"]) == 0  # a folder given: that folder only, as before
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_plain_runs_with_neither_folder_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 2
    assert "runs folder runs does not exist" in capsys.readouterr().err
    (tmp_path / "runs").mkdir()
    assert main(["runs"]) == 0
    assert capsys.readouterr().out == "no runs under runs\n"


def test_a_sweep_is_known_by_the_file_the_sweep_package_writes() -> None:
    from mlplab.run import table
    from mlplab.sweep.folders import RUNS, SWEEP_JSON

    assert (table.SWEEP_JSON, table.TRIALS) == (SWEEP_JSON, RUNS)


def test_a_dry_run_is_marked(project: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(project)
    rows = by_name(list_runs("runs"))
    smoke = rows["smoke"]
    assert smoke.dry_run and not rows["real"].dry_run
    assert json.loads((Path(smoke.path) / "summary.json").read_text())["dry_run"] is True
    assert smoke.cells()["status"] == "finished (dry run)"
    assert rows["real"].cells()["status"] == "finished"
    assert main(["runs", "--json"]) == 0
    assert {r["name"]: r["dry_run"] for r in json.loads(capsys.readouterr().out)} == {
        "real": False,
        "smoke": True,
        "trial-0000": False,
        "trial-0009": False,
    }
    assert main(["runs", "--filter", "status=finished"]) == 0  # a dry run finished, marked
    assert sum("(dry run)" in line for line in capsys.readouterr().out.splitlines()) == 1
