"""Sweeps: search spaces and grids validated per key, trials queued and claimed by workers
(SQLite here, PostgreSQL shared by two processes), pruning, failures, Ctrl-C, the CLI."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import optuna
import pytest
from postgres import NoPostgres, throwaway_cluster

import mlplab
from mlplab import Config, ConfigError, RunError, load_dataset
from mlplab.cli import main
from mlplab.sweep import worker as worker_module
from mlplab.sweep import (
    Param,
    add_trials,
    create_sweep,
    open_sweep,
    parse_grid,
    parse_space,
    run_sweep,
    sweep,
)

TINY = {"data.dataset": "digits", "model.hidden": [16], "train.epochs": 2, "train.lr": 0.01,
        "train.threads": 1, "run.name": "t"}  # fmt: skip
FLAGS = ["--dataset", "digits", "--hidden", "16", "--epochs", "2", "--lr", "0.01", "--threads", "1"]
SPACE = {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
         "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]}}  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def base() -> Config:
    return Config().override(TINY)


def finished_states(s) -> list[str]:
    return [t.state.name for t in s.trials()]


# ----- search spaces -------------------------------------------------------------------------
def test_space_parses_every_kind(base: Config) -> None:
    space = parse_space({**SPACE, "train.epochs": {"type": "int", "low": 1, "high": 3, "step": 1},
                         "model.dropout": {"type": "float", "low": 0, "high": 0.5, "step": 0.1},
                         "model.head": {"type": "categorical", "choices": ["logits", "softmax"]},
                         "data.limit": {"type": "categorical", "choices": [None, 100]},
                         "model.init": {"type": "categorical", "choices": ["default", "kaiming"]}}, base)  # fmt: skip
    assert space["train.lr"] == Param("train.lr", "float", 1e-3, 1e-1, log=True)
    assert space["train.epochs"] == Param("train.epochs", "int", 1, 3, step=1)
    assert space["model.hidden"].choices == ("16", "32,16")
    assert space["data.limit"].choices == (None, 100)
    assert str(space["train.lr"]) == "train.lr float 0.001..0.1, log"
    # lists are accepted as choices of list-valued keys and stored as strings
    assert parse_space({"model.hidden": {"type": "categorical", "choices": [[16], [32, 16]]}},
                       base)["model.hidden"].choices == ("16", "32,16")  # fmt: skip


def test_space_from_yaml_file(base: Config, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
    )
    assert parse_space(tmp_path / "s.yaml", base)["train.lr"].high == 1e-2


@pytest.mark.parametrize(
    "space, message",
    [
        ({"train.lrr": {"type": "float", "low": 0.1, "high": 1}},
         "search space: unknown config key 'train.lrr' (did you mean 'train.lr'?); `mlplab config --list` shows every key"),
        ({"train.lr": {"type": "flaot", "low": 0.1, "high": 1}},
         "search space: 'train.lr' type must be one of float, int, categorical; got 'flaot' (did you mean 'float'?)"),
        ({"train.lr": {"type": "float", "low": 0.1, "high": 1, "logg": True}},
         "search space: 'train.lr' has an unknown field 'logg' (did you mean 'log'?); a float range takes low, high, log, step"),
        ({"train.lr": 0.1},
         "search space: 'train.lr' must be a mapping such as {type: float, low: 1e-4, high: 1e-2} or {type: categorical, choices: [a, b]}; got 0.1"),
        ({"train.lr": {"type": "float", "low": 0.1}}, "search space: 'train.lr' (float) needs low and high; high missing"),
        ({"train.lr": {"type": "float", "low": "a", "high": 1}}, "search space: 'train.lr' low must be a finite number; got 'a'"),
        ({"train.lr": {"type": "float", "low": 1, "high": 0.1}}, "search space: 'train.lr' needs low < high; got low=1, high=0.1"),
        ({"train.weight_decay": {"type": "float", "low": 0, "high": 0.1, "log": True}},
         "search space: 'train.weight_decay' log: true needs low > 0; got low=0"),
        ({"train.lr": {"type": "float", "low": -1, "high": 0.1}},
         "search space: 'train.lr' low=-1: config key 'train.lr' must be in (0, inf); got -1.0"),
        ({"train.epochs": {"type": "float", "low": 1, "high": 3}},
         "search space: 'train.epochs' is a whole number: use type int or categorical; got type float"),
        ({"train.optimizer": {"type": "float", "low": 1, "high": 3}},
         "search space: 'train.optimizer' is a string: use type categorical (choices: adam, adamw, sgd, rmsprop); got type float"),
        ({"train.optimizer": {"type": "categorical", "choices": ["adam", "adma"]}},
         "search space: 'train.optimizer' choice 'adma': config key 'train.optimizer' must be one of adam, adamw, sgd, rmsprop; got 'adma' (did you mean 'adam'?)"),
        ({"model.hidden": {"type": "categorical", "choices": []}},
         "search space: 'model.hidden' (categorical) needs choices: a non-empty list; got []"),
        ({"run.dir": {"type": "categorical", "choices": ["a"]}},
         "search space: 'run.dir' is set by the sweep for each trial; it cannot be swept"),
        ({}, "search space must map config keys to ranges, e.g. 'train.lr: {type: float, low: 1e-4, high: 1e-2, log: true}'; got {}"),
    ],
)  # fmt: skip
def test_space_errors_name_the_key(base: Config, space: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(space, base)
    assert str(info.value) == message


def test_space_file_errors(base: Config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read space file: nope.yaml: no such file$"):
        parse_space("nope.yaml", base)
    (tmp_path / "bad.yaml").write_text("train.lr: [\n")
    with pytest.raises(ConfigError, match=r"^space file .*bad.yaml is not valid YAML: "):
        parse_space(tmp_path / "bad.yaml", base)


def test_grid_values_split_outside_brackets(base: Config) -> None:
    grid = parse_grid(
        [
            "model.hidden=[16],[32,16]",
            "train.weight_decay=0,1e-5,1e-3",
            "model.head=logits,softmax",
        ],
        base,
    )
    assert grid == {"model.hidden": ["16", "32,16"], "train.weight_decay": [0.0, 1e-5, 1e-3],
                    "model.head": ["logits", "softmax"]}  # fmt: skip


@pytest.mark.parametrize(
    "items, message",
    [
        (["model.head"], "--grid expects KEY=V1,V2,... (e.g. model.head=logits,log_softmax); got 'model.head'"),
        (["model.heda=logits"], "--grid: unknown config key 'model.heda' (did you mean 'model.head'?); `mlplab config --list` shows every key"),
        (["model.head=logit"], "--grid model.head=logit: config key 'model.head' must be one of logits, log_softmax, softmax; got 'logit' (did you mean 'logits'?)"),
        (["model.head=logits", "model.head=softmax"], "--grid names 'model.head' twice; give all its values in one --grid"),
        (["train.lr=0.1,0.1"], "--grid train.lr lists a value twice: 0.1,0.1"),
    ],
)  # fmt: skip
def test_grid_errors(base: Config, items: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_grid(items, base)
    assert str(info.value) == message


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


def test_pruned_trials_stop_early(base: Config, digits, tmp_path: Path, monkeypatch) -> None:
    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    monkeypatch.setattr(worker_module, "make_pruner", lambda name, warmup: Always())
    s = sweep(
        base.override({"train.epochs": 3}),
        space=SPACE,
        trials=2,
        sweeps_dir=tmp_path,
        dataset=digits,
    )
    for t in s.trials():
        assert t.state.name == "PRUNED" and t.user_attrs["epochs_run"] == 1
        assert list(t.intermediate_values) == [1]
        assert len(mlplab.Run(Path(t.user_attrs["run_dir"])).metrics()) == 1


def test_grid_with_seeds_and_a_diverging_setting(base: Config, digits, tmp_path: Path) -> None:
    """Every setting × seed runs once; a diverged trial is marked failed and the rest go on."""
    base = base.override({"train.optimizer": "sgd"})
    s = sweep(base, grid=["train.lr=0.01,1e12"], seeds=2, sweeps_dir=tmp_path, dataset=digits)
    trials = s.trials()
    assert [t.params for t in trials] == [{"train.lr": lr, "train.seed": seed}
                                          for lr in (0.01, 1e12) for seed in (0, 1)]  # fmt: skip
    assert finished_states(s) == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    assert trials[2].user_attrs["error"].startswith("training diverged: the train loss became")
    assert [mlplab.Run(Path(t.user_attrs["run_dir"])).config().train.seed for t in trials[:2]] == [
        0,
        1,
    ]


def test_ctrl_c_queues_the_trial_again(base: Config, digits, tmp_path: Path, monkeypatch) -> None:
    s = create_sweep(base, grid=["model.head=logits,softmax"], sweeps_dir=tmp_path)
    calls = []
    real_train = worker_module.train

    def interrupted_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(worker_module, "train", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, dataset=digits)
    assert finished_states(s) == ["COMPLETE", "FAIL", "WAITING"]
    assert s.trials()[1].user_attrs["error"] == "stopped: KeyboardInterrupt; queued again"
    assert s.trials()[2].params == {} and s.trials()[2].user_attrs == {"retry_of": 1}
    run_sweep(open_sweep(s.path), dataset=digits)  # another worker (or this one) finishes it
    heads = [t.params["model.head"] for t in s.trials() if t.state.name == "COMPLETE"]
    assert heads == ["logits", "softmax"]


def test_ctrl_c_after_an_epoch_keeps_the_run_and_requeues(
    base: Config, digits, tmp_path: Path, monkeypatch
) -> None:
    real_train = worker_module.train

    def stopped_after_one_epoch(config, dataset=None, on_epoch=None):
        def hook(epoch):
            raise KeyboardInterrupt  # what Ctrl-C during the next epoch amounts to

        return real_train(config, dataset=dataset, on_epoch=hook)

    s = create_sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path)
    monkeypatch.setattr(worker_module, "train", stopped_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, dataset=digits)
    first, retry = s.trials()
    assert (first.state.name, retry.state.name) == ("FAIL", "WAITING")
    assert first.user_attrs["error"] == "stopped: interrupted; queued again"
    assert mlplab.Run(Path(first.user_attrs["run_dir"])).summary()["interrupted"] is True


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


# ----- the command line ------------------------------------------------------------------------
def test_cli_search_report_and_best_config(tmp_path: Path, capsys) -> None:
    (tmp_path / "space.yaml").write_text(
        "train.lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}\n"
    )
    assert main(["sweep", "--space", "space.yaml", "--trials", "2", *FLAGS, "--name", "cli"]) == 0
    out = capsys.readouterr().out
    folder = next(Path("sweeps").iterdir())
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "report", "--lr", "0.1"], "sweep report reads an existing sweep; --lr would make a new one (report takes SWEEP_DIR or --storage URL --study NAME, and --out DIR)"),
        (["sweep", "report"], "sweep report needs SWEEP_DIR, or --storage URL (and --study NAME)"),
        (["sweep", "--resume", "s", "--lr", "0.1"], "--resume works on the sweep's own recipe (kept in its study); --lr would change it (only --trials N, to queue N more trials of a search, goes with --resume)"),
        (["sweep", "--grid", "train.lr=0.1", "--runs-dir", "r"], "--runs-dir: a sweep keeps its trials' runs in its own folder (SWEEP/runs); choose where sweep folders go with --sweeps-dir"),
        (["sweep", "--grid", "train.lr=0.1", "--trials", "3"], "--trials is for a search; a --grid runs every setting × --seeds"),
        (["sweep", "--resume", "nowhere"], "sweep folder nowhere does not exist"),
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
        s = create_sweep(base, space=SPACE, trials=6, storage=url, study="shared",
                         sweeps_dir=tmp_path / "creator", pruner="none")  # fmt: skip
        s.storage.engine.dispose()  # no connection of ours may cross the fork
        import torch._dynamo  # noqa: F401  (what a first optimizer imports: 1.5 s, once, not per child)

        fork = multiprocessing.get_context("fork")
        logs = [tmp_path / f"w{i}.log" for i in range(2)]
        workers = [fork.Process(target=_worker, args=(url, str(tmp_path / f"w{i}"), str(logs[i])))
                   for i in range(2)]  # fmt: skip
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
    assert not Path("sweeps").exists()


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
