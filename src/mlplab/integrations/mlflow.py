"""Log a finished run directory to MLflow after the fact: a run trained without
``--track mlflow``, or one continued with ``--resume`` (which does not log).

The same MLflow run as :mod:`mlplab.training.tracking` writes while training (the params,
each epoch of ``metrics.jsonl`` at its step, the summary's figures, the run directory's
files under ``run/``), read from the run's own files. The default store is the one training
would have used: ``sqlite:///<the run's parent folder>/mlflow/mlflow.db``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RunError
from ..run.directory import Run
from ..training.tracking import MlflowTracker

__all__ = ["log_run"]


def log_run(run_dir: str | Path, *, uri: str | None = None, experiment: str = "mlplab") -> str:
    """Log the finished run ``run_dir`` to MLflow (``uri``: None for the default store) in
    ``experiment``; return the MLflow run's id."""
    run = Run.open(run_dir)
    if not run.summary():
        raise RunError(
            f"run {run.path} has no summary.json: training has not finished; finish it "
            f"(`mlplab train --resume {run.path}`) before logging it to MLflow"
        )
    config = run.config().override(
        {
            "track.to": "mlflow",
            "track.uri": uri,
            "track.experiment": experiment,
            "run.dir": str(run.path.parent),  # where the default store goes: beside the run
        }
    )
    tracker = MlflowTracker(config, run)
    for record in run.metrics():
        tracker.log_epoch(record)
    tracker.finish(run, "FINISHED")
    return tracker.run_id
