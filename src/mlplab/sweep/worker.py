"""A sweep's worker: claim a waiting trial, train it as an ordinary run, record its score.

Workers (this process, and ``mlplab sweep --resume`` on any machine that reaches the same
database) claim waiting trials one at a time with one atomic WAITING -> RUNNING update, so
no trial runs twice and none is lost, however many workers join or leave. A trial stopped by
Ctrl-C or a crash is marked failed and queued again with the same parameters; a trial whose
settings fail (the config refuses them, training diverges) is marked failed and the sweep
goes on.

The objective is the validation score of the weights a run keeps (``best_val_accuracy`` in
its summary: the epoch ``train.select`` names, by default the lowest validation loss; R² for
a regression), never a test score. Searches prune on the validation score of each epoch.
Each trial records its run directory, host, test score and timings as user attributes, so a
report needs only the study.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..data import Dataset, load_configured
from ..errors import ConfigError, TrainingError
from ..progress import logger
from ..run.outputs import SWEEPS
from ..training.loop import Epoch, TrainResult, train
from .folders import Sweep, create_sweep, describe_sweep
from .space import Param, format_value
from .study import load_optuna, make_pruner, make_sampler, open_storage, quiet_optuna, sqlite_lock

if TYPE_CHECKING:
    import optuna

__all__ = ["format_score", "run_sweep", "sweep"]


def run_sweep(
    sweep: Sweep,
    *,
    dataset: Dataset | None = None,
    max_trials: int | None = None,
    verbose: bool = False,
) -> list[optuna.trial.FrozenTrial]:
    """Work on a sweep: claim waiting trials one at a time and train each, until none is
    left (or ``max_trials`` ran here). Returns the trials this worker finished.

    Logs one line per trial (``verbose``: also every trial's own training lines, which
    always go to its run's ``train.log``). A diverged or invalid trial is marked failed
    and the sweep goes on; Ctrl-C marks the current trial failed, queues it again and
    stops.
    """
    from ..training.distributed import world_size

    if world_size() > 1:  # under torchrun every rank would run its own sweep loop
        raise ConfigError(
            "mlplab sweep runs trials in parallel as separate workers (run it once per machine "
            "with --resume --storage); do not start it under torchrun"
        )
    worker = _Worker.start(sweep, dataset, verbose)
    finished = []
    while max_trials is None or len(finished) < max_trials:
        claimed = worker.claim()
        if claimed is None:
            break
        finished.append(worker.run_trial(*claimed))
    return finished


def sweep(
    base: Config,
    *,
    space: str | Path | dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | Sequence[str] | None = None,
    seeds: int | None = 1,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = SWEEPS,
    sampler: str | None = "tpe",
    pruner: str | None = "median",
    seed: int | None = 0,
    dataset: Dataset | None = None,
    verbose: bool = False,
) -> Sweep:
    """Create a sweep and work on it here until its queue is empty (see :func:`create_sweep`
    and :func:`run_sweep`); other workers may join it meanwhile."""
    s = create_sweep(
        base,
        space=space,
        grid=grid,
        seeds=seeds,
        trials=trials,
        storage=storage,
        study=study,
        sweeps_dir=sweeps_dir,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
    )
    logger.info(describe_sweep(s))
    run_sweep(s, dataset=dataset, verbose=verbose)
    return s


def format_score(value: float | None, regression: bool) -> str:
    """A validation or test score as the sweep shows it: R² to 4 places, accuracy in %."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if regression else f"{value:.2%}"


# ----- one worker --------------------------------------------------------------------------------
@dataclass
class _Worker:
    """What every trial this process runs shares: the sweep (its study loaded with the
    sampler and pruner), the base config and space (read once), the loaded datasets."""

    sweep: Sweep
    base: Config
    space: dict[str, Param]
    spec: dict[str, Any]
    dataset: Dataset | None  # the caller's; else each trial's config loads it (cached)
    verbose: bool
    cache: dict[str, Dataset] = field(default_factory=dict)

    @classmethod
    def start(cls, sweep: Sweep, dataset: Dataset | None, verbose: bool) -> _Worker:
        optuna = load_optuna()
        spec = sweep.spec
        # a grid's trials are all run: pruning is for a search
        pruner = make_pruner(
            spec["pruner"] if spec["kind"] == "search" else "none", spec.get("pruner_warmup", 0)
        )
        with quiet_optuna():
            store = open_storage(sweep.storage_url)
            study = optuna.load_study(
                study_name=sweep.name,
                storage=store,
                sampler=make_sampler(spec["sampler"], sweep.sampler_seed),
                pruner=pruner,
            )
        loaded = dataclasses.replace(sweep, study=study, storage=store)
        loaded.runs_dir.mkdir(parents=True, exist_ok=True)
        return cls(loaded, loaded.base_config(), loaded.space(), spec, dataset, verbose)

    def claim(self) -> tuple[optuna.Trial, dict[str, Any]] | None:
        """Take one waiting trial (WAITING -> RUNNING, atomically in the database), or None;
        with the parameters it was queued with."""
        optuna = load_optuna()
        State = optuna.trial.TrialState
        storage, study = self.sweep.storage, self.sweep.study
        study_id = storage.get_study_id_from_name(self.sweep.name)
        with sqlite_lock(self.sweep.storage_url):
            for frozen in storage.get_all_trials(study_id, deepcopy=False, states=(State.WAITING,)):
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
                try:
                    if storage.set_trial_state_values(trial_id, State.RUNNING):
                        fixed = dict(frozen.system_attrs.get("fixed_params") or {})
                        # the study reads through its own cache of the storage: let it see the claim
                        study.get_trials(deepcopy=False, states=(State.RUNNING,))
                        return optuna.Trial(study, trial_id), fixed
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
        return None

    def run_trial(self, trial: optuna.Trial, fixed: dict[str, Any]) -> optuna.trial.FrozenTrial:
        """Train one claimed trial and tell the study how it ended (complete, pruned, failed);
        a stop from outside (Ctrl-C, a data error, a bug) queues it again and is raised."""
        started = time.perf_counter()
        params = self._params(trial, fixed)
        trial.set_user_attr("host", platform.node())
        shown = "  ".join(f"{k}={format_value(v)}" for k, v in params.items())
        own = {"run.dir": str(self.sweep.runs_dir), "run.name": f"trial-{trial.number:04d}"}
        try:  # a combination the config refuses (nesterov without momentum, ...) fails alone
            config = self.base.override({**params, **own}, source=f"trial {trial.number}")
        except ConfigError as exc:
            return self._fail(trial, str(exc), shown)
        pruned: list[tuple[int, float]] = []  # (epoch, the score that was reported)
        try:
            result = self._train(trial, config, pruned)
        except (TrainingError, ConfigError) as exc:  # this trial's settings: the sweep goes on
            run = next(iter(sorted(self.sweep.runs_dir.glob(f"*-trial-{trial.number:04d}*"))), None)
            if run is not None:
                trial.set_user_attr("run_dir", str(run.resolve()))
            return self._fail(trial, str(exc), shown)
        except BaseException as exc:  # Ctrl-C, a data error, a bug: not the trial's fault
            self._requeue(
                trial, params, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
            raise
        if result.interrupted:  # Ctrl-C after an epoch: train() kept the run; the trial goes back
            self._requeue(trial, params, "interrupted", str(result.run_dir.resolve()))
            raise KeyboardInterrupt
        return self._finish(trial, result, pruned, shown, started)

    # ----- the steps of a trial ------------------------------------------------------------------
    def _params(self, trial: optuna.Trial, fixed: dict[str, Any]) -> dict[str, Any]:
        """The trial's parameters: a search's drawn by the sampler now; a grid's all fixed by
        the queue (suggesting them records each with its choices)."""
        if self.spec["kind"] == "search":
            return {key: p.suggest(trial) for key, p in self.space.items()}
        seeds = self.spec.get("seeds") or [fixed.get("train.seed")]
        choices = {**self.spec["grid"], "train.seed": seeds}
        return {k: trial.suggest_categorical(k, choices.get(k, [v])) for k, v in fixed.items()}

    def _train(
        self, trial: optuna.Trial, config: Config, pruned: list[tuple[int, float]]
    ) -> TrainResult:
        """Train the trial's run, reporting each epoch's validation score to the pruner
        (``pruned`` gets the epoch and score where it said stop)."""

        def on_epoch(epoch: Epoch) -> bool:
            record = epoch.record
            value = record["val_r2"] if "val_r2" in record else record["val_accuracy"]
            if value is None:
                return False
            trial.report(value, record["epoch"])
            if trial.should_prune():
                pruned.append((record["epoch"], value))
                return True
            return False

        data = self.dataset or _dataset(config, self.cache)
        # verbose: the trial's lines as train() shows them; else its train.log only
        return train(
            config, dataset=data, on_epoch=on_epoch, progress=None if self.verbose else False
        )

    def _finish(
        self,
        trial: optuna.Trial,
        result: TrainResult,
        pruned: list[tuple[int, float]],
        shown: str,
        started: float,
    ) -> optuna.trial.FrozenTrial:
        """Record a trained trial's run and scores, and tell the study: pruned, complete, or
        failed when it has no validation score."""
        summary, history = result.summary, result.history
        regression = "test_r2" in summary
        if regression:
            value = history[summary["best_epoch"] - 1]["val_r2"]
        else:
            value = summary["best_val_accuracy"]
        attrs = {
            "run_dir": str(result.run_dir.resolve()),
            "metric": "val_r2" if regression else "val_accuracy",
            "test": summary["test_r2"] if regression else summary["test_accuracy"],
            "best_epoch": summary["best_epoch"],
            "epochs_run": summary["epochs_run"],
            "epochs_planned": summary["epochs_planned"],
            "train_seconds": summary["train_seconds"],
            "seconds": time.perf_counter() - started,
        }
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        label = "R²" if regression else "acc"
        if pruned:
            epoch, score = pruned[0]
            state = load_optuna().trial.TrialState.PRUNED
            frozen = self.sweep.study.tell(trial, state=state)
            status = f"pruned at epoch {epoch} (val {label} {format_score(score, regression)})"
        elif value is None or not math.isfinite(value):
            return self._fail(trial, "no validation score", shown)
        else:
            frozen = self.sweep.study.tell(trial, value)
            status = f"val {label} {format_score(value, regression)}"
        epochs = summary["epochs_run"]
        logger.info(
            f"trial {trial.number:>4}  {status}  {shown}  "
            f"({epochs} epoch{'s' * (epochs != 1)}, {attrs['seconds']:.1f}s)"
        )
        return frozen

    def _fail(self, trial: optuna.Trial, message: str, shown: str) -> optuna.trial.FrozenTrial:
        trial.set_user_attr("error", message)
        logger.warning(f"trial {trial.number:>4}  failed: {message}  {shown}")
        return self.sweep.study.tell(trial, state=load_optuna().trial.TrialState.FAIL)

    def _requeue(
        self, trial: optuna.Trial, params: dict[str, Any], why: str, run_dir: str | None = None
    ) -> None:
        """Mark a trial stopped from outside as failed and queue its parameters again."""
        trial.set_user_attr("error", f"stopped: {why}; queued again")
        if run_dir:
            trial.set_user_attr("run_dir", run_dir)
        self.sweep.study.tell(trial, state=load_optuna().trial.TrialState.FAIL)
        self.sweep.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
        logger.warning(
            f"trial {trial.number:>4}  stopped ({why}); queued again with the same parameters"
        )


def _dataset(config: Config, cache: dict[str, Dataset]) -> Dataset:
    """The trial's dataset, loaded once per worker (keys that do not change loading aside)."""
    data = config.to_dict()["data"]
    loading = {k: v for k, v in data.items() if k not in ("val_size", "limit", "normalize")}
    key = json.dumps(loading, sort_keys=True)
    if key not in cache:
        cache[key] = load_configured(config.data)
    return cache[key]
