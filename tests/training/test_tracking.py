"""Experiment tracking (track.to: mlflow): a run logged to a real MLflow store and read back
with MLflow's own client (mlflow.search_runs, MlflowClient), params, per-epoch metrics, the
summary's figures and the run directory's files; the missing extra, a server that is not
there, a failed run; and, when it starts quickly enough here, a real `mlflow server`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import make_dataset

from mlplab import Config, train
from mlplab.cli import main
from mlplab.errors import ConfigError, MissingExtraError

SERVER_WAIT = float(os.environ.get("MLPLAB_MLFLOW_SERVER_WAIT", "30"))  # s before the skip


def quick(root: Path, **keys: object) -> Config:
    return Config().override(
        {"model.hidden": [16], "train.epochs": 2, "train.batch_size": 32, "train.threads": 1,
         "run.dir": str(root / "runs"), "run.name": "tracked", "track.to": "mlflow", **keys}
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run tracked to the default store (sqlite under runs/mlflow), trained once."""
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'mlplab[mlflow]'")
    root = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLPLAB_PROGRESS", "0")
        env.chdir(root)
        result = train(quick(root), dataset=make_dataset(n_train=256, n_test=64))
    uri = f"sqlite:///{root / 'runs' / 'mlflow' / 'mlflow.db'}"
    return {"root": root, "run": result.run_dir, "uri": uri}


