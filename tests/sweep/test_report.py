"""A sweep's report: the trials table, importance (or why not), best.yaml, the ablation
table (mean and spread per setting, checked by hand) and its plot."""

from __future__ import annotations

import csv
import dataclasses
import re
import statistics
from pathlib import Path

import pytest

from mlplab import Config, ConfigError, load_dataset
from mlplab.cli import main
from mlplab.sweep import create_sweep, sweep
from mlplab.sweep.report import ablation_figure, summarize, sweep_report

TINY = {
    "data.dataset": "digits",
    "model.hidden": [16],
    "train.epochs": 2,
    "train.lr": 0.01,
    "train.threads": 1,
    "run.name": "r",
}
SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]},
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def search(digits, tmp_path_factory):
    base = Config().override(TINY)
    return sweep(
        base,
        space=SPACE,
        trials=5,
        pruner="none",
        sweeps_dir=tmp_path_factory.mktemp("search"),
        dataset=digits,
    )


@pytest.fixture(scope="module")
def ablation(digits, tmp_path_factory):
    base = Config().override(TINY)
    return sweep(
        base,
        grid=["train.weight_decay=0,1e-4,1e-2"],
        seeds=2,
        sweeps_dir=tmp_path_factory.mktemp("grid"),
        dataset=digits,
    )


