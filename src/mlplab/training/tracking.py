"""Experiment tracking: a run also logged to MLflow while it trains (``track.to: mlflow``).

What is logged, in one MLflow run named after the run directory:

- at the start: every config key as a param (``train.lr``, ``model.hidden``, ...) and tags
  (``mlplab.run_dir``, ``mlplab.version``, ``mlplab.dataset``, ``mlplab.task``);
- after every epoch: its ``metrics.jsonl`` record's figures (``train_loss``, ``val_loss``,
  ``val_accuracy``, ``lr``, ...) at step = the epoch;
- at the end: the summary's figures (``test_accuracy``, ``test_ece``, ``best_epoch``, ...,
  and ``test_accuracy.<class>`` per class) and the run directory's files as artifacts under
  ``run/`` (config.yaml, summary.json, the weights, the card, train.log, ...); the MLflow run
  ends FINISHED, or FAILED (KILLED for Ctrl-C before an epoch ended) when training raised.

The default store, ``sqlite:///<run.dir>/mlflow/mlflow.db`` with artifacts in
``<run.dir>/mlflow/artifacts``, keeps everything under the one output root. SQLite, not a
``./mlruns`` folder: MLflow 3 refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE=true``
is set (it is in "maintenance mode"), and SQLite is the local store it recommends.

It lives in :mod:`mlplab.training` (not ``integrations/``) because the loop drives it: a run
is tracked by its config wherever it trains (``train()``, ``mlplab train``, sweep trials),
and training sits below integrations. Only rank 0 logs. MLflow is imported here only, late
(``pip install 'mlplab[mlflow]'``). The client is :class:`mlflow.MlflowClient`, so no
global MLflow state (an active run, a tracking URI set by the user) is touched.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from ..errors import ConfigError, MlplabError
from ..extras import require
from ..files.atomic import write_error
from ..files.limits import open_regular
from ..progress import logger
from ..run.directory import Run

__all__ = ["MlflowTracker", "check_tracker", "default_uri", "tracking"]

ARTIFACT_PATH = "run"  # the run directory's files go under this folder of the MLflow run
MAX_PARAM = 6000  # characters MLflow keeps of a param's value
# numbers in summary.json that are settings or plumbing, not results (they are params or tags)
_NOT_FIGURES = {"seed", "threads", "world_size", "epochs_planned"}


def check_tracker(config: Config) -> None:
    """Before any work: the tracker ``track.to`` names can be imported (else one line naming
    ``pip install 'mlplab[mlflow]'``)."""
    if config.track.to == "mlflow":
        require("mlflow", "mlflow", "track.to=mlflow (logging runs to MLflow)")


def default_uri(runs_dir: str | Path) -> tuple[str, str]:
    """The default store and artifact location under ``runs_dir``: an SQLite file and a
    folder beside it (absolute, so a run logged from anywhere lands in the same place)."""
    folder = Path(runs_dir).absolute() / "mlflow"
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


class MlflowTracker:
    """One MLflow run for one mlplab run; each method logs one stage."""

    def __init__(self, config: Config, run: Run) -> None:
        mlflow = require("mlflow", "mlflow", "track.to=mlflow (logging runs to MLflow)")
        track = config.track
        uri, artifacts = (track.uri, None) if track.uri else default_uri(config.run.dir)
        if track.uri is None:
            (Path(config.run.dir) / "mlflow").mkdir(parents=True, exist_ok=True)
        self.uri = uri
        _check_server(uri)
        _check_sqlite(uri)
        self._failed = False
        try:
            self.client = mlflow.MlflowClient(tracking_uri=uri)
            experiment = self.client.get_experiment_by_name(track.experiment)
            experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else self.client.create_experiment(track.experiment, artifact_location=artifacts)
            )
            tags = {
                "mlplab.run_dir": str(run.path),
                "mlplab.version": __version__,
                "mlplab.dataset": config.data.dataset,
                "mlplab.task": config.task,
            }
            created = self.client.create_run(experiment_id, run_name=run.path.name, tags=tags)
        except Exception as exc:  # mlflow raises its own, requests' and sqlalchemy's errors
            raise ConfigError(
                f"track.uri {uri}: cannot start an MLflow run in experiment "
                f"'{track.experiment}' ({_why(exc)}); check the address (an `mlflow server` "
                "must be running there) or pass --track none"
            ) from None
        self.run_id = created.info.run_id
        self.experiment_id = experiment_id
        params = [
            mlflow.entities.Param(f"{section}.{key}", _param(value))
            for section, keys in config.to_dict().items()
            for key, value in keys.items()
        ]
        self._call(self.client.log_batch, self.run_id, params=params)
        logger.info(f"track    mlflow run {self.run_id} in '{track.experiment}' at {uri}")

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> None:
        """Log; on a failure warn once and log nothing more (a server that went away would
        make every call wait out MLflow's retries): training does not stop for a tracker."""
        if self._failed:
            return
        try:
            method(*args, **kwargs)
        except Exception as exc:
            self._failed = True
            logger.warning(
                f"mlflow: logging to {self.uri} failed ({_why(exc)}); the run goes on without "
                "it (its files hold everything)"
            )

    def log_epoch(self, record: dict[str, Any]) -> None:
        """One epoch's figures at step = its number."""
        self._metrics(record, step=int(record["epoch"]), skip={"epoch"})

    def hook(self, on_epoch: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        """``on_epoch`` (a loop's epoch hook, or None) that first logs the epoch's record."""

        def logged(epoch: Any) -> Any:
            self.log_epoch(epoch.record)
            return on_epoch(epoch) if on_epoch is not None else None

        return logged

    def finish(self, run: Run, status: str) -> None:
        """The summary's figures, the run directory's files, and the run's end."""
        if status == "FINISHED":
            summary = run.summary()
            figures = {k: v for k, v in summary.items() if k not in _NOT_FIGURES}
            per_class = figures.pop("test_per_class_accuracy", None) or {}
            figures.update({f"test_accuracy.{_metric_name(c)}": v for c, v in per_class.items()})
            self._metrics(figures, step=int(summary.get("best_epoch") or 0))
            self._call(
                self.client.set_tag,
                self.run_id,
                "mlplab.interrupted",
                str(bool(summary.get("interrupted"))).lower(),
            )
            self._call(self.client.log_artifacts, self.run_id, str(run.path), ARTIFACT_PATH)
        self._call(self.client.set_terminated, self.run_id, status)

    def _metrics(self, values: dict[str, Any], *, step: int, skip: Collection[str] = ()) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [
            Metric(_metric_name(k), float(v), stamp, step)
            for k, v in values.items()
            if k not in skip
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
        ]
        if metrics:
            self._call(self.client.log_batch, self.run_id, metrics=metrics)


@contextlib.contextmanager
def tracking(config: Config, run: Run, is_main: bool = True) -> Iterator[MlflowTracker | None]:
    """The run's tracker while it trains (None when ``track.to`` is none, or not rank 0);
    its MLflow run ends FINISHED when the block ends, FAILED when it raises (KILLED for
    Ctrl-C)."""
    if config.track.to == "none" or not is_main:
        yield None
        return
    tracker = MlflowTracker(config, run)
    try:
        yield tracker
    except KeyboardInterrupt:
        tracker.finish(run, "KILLED")
        raise
    except BaseException:
        tracker.finish(run, "FAILED")
        raise
    tracker.finish(run, "FINISHED")


def _check_server(uri: str, timeout: float = 5.0) -> None:
    """An http(s) tracking URI answers MLflow's ``/health`` within ``timeout`` seconds: MLflow's
    own client would retry an absent server for minutes before failing."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
            answer.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"track.uri {uri}: no MLflow server answers there ({_why(why)}); start one "
            "(`mlflow server --host 127.0.0.1 --port 5000`), fix --tracking-uri, or leave it "
            "out for the local store under runs/mlflow"
        ) from None


SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_sqlite(uri: str) -> None:
    """An SQLite tracking URI names an SQLite file (or none yet) in a folder this process can
    write: MLflow would fail on anything else deep in SQLAlchemy, after retrying an
    unwritable folder for ~100 s."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri[len("sqlite:///") :])
    if path.exists():
        try:
            with open_regular(path) as stream:
                head = stream.read(len(SQLITE_MAGIC))
        except MlplabError as exc:
            raise ConfigError(f"track.uri {uri}: {exc}") from None
        if head and head != SQLITE_MAGIC:
            raise ConfigError(
                f"track.uri {uri}: {path} is not an SQLite database (an MLflow store); point "
                "--tracking-uri at an MLflow store or a new file, or leave it out for the local "
                "store under runs/mlflow"
            )
        return
    folder = path.parent
    try:  # the store and its journal are created beside it
        probe = folder / f".mlplab-probe-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise write_error(exc, path, "choose another --tracking-uri") from None


def _param(value: Any) -> str:
    text = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
    return text[:MAX_PARAM]


def _metric_name(name: Any) -> str:
    """A name MLflow accepts: letters, digits and ``_ - . / space``; others become ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", str(name)) or "_"


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