@pytest.fixture
def mlflow_at(store: dict, monkeypatch: pytest.MonkeyPatch):
    """mlflow, its fluent API reading ``store``'s database (MLFLOW_TRACKING_URI)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    return mlflow


def test_a_run_reads_back_with_mlflows_own_client(store: dict, mlflow_at) -> None:
    mlflow, run_dir = mlflow_at, store["run"]
    runs = mlflow.search_runs(experiment_names=["mlplab"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["status"] == "FINISHED" and row["tags.mlflow.runName"] == run_dir.name
    assert row["tags.mlplab.run_dir"] == str(run_dir)
    # params: every config key, as config.yaml has it
    config = Config.load(run_dir / "config.yaml")
    assert row["params.train.lr"] == str(config.train.lr)
    assert row["params.model.hidden"] == "[16]" and row["params.track.to"] == "mlflow"
    # the summary's figures, exactly
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("test_accuracy", "test_loss", "test_ece", "best_epoch", "test_rejected_fraction"):
        assert row[f"metrics.{key}"] == pytest.approx(summary[key], rel=1e-12), key
    for name, accuracy in summary["test_per_class_accuracy"].items():
        assert row[f"metrics.test_accuracy.{name}"] == pytest.approx(accuracy, rel=1e-12)
    assert "metrics.seed" not in runs.columns and "metrics.threads" not in runs.columns
    # per-epoch metrics at step = epoch, as metrics.jsonl has them
    client = mlflow.MlflowClient()
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = client.get_metric_history(row["run_id"], "val_loss")
    assert [(m.step, m.value) for m in logged] == [(r["epoch"], r["val_loss"]) for r in history]
    # the run directory's files as artifacts, under run/
    files = sorted(p.name for p in run_dir.iterdir())
    assert sorted(a.path for a in client.list_artifacts(row["run_id"], "run")) == [
        f"run/{name}" for name in files
    ]
    assert "README.md" in files  # the model card went along
    assert Path(store["root"], "runs", "mlflow", "artifacts").is_dir()  # beside the database


def test_the_cli_flags_and_another_experiment(store: dict, mlflow_at, capsys) -> None:
    root = store["root"]
    code = main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1",
                 "--threads", "1", "--runs-dir", str(root / "cli"), "--name", "cli", "-q",
                 "--track", "mlflow", "--tracking-uri", store["uri"], "--experiment", "cli-exp"])  # fmt: skip
    assert code == 0
    run_dir = Path(capsys.readouterr().out.strip())
    runs = mlflow_at.search_runs(experiment_names=["cli-exp"])
    assert list(runs["tags.mlflow.runName"]) == [run_dir.name]
    assert list(runs["params.data.dataset"]) == ["digits"]
    assert not (root / "cli" / "mlflow").exists()  # the store named, not the default one


def test_sweep_trials_are_tracked(store: dict, mlflow_at, capsys) -> None:
    pytest.importorskip("optuna", reason="sweeps need optuna: pip install 'mlplab[sweep]'")
    root = store["root"]
    code = main(["sweep", "--grid", "train.lr=0.01,0.02", "--seeds", "1", "--dataset", "digits",
                 "--hidden", "8", "--epochs", "1", "--threads", "1", "--sweeps-dir",
                 str(root / "sweeps"), "--track", "mlflow", "--tracking-uri", store["uri"],
                 "--experiment", "swept"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    runs = mlflow_at.search_runs(experiment_names=["swept"])
    assert sorted(runs["params.train.lr"]) == ["0.01", "0.02"]
    assert set(runs["status"]) == {"FINISHED"}
    assert all(name.endswith(("trial-0000", "trial-0001")) for name in runs["tags.mlflow.runName"])


def test_a_run_that_fails_is_marked_failed(store: dict, mlflow_at) -> None:
    def stop(epoch: object) -> None:
        raise RuntimeError("the hook broke")

    config = quick(store["root"], **{"track.uri": store["uri"], "track.experiment": "failing"})
    with pytest.raises(RuntimeError, match="the hook broke"):
        train(config, dataset=make_dataset(n_train=256, n_test=64), on_epoch=stop)
    runs = mlflow_at.search_runs(experiment_names=["failing"])
    assert list(runs["status"]) == ["FAILED"]
    assert list(runs["metrics.train_loss"].notna()) == [True]  # the epoch it did log


def test_a_server_that_is_not_there_is_one_line_before_any_work(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'mlplab[mlflow]'")
    port = _free_port()
    config = quick(tmp_path, **{"track.uri": f"http://127.0.0.1:{port}"})
    with pytest.raises(ConfigError) as caught:
        train(config, dataset=make_dataset(n_train=64, n_test=16))
    assert str(caught.value).startswith(
        f"track.uri http://127.0.0.1:{port}: no MLflow server answers there ("
    )
    assert not list((tmp_path / "runs").glob("*-tracked")), "no run directory is left behind"


def test_a_store_that_is_not_sqlite_or_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """Both were 'internal error' from deep in SQLAlchemy (the unwritable folder after ~100 s
    of MLflow's retries)."""
    pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'mlplab[mlflow]'")
    from mlplab.errors import WriteError

    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    uri = f"sqlite:///{tmp_path / 'notes.csv'}"
    with pytest.raises(ConfigError) as caught:
        train(quick(tmp_path, **{"track.uri": uri}), dataset=make_dataset(n_train=64, n_test=16))
    assert str(caught.value) == (
        f"track.uri {uri}: {tmp_path / 'notes.csv'} is not an SQLite database (an MLflow "
        "store); point --tracking-uri at an MLflow store or a new file, or leave it out for the "
        "local store under runs/mlflow"
    )
    assert (tmp_path / "notes.csv").read_text() == "a,b\n1,2\n"
    uri = f"sqlite:///{tmp_path / 'notes.csv' / 'x.db'}"  # a folder that is a file
    with pytest.raises(WriteError, match=r"part of .*notes\.csv is a file, not a folder; "
                       "choose another --tracking-uri$"):  # fmt: skip
        train(quick(tmp_path, **{"track.uri": uri}), dataset=make_dataset(n_train=64, n_test=16))


def test_without_the_extra_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(MissingExtraError) as caught:
        train(quick(tmp_path), dataset=make_dataset(n_train=64, n_test=16))
    assert str(caught.value) == (
        "track.to=mlflow (logging runs to MLflow) needs the Python package 'mlflow', which is "
        "not installed; install it with: pip install 'mlplab[mlflow]'"
    )
    assert not (tmp_path / "runs").exists()  # refused before the data or the run


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("track.to", "mlfow", "config key 'track.to' must be one of none, mlflow; got 'mlfow' (did you mean 'mlflow'?)"),
        ("track.experiment", "", "config key 'track.experiment' must be a non-empty name on one line (at most 500 characters); got ''"),
        ("track.uri", "a\nb", "config key 'track.uri' must be an address such as http://127.0.0.1:5000 or sqlite:///runs/mlflow/mlflow.db, or none for that default; got 'a\\nb'"),
    ],
)  # fmt: skip
def test_track_keys_are_validated_once(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config().override({key: value})
    assert str(caught.value) == message


def test_a_real_mlflow_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow server` on loopback, a free port; skipped when it needs packages mlflow-skinny
    lacks (flask, ...) or does not answer within SERVER_WAIT seconds here."""
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed")
    for module in ("flask", "flask_cors", "aiohttp"):
        pytest.importorskip(module, reason=f"`mlflow server` needs {module} (pip install mlflow)")
    port = _free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root", str(tmp_path / "artifacts")]  # fmt: skip
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below, after the server)
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not _answers(f"http://127.0.0.1:{port}/health", SERVER_WAIT, server):
            pytest.skip(f"mlflow server silent for {SERVER_WAIT:.0f} s (MLPLAB_MLFLOW_SERVER_WAIT)")
        uri = f"http://127.0.0.1:{port}"
        config = quick(tmp_path, **{"track.uri": uri, "track.experiment": "served"})
        run_dir = train(config, dataset=make_dataset(n_train=256, n_test=64)).run_dir
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        runs = mlflow.search_runs(experiment_names=["served"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert list(runs["status"]) == ["FINISHED"]
        assert runs["metrics.test_accuracy"][0] == pytest.approx(summary["test_accuracy"])
        artifacts = mlflow.MlflowClient().list_artifacts(runs["run_id"][0], "run")
        assert "run/summary.json" in [a.path for a in artifacts]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, 15)  # the server and the workers it started
        server.wait(timeout=30)
        log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str, wait: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
        time.sleep(0.5)
    return False
