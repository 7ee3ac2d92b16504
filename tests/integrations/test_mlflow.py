"""A finished run logged to MLflow after the fact (mlplab.integrations.mlflow.log_run), read
back with MLflow's own client; an unfinished run is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_dataset

from mlplab import Config, train
from mlplab.errors import RunError
from mlplab.integrations.mlflow import log_run


def test_a_finished_run_logged_afterwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip(
        "mlflow", reason="mlflow is not installed: pip install 'mlplab[mlflow]'"
    )
    config = Config().override(
        {
            "model.hidden": [16],
            "train.epochs": 2,
            "train.threads": 1,
            "run.dir": str(tmp_path / "runs"),
            "run.name": "later",
        }
    )
    run_dir = train(config, dataset=make_dataset(n_train=256, n_test=64)).run_dir
    assert not (tmp_path / "runs" / "mlflow").exists()  # trained without tracking
    run_id = log_run(run_dir, experiment="afterwards")
    # the default store is the one training would have used: beside the run
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'runs' / 'mlflow' / 'mlflow.db'}"
    )
    runs = mlflow.search_runs(experiment_names=["afterwards"])
    assert list(runs["run_id"]) == [run_id] and list(runs["status"]) == ["FINISHED"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert runs["metrics.test_accuracy"][0] == pytest.approx(summary["test_accuracy"], rel=1e-12)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = mlflow.MlflowClient().get_metric_history(run_id, "train_loss")
    assert [(m.step, m.value) for m in logged] == [(r["epoch"], r["train_loss"]) for r in history]
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "run")]
    assert artifacts == sorted(f"run/{p.name}" for p in run_dir.iterdir())


def test_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "20261205-000000-x"
    run.mkdir()
    Config().save(run / "config.yaml")
    (run / "model.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"")
    with pytest.raises(
        RunError, match=r"has no summary.json: training has not finished; finish it"
    ):
        log_run(run)
