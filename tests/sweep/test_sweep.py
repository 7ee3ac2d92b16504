"""Whole sweeps, end to end: a search on SQLite, the command line (search, report, best.yaml,
grid, its one-line errors), two worker processes sharing a PostgreSQL study, no Optuna, the
docs' Python example. The pieces are tested in test_space, test_study, test_folders and
test_worker."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest
from postgres import NoPostgres, throwaway_cluster

import mlplab
from mlplab import Config
from mlplab.cli import main
from mlplab.sweep import (
    create_sweep,
    open_sweep,
    sweep,
)

FLAGS = ["--dataset", "digits", "--hidden", "16", "--epochs", "2", "--lr", "0.01", "--threads", "1"]
SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]},
}


def finished_states(s) -> list[str]:
    return [t.state.name for t in s.trials()]


# ----- running sweeps on SQLite ----------------------------------------------------------------
def test_search_on_sqlite(base: Config, digits, tmp_path: Path) -> None:
    s = sweep(base, space=SPACE, trials=4, sweeps_dir=tmp_path / "sweeps", dataset=digits)
    assert s.path.parent == tmp_path / "sweeps" and s.path.name.endswith("-t")
    assert (s.path / "study.db").is_file() and (s.path / "base.yaml").is_file()
    assert Config.load(s.path / "base.yaml") == base and (s.path / "space.yaml").is_file()
    trials = s.trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert set(finished_states(s)) <= {"COMPLETE", "PRUNED"}
    runs = [Path(t.user_attrs["run_dir"]) for t in trials]
    assert len(set(runs)) == 4 and all(r.parent == s.path / "runs" for r in runs)
    for t, run in zip(trials, runs, strict=True):
        assert run.name.endswith(f"-trial-{t.number:04d}")
        summary = mlplab.Run(run).summary()
        config = mlplab.Run(run).config()
        assert config.train.lr == t.params["train.lr"] and config.model.hidden == [
            int(w) for w in t.params["model.hidden"].split(",")
        ]
        if t.state.name == "COMPLETE":  # the objective: the kept weights' validation accuracy
            assert (
                t.value == summary["best_val_accuracy"]
                and t.user_attrs["test"] == summary["test_accuracy"]
            )
    # the sweep folder alone opens it again
    assert open_sweep(s.path).name == s.name


# ----- the command line ------------------------------------------------------------------------
def test_cli_search_report_and_best_config(tmp_path: Path, capsys) -> None:
    (tmp_path / "space.yaml").write_text(
        "train.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n"
    )
    assert main(["sweep", "--space", "space.yaml", "--trials", "2", *FLAGS, "--name", "cli"]) == 0
    out = capsys.readouterr().out
    folder = next(Path("runs/sweeps").iterdir())  # the one output root: runs/ (run.outputs)
    assert (
        f"sweep    {folder}: search of 2 trials over train.lr float 0.001..0.1, log (tpe sampler, median pruner)"
        in out
    )
    assert f"join     mlplab sweep --resume {folder}" in out and "trial    1  val acc " in out
    assert "epoch 1/2" not in out  # a trial's training lines go to its train.log only
    assert f"report   mlplab sweep report {folder}" in out
    assert main(["sweep", "report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "trials   2 of 2 finished (2 complete)" in out
    assert "importance needs at least 4 complete trials; this sweep has 2" in out
    for name in ("report.md", "trials.csv", "best.yaml"):
        assert (folder / name).is_file()
    assert main(["train", "--config", str(folder / "best.yaml"), "--runs-dir", "again", "-q"]) == 0
    best = Config.load(folder / "best.yaml")
    assert best.train.lr in {t.params["train.lr"] for t in open_sweep(folder).trials()}


def test_cli_grid(capsys) -> None:
    assert main(["sweep", "--grid", "model.head=logits,softmax", "--seeds", "2", *FLAGS]) == 0
    out = capsys.readouterr().out
    assert "grid of 2 settings × 2 seeds = 4 runs: model.head in {logits, softmax}" in out
    assert "best     model.head=" in out


# a table of cases, one per line, kept from the formatter (which splits each over four lines)
@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "report", "--lr", "0.1"], "sweep report reads an existing sweep; --lr would make a new one (report takes SWEEP_DIR or --storage URL --study NAME, and --out DIR)"),
        (["sweep", "report"], "sweep report needs SWEEP_DIR, or --storage URL (and --study NAME)"),
        (["sweep", "--resume", "s", "--lr", "0.1"], "--resume works on the sweep's own recipe (kept in its study); --lr would change it (only --trials N, to queue N more trials of a search, goes with --resume)"),
        (["sweep", "--grid", "train.lr=0.1", "--runs-dir", "r"], "--runs-dir: a sweep keeps its trials' runs in its own folder (SWEEP/runs); choose where sweep folders go with --sweeps-dir"),
        (["sweep", "--grid", "train.lr=0.1", "--trials", "3"], "--trials is for a search; a --grid runs every setting × --seeds"),
        (["sweep", "--resume", "nowhere"], "sweep folder nowhere does not exist"),
        (["sweep", "--resume", "s", "--out", "o"], "--out goes with `mlplab sweep report`; a sweep's runs go into its folder under --sweeps-dir"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == f"mlplab: error: {message}\n"


# ----- two workers, one PostgreSQL study ----------------------------------------------------------
def _worker(url: str, folder: str, log: str) -> None:
    """A second worker process: `mlplab sweep --resume --storage URL --study NAME`, its
    output in ``log``. Forked from the test process, which has torch and the data imported
    already (a fresh interpreter would spend ~4 s of CPU importing them)."""
    with open(log, "w") as out:
        sys.stdout = sys.stderr = out  # main() logs to whatever sys.stdout is when it starts
        code = main(
            ["sweep", "--resume", "--storage", url, "--study", "shared", "--sweeps-dir", folder]
        )
        out.flush()
    os._exit(code)  # no clean-up of what the parent process owns


def test_two_workers_share_a_postgres_study(base: Config, digits, tmp_path: Path) -> None:
    """Two processes join one study: every queued trial runs exactly once, none is lost."""
    try:
        cluster = throwaway_cluster()
        url = cluster.__enter__()
    except NoPostgres as exc:
        pytest.skip(reason=f"PostgreSQL not available: {exc}")
    try:
        s = create_sweep(
            base,
            space=SPACE,
            trials=6,
            storage=url,
            study="shared",
            sweeps_dir=tmp_path / "creator",
            pruner="none",
        )
        s.storage.engine.dispose()  # no connection of ours may cross the fork
        import torch._dynamo  # noqa: F401  (what a first optimizer imports: 1.5 s, once, not per child)

        fork = multiprocessing.get_context("fork")
        logs = [tmp_path / f"w{i}.log" for i in range(2)]
        workers = [
            fork.Process(target=_worker, args=(url, str(tmp_path / f"w{i}"), str(logs[i])))
            for i in range(2)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        outputs = [log.read_text() for log in logs]
        assert [w.exitcode for w in workers] == [0, 0], outputs
        trials = open_sweep(storage=url, study="shared", join=False).trials()
        assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
        assert all(t.state.name == "COMPLETE" for t in trials)
        runs = [Path(t.user_attrs["run_dir"]) for t in trials]
        assert len(set(runs)) == 6 and all((r / "summary.json").is_file() for r in runs)
        assert {r.parents[2].name for r in runs} <= {"w0", "w1"}
        lines = [line for out in outputs for line in out.splitlines() if line.startswith("trial ")]
        assert sorted(int(line.split()[1]) for line in lines) == list(range(6))  # each ran once
    finally:
        cluster.__exit__(None, None, None)


def test_without_optuna_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["sweep", "--grid", "model.head=logits", *FLAGS]) == 2
    assert capsys.readouterr().err == (
        "mlplab: error: mlplab sweep needs the Python package 'optuna', which is not installed; "
        "install it with: pip install 'mlplab[sweep]'\n"
    )
    assert not Path("sweeps").exists() and not Path("runs").exists()


def test_docs_python_example_runs(tmp_path: Path) -> None:
    """The Python example of docs/scale.md, as written, made smaller (on the bundled digits)."""
    import re

    docs = Path(__file__).parents[2] / "docs" / "scale.md"
    (code,) = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.DOTALL)
    code = code.replace(
        '"model.hidden": [64], "train.epochs": 10',
        '"model.hidden": [16], "train.epochs": 2, "train.threads": 1',
    )
    code = code.replace("trials=8", "trials=3").replace("lr_find(base)", "lr_find(base, steps=30)")
    printed = []
    exec(compile(code, str(docs), "exec"), {"print": lambda *a: printed.append(a)})
    params, value = printed[0]
    assert set(params) == {"train.lr"} and 0 < value <= 1
    assert "model.head  runs  val acc mean ± std" in printed[1][0]
    assert printed[2][0].startswith("date ") and Path(printed[3][0]).name == "tensorboard"
    assert printed[4][1] in ("steepest descent", "minimum/10")
    assert Path("lr_find.json").is_file()