def test_search_report_files(search, tmp_path: Path) -> None:
    report = sweep_report(search)
    assert [f.name for f in report.files] == ["report.md", "trials.csv", "best.yaml"]
    trials = search.trials()
    best = max(trials, key=lambda t: t.value)
    assert report.best["number"] == best.number and report.best["value"] == best.value
    loaded = Config.load(search.path / "best.yaml")  # what `mlplab train --config` reads
    assert loaded == Config().override(TINY).override(best.params)
    rows = list(csv.DictReader((search.path / "trials.csv").open()))
    assert [int(r["trial"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [float(r["val acc"]) for r in rows] == [t.value for t in trials]
    assert rows[0]["run"] == trials[0].user_attrs["run_dir"] and rows[0]["host"]
    assert set(report.importance) == {"train.lr", "model.hidden"}
    assert sum(report.importance.values()) == pytest.approx(1.0)
    text = report.text()
    assert "trials   5 of 5 finished (5 complete)" in text
    assert "importance (optuna.importance, PED-ANOVA, 5 complete trials)" in text
    assert f"best     trial {best.number}: val acc {best.value:.2%}" in text
    md = (search.path / "report.md").read_text()
    assert md.startswith(f"# Sweep {search.name}\n") and "| trial | state | val acc |" in md


def test_report_md_shows_names_as_written(search) -> None:
    """A study's name is the user's (any text in a shared storage); report.md shows it as
    written, not as Markdown."""
    report = summarize(search)
    best = report.best | {"params": {"run.name": "**r**"}}
    md = dataclasses.replace(report, name="**x** & [y](z)", best=best).markdown()
    assert md.startswith(r"# Sweep \*\*x\*\* \& \[y\](z)" + "\n")
    assert r"run.name=\*\*r\*\*" in md.split("## Best\n\n")[1].splitlines()[0]


def test_trials_are_shown_at_their_real_paths(search, tmp_path: Path, monkeypatch) -> None:
    """A trial lives in SWEEP/runs/: the best line and the trials table give a path that
    exists from where the command runs (relative when below it, absolute otherwise), never
    the bare runs/<stamp>-trial-N that reads as a folder of the project's runs/."""
    for cwd in (search.path.parent, tmp_path):
        monkeypatch.chdir(cwd)
        report = summarize(search)
        where = re.search(r"; (\S+)\)$", report.best_line())
        assert where and Path(where.group(1)).is_dir(), report.best_line()
        assert Path(where.group(1)).resolve() == Path(report.best["run_dir"])
        if cwd == tmp_path:
            assert Path(where.group(1)).is_absolute()
        else:
            assert where.group(1).startswith(f"{search.path.name}/runs/")
        rows = report.trials_table().splitlines()[1:]
        assert rows and all(Path(row.split()[-1]).is_dir() for row in rows)


def test_report_into_another_folder(search, tmp_path: Path) -> None:
    report = sweep_report(search.path, tmp_path / "elsewhere")
    assert {f.parent for f in report.files} == {tmp_path / "elsewhere"}


def test_a_report_takes_only_out(search, tmp_path: Path) -> None:
    """A report reads an existing sweep: the options that would make a new one are refused,
    naming them, before anything is opened (the rule `mlplab sweep report` relies on)."""
    with pytest.raises(ConfigError) as info:
        sweep_report(search.path, flags=["--lr", "--grid", "--trials", "--resume", "--out"])
    assert str(info.value) == (
        "sweep report reads an existing sweep; --lr, --grid, --trials, --resume would make a "
        "new one (report takes SWEEP_DIR or --storage URL --study NAME, and --out DIR)"
    )
    with pytest.raises(ConfigError) as info:
        sweep_report(None, tmp_path / "out")
    assert str(info.value) == "sweep report needs SWEEP_DIR, or --storage URL (and --study NAME)"
    assert not (tmp_path / "out").exists()
    report = sweep_report(search.path, tmp_path / "out", flags=["--out"])
    assert report.files[0] == tmp_path / "out" / "report.md"


def test_too_few_trials_for_importance_and_none_finished(tmp_path: Path) -> None:
    s = create_sweep(Config().override(TINY), space=SPACE, trials=3, sweeps_dir=tmp_path)
    report = sweep_report(s)
    assert report.importance is None and report.best is None
    assert report.importance_note == "needs at least 4 complete trials; this sweep has 0"
    assert "trials   0 of 3 finished (3 waiting)" in report.text()
    assert "best     none yet: no trial has finished" in report.text()
    assert [f.name for f in report.files] == ["report.md", "trials.csv"]  # no best.yaml yet


def test_ablation_table_by_hand(ablation) -> None:
    report = summarize(ablation)
    assert [r.setting for r in report.ablation] == [
        {"train.weight_decay": v} for v in (0.0, 1e-4, 1e-2)
    ]
    trials = ablation.trials()
    for row in report.ablation:
        mine = [
            t for t in trials if t.params["train.weight_decay"] == row.setting["train.weight_decay"]
        ]
        vals, tests = [t.value for t in mine], [t.user_attrs["test"] for t in mine]
        assert row.runs == row.planned == 2
        assert row.val == (statistics.mean(vals), statistics.stdev(vals), min(vals), max(vals))
        assert row.test[0] == pytest.approx(statistics.mean(tests))
    best = max(report.ablation, key=lambda r: r.val[0])
    assert report.best["setting"] == best.setting
    assert report.best_config.train.weight_decay == best.setting["train.weight_decay"]
    assert report.best_config.train.seed == 0
    table = report.ablation_table()
    header = table.splitlines()[0]
    assert header.split() == [
        "train.weight_decay",
        "runs",
        "val",
        "acc",
        "mean",
        "±",
        "std",
        "val",
        "min-max",
        "test",
        "acc",
        "mean",
        "±",
        "std",
        "test",
        "min-max",
    ]
    first = report.ablation[0]
    assert f"{first.val[0]:.2%} ± {first.val[1] * 100:.2f}" in table


def test_ablation_plot_uses_a_log_axis_for_strengths(ablation) -> None:
    report = sweep_report(ablation)
    assert [f.name for f in report.files] == [
        "report.md",
        "trials.csv",
        "best.yaml",
        "ablation.csv",
        "ablation.png",
    ]
    assert (ablation.path / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    figure = ablation_figure(report)
    assert [ax.get_xscale() for ax in figure.axes] == ["symlog", "symlog"]  # 0 among 1e-4..1e-2
    assert [ax.get_title() for ax in figure.axes] == ["validation", "test"]
    rows = list(csv.DictReader((ablation.path / "ablation.csv").open()))
    assert [r["train.weight_decay"] for r in rows] == ["0.0", "0.0001", "0.01"] and rows[0][
        "runs"
    ] == "2"


def test_categorical_ablation_plot(digits, tmp_path: Path) -> None:
    s = sweep(
        Config().override(TINY),
        grid=["model.head=logits,softmax", "train.lr=0.01,0.1"],
        sweeps_dir=tmp_path,
        dataset=digits,
    )
    figure = ablation_figure(summarize(s))
    ax = figure.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["logits", "softmax"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train.lr=0.01", "train.lr=0.1"]


def test_cli_report(ablation, capsys) -> None:
    assert main(["sweep", "report", str(ablation.path)]) == 0
    out = capsys.readouterr().out
    assert "trials   6 of 6 finished (6 complete)" in out
    assert "best     train.weight_decay=" in out and "over 2 runs" in out
    assert out.strip().splitlines()[-1].startswith(f"wrote    {ablation.path}/report.md, ")
