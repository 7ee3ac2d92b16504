"""Sweeps: Optuna studies over config keys, and ablations (a grid of settings × seeds).

A sweep is a folder, ``sweeps/<YYYYmmdd-HHMMSS>-<name>/``:

- ``study.db``    the Optuna study (SQLite), unless ``storage`` names another database
- ``sweep.json``  the study's name and storage (password hidden), and what kind of sweep
- ``base.yaml``   the config every trial starts from (``space.yaml``: the search space)
- ``runs/``       one ordinary run directory per trial (``<stamp>-trial-0007``)

Every trial is created up front, as a WAITING trial of the study: a search's without
parameters (the sampler draws them when the trial starts, from the results so far), a
grid's with all of them. Workers (this process, and ``mlplab sweep --resume`` on any
machine that reaches the same database) claim waiting trials one at a time with one
atomic WAITING -> RUNNING update, so no trial runs twice and none is lost, however many
workers join or leave. (Optuna's GridSampler is not used for grids: its own docs say that
concurrent workers occasionally run the same grid point twice, and it has no notion of
repeating a setting over seeds.) A trial stopped by Ctrl-C or a crash is marked failed and
queued again with the same parameters.

The objective is the validation score of the weights a run keeps (``best_val_accuracy``
in its summary: the epoch `train.select` names, by default the lowest validation loss; R² for a regression), never a test
score. Searches prune with Optuna's MedianPruner on the validation score of each epoch
(after 5 finished trials, never in a trial's first quarter of epochs).
Each trial records its run directory, host, test score and timings as user attributes,
so a report needs only the study (:mod:`mlplab.sweep.report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import json
import logging
import math
import os
import platform
import re
import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..config import MAX_CONFIG_BYTES, SECTIONS, Config, describe, load_yaml, yaml_problem
from ..data import Dataset, load_configured
from ..errors import ConfigError, FormatError, RunError, TrainingError, did_you_mean
from ..extras import require
from ..files.atomic import write_text_atomic
from ..files.limits import open_regular, printable, read_text_file, shown
from ..progress import logger
from ..training.loop import train

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Param",
    "Sweep",
    "add_trials",
    "create_sweep",
    "describe_sweep",
    "open_sweep",
    "parse_grid",
    "parse_space",
    "run_sweep",
    "sweep",
]

SPEC_FORMAT = "mlplab-sweep-1"
SWEEP_JSON, BASE, SPACE, STUDY_DB, RUNS = (
    "sweep.json",
    "base.yaml",
    "space.yaml",
    "study.db",
    "runs",
)
TYPES = {  # a range's type -> the fields it takes (beyond `type`)
    "float": ("low", "high", "log", "step"),
    "int": ("low", "high", "log", "step"),
    "categorical": ("choices",),
}
SAMPLERS = ("tpe", "random")
# The most trials one sweep queues: each is a row of the study, made up front, and a grid of
# a few keys × --seeds multiplies fast (--seeds 1000000000 took 13 GB before this cap).
MAX_TRIALS = 100_000
MAX_SWEEP_JSON = 64 * 1024  # bytes: sweep.json holds a study name and a URL
PRUNERS = ("median", "none")
SPACE_EXAMPLE = "train.lr: {type: float, low: 1e-4, high: 1e-2, log: true}"


# ----- search spaces and grids ---------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One searched config key: a float or int range (optionally log-scaled or stepped) or
    a list of choices. Choices of list-valued keys are strings (``"256,128"``)."""

    key: str
    type: str  # float, int or categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)  # type: ignore[arg-type]
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,  # type: ignore[arg-type]
                                     step=int(self.step or 1))  # fmt: skip
        return trial.suggest_categorical(self.key, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of the range (what ``space.yaml`` holds)."""
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def __str__(self) -> str:
        if self.type == "categorical":
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}"
        how = ", log" if self.log else f", step {self.step:g}" if self.step else ""
        return f"{self.key} {self.type} {self.low:g}..{self.high:g}{how}"


def parse_space(space: str | Path | dict[str, Any], base: Config) -> dict[str, Param]:
    """Read and check a search space: a YAML file (or its dict) mapping config keys to
    ranges. Every bound and choice is validated as a value of its key on top of ``base``;
    the first problem raises a one-line :class:`ConfigError` naming the key."""
    if isinstance(space, dict):
        tree, where = space, "search space"
    else:
        path = Path(space)
        where = f"space file {printable(path)}"
        # a FIFO, /dev/zero, a sparse 1 GB file or binary bytes: one line, nothing read beyond
        # the cap (a space is a few lines, like a config)
        text = read_text_file(path, MAX_CONFIG_BYTES, "space file", error=ConfigError,
                              hint=f"a search space is a few lines such as '{SPACE_EXAMPLE}'")  # fmt: skip
        try:
            tree = load_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(tree, dict) or not tree:
        raise ConfigError(
            f"{where} must map config keys to ranges, e.g. '{SPACE_EXAMPLE}'; got {shown(tree)}"
        )
    return {str(key): _parse_param(str(key), spec, base, where) for key, spec in tree.items()}


def _parse_param(key: str, spec: Any, base: Config, where: str) -> Param:
    kind = _check_key(key, where)
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: '{key}' must be a mapping such as {{type: float, low: 1e-4, high: 1e-2}} "
            f"or {{type: categorical, choices: [a, b]}}; got {shown(spec)}"
        )
    type_ = spec.get("type")
    if type_ not in TYPES:
        raise ConfigError(
            f"{where}: '{key}' type must be one of {', '.join(TYPES)}; got {shown(type_)}"
            f"{did_you_mean(str(type_), TYPES)}"
        )
    for name in spec:
        if name != "type" and name not in TYPES[type_]:
            raise ConfigError(
                f"{where}: '{key}' has an unknown field '{name}'"
                f"{did_you_mean(str(name), TYPES[type_])}; a {type_} range takes "
                f"{', '.join(TYPES[type_])}"
            )
    if type_ == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(
                f"{where}: '{key}' (categorical) needs choices: a non-empty list; got {shown(choices)}"
            )
        values = tuple(
            _grid_value(base, key, c, f"{where}: '{key}' choice {shown(c)}") for c in choices
        )
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: '{key}' lists a choice twice: {list(choices)}")
        return Param(key, "categorical", choices=values)
    if kind not in (int, float):
        hint = f" (choices: {', '.join(_choices(key))})" if _choices(key) else ""
        raise ConfigError(
            f"{where}: '{key}' is {_kind_name(kind)}: use type categorical{hint}; got type {type_}"
        )
    if type_ == "float" and kind is int:
        raise ConfigError(
            f"{where}: '{key}' is a whole number: use type int or categorical; got type float"
        )
    missing = [f for f in ("low", "high") if f not in spec]
    if missing:
        raise ConfigError(
            f"{where}: '{key}' ({type_}) needs low and high; {' and '.join(missing)} missing"
        )
    bounds = {}
    for name in ("low", "high", "step"):
        value = spec.get(name)
        if value is None:
            continue
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        if not ok or (type_ == "int" and not float(value).is_integer()):
            what = "a whole number" if type_ == "int" else "a finite number"
            raise ConfigError(f"{where}: '{key}' {name} must be {what}; got {shown(value)}")
        bounds[name] = value
    low, high, step = bounds["low"], bounds["high"], bounds.get("step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: '{key}' log must be true or false; got {shown(log)}")
    if not low < high:
        raise ConfigError(f"{where}: '{key}' needs low < high; got low={low}, high={high}")
    if log and low <= 0:
        raise ConfigError(f"{where}: '{key}' log: true needs low > 0; got low={low}")
    if log and step is not None:
        raise ConfigError(f"{where}: '{key}' takes log or step, not both")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: '{key}' step must be > 0; got {step}")
    for name, value in (("low", low), ("high", high)):
        _grid_value(base, key, value, f"{where}: '{key}' {name}={value}")
    if type_ == "int":
        low, high, step = int(low), int(high), None if step is None else int(step)
    else:
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Param(key, type_, low, high, log, step)


def parse_grid(items: Sequence[str], base: Config) -> dict[str, list[Any]]:
    """``["model.head=logits,log_softmax", ...]`` -> ``{key: [values]}``, each value checked
    on top of ``base``. Values are split at commas outside brackets, so a list-valued key
    takes ``model.hidden=[128],[256,128]``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"--grid expects KEY=V1,V2,... (e.g. model.head=logits,log_softmax); got '{item}'"
            )
        key, text = (part.strip() for part in item.split("=", 1))
        _check_key(key, "--grid")
        if key in grid:
            raise ConfigError(f"--grid names '{key}' twice; give all its values in one --grid")
        raw = [v.strip() for v in re.split(r",(?![^\[]*\])", text) if v.strip()]
        if not raw:
            raise ConfigError(f"--grid {key}= needs at least one value (V1,V2,...)")
        values = [_grid_value(base, key, v.strip("[]") if v.startswith("[") else v,
                              f"--grid {key}={v}") for v in raw]  # fmt: skip
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {key} lists a value twice: {text}")
        grid[key] = values
    return grid


def _check_key(key: str, where: str) -> Any:
    """The declared type of a sweepable config key; run.* belongs to the sweep."""
    keys = {k.key for k in describe()}
    if key not in keys:
        raise ConfigError(
            f"{where}: unknown config key '{printable(key)[:100]}'{did_you_mean(key[:100], keys)}; "
            "`mlplab config --list` shows every key"
        )
    if key.startswith("run."):
        raise ConfigError(
            f"{where}: '{key}' is set by the sweep for each trial; it cannot be swept"
        )
    section, name = key.split(".", 1)
    hints = {f.name: f.type for f in dataclasses.fields(SECTIONS[section])}
    text = str(hints[name])
    return int if text.startswith("int") else float if text.startswith("float") else (
        list if text.startswith("list") else bool if text == "bool" else str)  # fmt: skip


def _kind_name(kind: Any) -> str:
    return {bool: "true or false", str: "a string", list: "a list"}.get(kind, "a number")


def _choices(key: str) -> tuple[str, ...]:
    return next((k.choices or () for k in describe() if k.key == key), ())


def _grid_value(base: Config, key: str, value: Any, where: str) -> Any:
    """The value as a trial parameter: checked as ``key`` on top of ``base``; scalars as
    their config type, lists as ``"256,128"`` strings (Optuna's choices are scalars)."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    try:
        config = base.override({key: value}, source=where)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(where) else f"{where}: {message}") from None
    section, name = key.split(".", 1)
    coerced = getattr(getattr(config, section), name)
    return ",".join(map(str, coerced)) if isinstance(coerced, list) else coerced


# ----- the study -------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A sweep: its local folder (runs and reports go there) and its Optuna study."""

    path: Path
    study: optuna.Study
    storage_url: str
    sampler_seed: int | None = None  # the creating process samples reproducibly; joiners not
    storage: Any = None  # the open Optuna storage behind ``study``

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def spec(self) -> dict[str, Any]:
        """What the sweep is (kind, base config, space or grid, seeds, requested trials),
        kept in the study itself so that any worker and any report can read it."""
        spec = self.study.user_attrs.get("mlplab")
        if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
            raise ConfigError(
                f"study '{self.name}' in {_mask(self.storage_url)} was not made by `mlplab sweep`"
            )
        return spec

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    def base_config(self) -> Config:
        return Config.from_dict(self.spec["base_config"], source=f"study '{self.name}'")

    def space(self) -> dict[str, Param]:
        return (
            parse_space(self.spec.get("space") or {}, self.base_config())
            if self.kind == "search"
            else {}
        )

    def grid(self) -> dict[str, list[Any]]:
        return self.spec.get("grid") or {}

    @property
    def runs_dir(self) -> Path:
        return self.path / RUNS

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def counts(self) -> dict[str, int]:
        """How many trials are in each state (waiting, running, complete, pruned, fail)."""
        out: dict[str, int] = {}
        for t in self.trials():
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out

    def report_command(self) -> str:
        """The command that writes this sweep's report (a storage other than the folder's
        own study.db is named: sweep.json alone is never trusted with one)."""
        if _is_default_sqlite(self.storage_url, self.path):
            return f"mlplab sweep report {self.path}"
        return f"mlplab sweep report {self.path} --storage '{_mask(self.storage_url)}'"

    def join_command(self) -> str:
        """The command another machine runs to work on this sweep."""
        if _is_default_sqlite(self.storage_url, self.path):
            return f"mlplab sweep --resume {self.path}"
        return f"mlplab sweep --resume --storage '{_mask(self.storage_url)}' --study {self.name}"


def create_sweep(
    base: Config,
    *,
    space: str | Path | dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | Sequence[str] | None = None,
    seeds: int = 1,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = "sweeps",
    sampler: str = "tpe",
    pruner: str = "median",
    seed: int = 0,
) -> Sweep:
    """Create a sweep (its folder and study) and queue its trials; nothing runs yet.

    Either ``space`` (a search of ``trials`` trials) or ``grid`` (every combination of its
    values, each with ``seeds`` seeds: ``train.seed`` = base seed + 0, 1, ...). ``storage`` is
    an Optuna RDB URL (``postgresql://user@host/db``) shared by several workers; without
    it the study is ``study.db`` (SQLite) in the sweep folder.
    """
    optuna = _optuna()
    base = base.validate()
    if (space is None) == (grid is None):
        raise ConfigError(
            "a sweep takes either a search space (--space FILE) or --grid KEY=V1,V2,..."
        )
    if base.data.val_size == 0:
        raise ConfigError(
            "a sweep selects on the validation split, and data.val_size=0 holds none out; "
            "set --val-size (e.g. 0.1), and --select val_accuracy or val_loss to score the "
            f"best validation epoch (now train.select={base.train.select})"
        )
    _check_choice("sampler", sampler, SAMPLERS)
    _check_choice("pruner", pruner, PRUNERS)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"--seeds must be a whole number >= 1; got {seeds!r}")
    # A trial is never pruned in the first quarter of its epochs: early on, curves of
    # different rates still cross (a slower rate often catches up by then).
    spec: dict[str, Any] = {"format": SPEC_FORMAT, "base_config": base.to_dict(), "sampler": sampler,
                            "pruner": pruner, "pruner_warmup": base.train.epochs // 4, "created": _now()}  # fmt: skip
    queue: list[dict[str, Any]]
    if space is not None:
        params = parse_space(space, base)
        if grid is None and seeds != 1:
            raise ConfigError("--seeds repeats the settings of a --grid; a search draws its own")
        trials = 20 if trials is None else trials
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise ConfigError(f"--trials must be a whole number >= 1; got {trials!r}")
        _check_trials(trials, f"--trials {trials:,}")
        spec.update(kind="search", space={k: p.to_dict() for k, p in params.items()}, trials=trials)
        queue = [{} for _ in range(trials)]
    else:
        if trials is not None:
            raise ConfigError("--trials is for a search; a --grid runs every setting × --seeds")
        values = parse_grid(grid, base) if not isinstance(grid, dict) else {
            k: [_grid_value(base, k, v, f"grid {k}={v}") for v in vs] for k, vs in grid.items()}  # fmt: skip
        for key in values:
            _check_key(key, "grid")
        if "train.seed" in values and seeds > 1:
            raise ConfigError("--grid train.seed=... and --seeds both set the seeds; use one")
        # counted before a single trial is built
        sizes = [len(v) for v in values.values()]
        _check_trials(math.prod(sizes) * seeds, " × ".join(f"{n:,}" for n in [*sizes, seeds])
                      + " (--grid values × --seeds)")  # fmt: skip
        seed_list = (
            [base.train.seed + i for i in range(seeds)] if "train.seed" not in values else []
        )
        combos = [
            dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())
        ]
        queue = [{**c, "train.seed": s} for c in combos for s in seed_list] if seed_list else combos
        spec.update(kind="grid", grid=values, seeds=seed_list, trials=len(queue))
    name = study or f"{time.strftime('%Y%m%d-%H%M%S')}-{base.run.name or 'sweep'}"
    store = _storage(storage) if storage else None  # a bad URL or server: before any folder
    fresh = study is None or not (Path(sweeps_dir) / name).exists()
    path = _new_folder(Path(sweeps_dir), name, fixed=study is not None)
    url = storage or f"sqlite:///{(path / STUDY_DB).resolve()}"
    try:
        with _quiet_optuna():
            store = store or _storage(url)
            created = optuna.create_study(storage=store, study_name=path.name if study is None else name,
                                          direction="maximize")  # fmt: skip
    except BaseException as exc:
        if fresh:  # leave no empty sweep folder behind
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, optuna.exceptions.DuplicatedStudyError):
            raise ConfigError(
                f"a study named '{name}' already exists in {_mask(url)}; join it with "
                f"`mlplab sweep --resume --storage URL --study {name}`, or choose another --study"
            ) from None
        raise
    created.set_user_attr("mlplab", spec)
    for params in queue:
        created.enqueue_trial(params)
    base.save(path / BASE)
    if space is not None:
        write_text_atomic(path / SPACE, yaml.safe_dump(spec["space"], sort_keys=False))
    _write_sweep_json(path, created.study_name, url)
    return Sweep(path, created, url, sampler_seed=seed, storage=store)


def open_sweep(
    path: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = "sweeps",
    join: bool = True,
) -> Sweep:
    """An existing sweep: from its folder (``sweep.json`` says where its study is), or from
    ``storage`` and ``study``: its runs on this machine then go to ``sweeps_dir/<study>``,
    made now unless ``join=False`` (only reading it, as a report does)."""
    optuna = _optuna()
    if path is not None:
        path = Path(path)
        info_file = path / SWEEP_JSON
        if not os.path.lexists(info_file):  # a FIFO or a link there: read_text_file says so
            raise RunError(
                f"{printable(path)} is not a sweep folder (no {SWEEP_JSON}); pass a folder made "
                "by `mlplab sweep`"
                if path.is_dir()
                else f"{printable(path)} is a file, not a sweep folder"
                if os.path.lexists(path)
                else f"sweep folder {printable(path)} does not exist"
            )
        recorded, named = _read_sweep_json(info_file)
        study = study or named
        if storage is None:
            storage = _recorded_storage(path, info_file, recorded)
    elif storage is None:
        raise ConfigError(
            "pass a sweep folder, or --storage URL (and --study NAME) of a shared study"
        )
    store = _storage(storage)
    names = optuna.get_all_study_names(store)
    if study is None:
        if len(names) != 1:
            raise ConfigError(
                f"{_mask(storage)} holds {len(names)} studies; name one with --study NAME"
                f"{': ' + ', '.join(names) if names else ''}"
            )
        study = names[0]
    if study not in names:
        raise ConfigError(
            f"no study '{study}' in {_mask(storage)}{did_you_mean(study, names)}; "
            f"studies there: {', '.join(names) or 'none'}"
        )
    with _quiet_optuna():
        loaded = optuna.load_study(study_name=study, storage=store)
    if path is None:
        if study in (".", "..") or not study.isprintable() or any(c in study for c in "/\\"):
            raise ConfigError(
                f"study name {shown(study)} cannot name a sweep folder (a path, or control "
                "characters); name a study without / or \\ with --study"
            )
        path = Path(sweeps_dir) / study
    if join:
        path.mkdir(parents=True, exist_ok=True)
        if not (path / SWEEP_JSON).is_file():
            _write_sweep_json(path, study, storage)
    result = Sweep(path, loaded, storage, storage=store)
    _ = result.spec  # refuse a study mlplab did not make, now
    return result


def add_trials(sweep: Sweep, n: int) -> None:
    """Queue ``n`` more trials of a search (``mlplab sweep --resume DIR --trials N``)."""
    if sweep.kind != "search":
        raise ConfigError("--trials adds trials to a search; a grid's trials are its settings")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"--trials must be a whole number >= 1; got {n!r}")
    spec = dict(sweep.spec)
    _check_trials(n + len(sweep.trials()), f"{len(sweep.trials()):,} trials + --trials {n:,}")
    spec["trials"] = int(spec.get("trials", 0)) + n
    sweep.study.set_user_attr("mlplab", spec)
    for _ in range(n):
        sweep.study.enqueue_trial({})


# ----- workers ---------------------------------------------------------------------------------
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
    optuna = _optuna()
    spec = sweep.spec
    with _quiet_optuna():
        store = _storage(sweep.storage_url)
        study = optuna.load_study(study_name=sweep.name, storage=store,
                                  sampler=_sampler(spec["sampler"], sweep.sampler_seed),
                                  pruner=_pruner(spec["pruner"] if spec["kind"] == "search" else "none",
                                                 spec.get("pruner_warmup", 0)))  # fmt: skip
    worker = dataclasses.replace(sweep, study=study, storage=store)
    space, base = worker.space(), worker.base_config()  # read once: every trial shares them
    worker.runs_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Dataset] = {}
    finished = []
    while max_trials is None or len(finished) < max_trials:
        claimed = _claim(worker)
        if claimed is None:
            break
        trial, fixed = claimed
        finished.append(
            _run_trial(worker, trial, fixed, base, space, spec, dataset, cache, verbose)
        )
    return finished


def sweep(
    base: Config,
    *,
    space: str | Path | dict[str, Any] | None = None,
    grid: dict[str, list[Any]] | Sequence[str] | None = None,
    seeds: int = 1,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = "sweeps",
    sampler: str = "tpe",
    pruner: str = "median",
    seed: int = 0,
    dataset: Dataset | None = None,
    verbose: bool = False,
) -> Sweep:
    """Create a sweep and work on it here until its queue is empty (see :func:`create_sweep`
    and :func:`run_sweep`); other workers may join it meanwhile."""
    s = create_sweep(base, space=space, grid=grid, seeds=seeds, trials=trials, storage=storage,
                     study=study, sweeps_dir=sweeps_dir, sampler=sampler, pruner=pruner, seed=seed)  # fmt: skip
    logger.info(describe_sweep(s))
    run_sweep(s, dataset=dataset, verbose=verbose)
    return s


def describe_sweep(sweep: Sweep) -> str:
    """A few lines saying what a sweep searches, where it lives and how to join it."""
    spec = sweep.spec
    if spec["kind"] == "search":
        what = f"search of {spec['trials']} trials over " + "; ".join(
            str(p) for p in sweep.space().values()
        )
        what += f" ({spec['sampler']} sampler, {spec['pruner']} pruner)"
    else:
        settings = math.prod(len(v) for v in spec["grid"].values())
        seeds = len(spec.get("seeds") or []) or 1
        what = (f"grid of {settings} settings × {seeds} seed{'s' * (seeds > 1)} = {spec['trials']} runs: "
                + "; ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in spec["grid"].items()))  # fmt: skip
    return (
        f"sweep    {sweep.path}: {what}\n"
        f"study    {sweep.name} in {_mask(sweep.storage_url)}\n"
        f"join     {sweep.join_command()}"
    )


def _claim(sweep: Sweep) -> tuple[optuna.Trial, dict[str, Any]] | None:
    """Take one waiting trial (WAITING -> RUNNING, atomically in the database), or None;
    with the parameters it was queued with."""
    optuna = _optuna()
    storage = _storage(sweep.storage_url) if sweep.storage is None else sweep.storage
    study_id = storage.get_study_id_from_name(sweep.name)
    waiting = (optuna.trial.TrialState.WAITING,)
    with _sqlite_lock(sweep.storage_url):
        for frozen in storage.get_all_trials(study_id, deepcopy=False, states=waiting):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            try:
                if storage.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING):
                    fixed = dict(frozen.system_attrs.get("fixed_params") or {})
                    # the study reads through its own cache of the storage: let it see the claim
                    sweep.study.get_trials(
                        deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
                    )
                    return optuna.Trial(sweep.study, trial_id), fixed
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
    return None


def _run_trial(
    sweep: Sweep,
    trial: optuna.Trial,
    fixed: dict[str, Any],
    base: Config,
    space: dict[str, Param],
    spec: dict[str, Any],
    dataset: Dataset | None,
    cache: dict[str, Dataset],
    verbose: bool,
) -> optuna.trial.FrozenTrial:
    optuna = _optuna()
    State = optuna.trial.TrialState
    started = time.perf_counter()
    if spec["kind"] == "search":
        params = {key: p.suggest(trial) for key, p in space.items()}
    else:  # every parameter is fixed by the queue; suggesting records it with its choices
        choices = {**spec["grid"], "train.seed": spec.get("seeds") or [fixed.get("train.seed")]}
        params = {k: trial.suggest_categorical(k, choices.get(k, [v])) for k, v in fixed.items()}
    trial.set_user_attr("host", platform.node())
    shown = "  ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())
    try:  # a combination the config refuses (nesterov without momentum, ...) fails alone
        config = base.override({**params, "run.dir": str(sweep.runs_dir),
                                "run.name": f"trial-{trial.number:04d}"}, source=f"trial {trial.number}")  # fmt: skip
    except ConfigError as exc:
        return _fail(sweep, trial, str(exc), shown)
    pruned: list[tuple[int, float]] = []  # (epoch, the score that was reported)

    def on_epoch(epoch: Any) -> bool:
        record = epoch.record
        value = record["val_r2"] if "val_r2" in record else record["val_accuracy"]
        if value is None:
            return False
        trial.report(value, record["epoch"])
        if trial.should_prune():
            pruned.append((record["epoch"], value))
            return True
        return False

    try:
        data = dataset or _dataset(config, cache)
        with _training_quiet(verbose):
            result = train(config, dataset=data, on_epoch=on_epoch)
    except (TrainingError, ConfigError) as exc:  # this trial's settings: the sweep goes on
        run = next(iter(sorted(sweep.runs_dir.glob(f"*-trial-{trial.number:04d}*"))), None)
        if run is not None:
            trial.set_user_attr("run_dir", str(run.resolve()))
        return _fail(sweep, trial, str(exc), shown)
    except BaseException as exc:  # Ctrl-C, a data error, a bug: not the trial's fault
        _requeue(
            sweep, trial, params, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        )
        raise
    if result.interrupted:  # Ctrl-C after an epoch: train() kept the run; the trial goes back
        _requeue(sweep, trial, params, "interrupted", str(result.run_dir.resolve()))
        raise KeyboardInterrupt
    summary, history = result.summary, result.history
    regression = "test_r2" in summary
    metric = "val_r2" if regression else "val_accuracy"
    value = (history[summary["best_epoch"] - 1]["val_r2"] if regression
             else summary["best_val_accuracy"])  # fmt: skip
    attrs = {"run_dir": str(result.run_dir.resolve()), "metric": metric,
             "test": summary["test_r2"] if regression else summary["test_accuracy"],
             "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
             "epochs_planned": summary["epochs_planned"], "train_seconds": summary["train_seconds"],
             "seconds": time.perf_counter() - started}  # fmt: skip
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    label = "R²" if regression else "acc"
    if pruned:
        frozen = sweep.study.tell(trial, state=State.PRUNED)
        status = (
            f"pruned at epoch {pruned[0][0]} (val {label} {_fmt_metric(pruned[0][1], regression)})"
        )
    elif value is None or not math.isfinite(value):
        return _fail(sweep, trial, "no validation score", shown)
    else:
        frozen = sweep.study.tell(trial, value)
        status = f"val {label} {_fmt_metric(value, regression)}"
    logger.info(f"trial {trial.number:>4}  {status}  {shown}  "
                f"({summary['epochs_run']} epoch{'s' * (summary['epochs_run'] != 1)}, {attrs['seconds']:.1f}s)")  # fmt: skip
    return frozen


def _fail(sweep: Sweep, trial: optuna.Trial, message: str, shown: str) -> optuna.trial.FrozenTrial:
    trial.set_user_attr("error", message)
    logger.warning(f"trial {trial.number:>4}  failed: {message}  {shown}")
    return sweep.study.tell(trial, state=_optuna().trial.TrialState.FAIL)


def _requeue(sweep: Sweep, trial: optuna.Trial, params: dict[str, Any], why: str,
             run_dir: str | None = None) -> None:  # fmt: skip
    """Mark a trial stopped from outside as failed and queue its parameters again."""
    trial.set_user_attr("error", f"stopped: {why}; queued again")
    if run_dir:
        trial.set_user_attr("run_dir", run_dir)
    sweep.study.tell(trial, state=_optuna().trial.TrialState.FAIL)
    sweep.study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
    logger.warning(
        f"trial {trial.number:>4}  stopped ({why}); queued again with the same parameters"
    )


def _dataset(config: Config, cache: dict[str, Dataset]) -> Dataset:
    """The trial's dataset, loaded once per worker (keys that do not change loading aside)."""
    data = config.to_dict()["data"]
    key = json.dumps({k: v for k, v in data.items() if k not in ("val_size", "limit", "normalize")},
                     sort_keys=True)  # fmt: skip
    if key not in cache:
        cache[key] = load_configured(config.data)
    return cache[key]


# ----- helpers ---------------------------------------------------------------------------------
def _optuna() -> Any:
    return require("optuna", "sweep", "mlplab sweep")


def _storage(url: str) -> Any:
    """An Optuna RDB storage for ``url``, with one-line errors for a bad URL or server."""
    optuna = _optuna()
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"--storage '{url}' is not a database URL; use e.g. postgresql://user@host:5432/db "
            "or sqlite:///path/study.db"
        ) from None
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the sweep extra brings
        # psycopg2: use whichever driver is installed.
        driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    if parsed.drivername == "postgresql+psycopg2":
        require("psycopg2", "sweep", "a PostgreSQL sweep storage")
    sqlite = parsed.drivername.startswith("sqlite")
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        with _quiet_optuna():
            return optuna.storages.RDBStorage(parsed.render_as_string(hide_password=False),
                                              engine_kwargs=engine)  # fmt: skip
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ConfigError(
            f"cannot open sweep storage {_mask(url)}: {first[0] if first else type(exc).__name__}; "
            "check the URL, that the server runs and that the database exists"
        ) from None


def _sampler(name: str, seed: int | None) -> Any:
    samplers = _optuna().samplers
    return samplers.RandomSampler(seed=seed) if name == "random" else samplers.TPESampler(seed=seed)


def _pruner(name: str, warmup: int = 0) -> Any:
    """Optuna's MedianPruner: stop a trial whose score at an epoch is below the median of
    earlier trials' at that epoch, once 5 trials finished and past ``warmup`` epochs."""
    pruners = _optuna().pruners
    if name == "none":
        return pruners.NopPruner()
    return pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


def _check_trials(total: int, how: str) -> None:
    """Refuse a sweep of more than MAX_TRIALS trials, before any is made."""
    if total > MAX_TRIALS:
        raise ConfigError(
            f"a sweep queues at most {MAX_TRIALS:,} trials; {how} makes {total:,}: "
            "use fewer values or seeds (or split it into several sweeps)"
        )


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"--{what} must be one of {', '.join(choices)}; got '{value}'{did_you_mean(value, choices)}"
        )


def _new_folder(root: Path, name: str, fixed: bool) -> Path:
    """A new sweep folder (``-2``, ``-3`` ... when the stamped name is taken); a named
    study's folder may exist already (other workers on this machine made it)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        if fixed:
            (root / name).mkdir(exist_ok=True)
            return root / name
        for attempt in range(1, 1000):
            path = root / (name if attempt == 1 else f"{name}-{attempt}")
            with contextlib.suppress(FileExistsError):
                path.mkdir()
                return path
    except OSError as exc:
        raise RunError(f"cannot create sweep folder under {root}: {exc.strerror}") from None
    raise RunError(f"cannot find a free sweep folder name under {root} for '{name}'")


def _read_sweep_json(info_file: Path) -> tuple[str, str]:
    """The storage and study that a sweep folder's ``sweep.json`` records (bounded read: a
    sweep folder is shared like a run directory, and its files are input)."""
    text = read_text_file(info_file, MAX_SWEEP_JSON, "sweep description", error=RunError,
                          hint="a sweep.json is a few lines written by `mlplab sweep`")  # fmt: skip
    try:
        info = json.loads(text)
        recorded, study = info["storage"], info["study"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(
            f"{printable(info_file)}: not a sweep description ({type(exc).__name__}: "
            f"{shown(str(exc))})"
        ) from None
    for field, value in (("storage", recorded), ("study", study)):
        if not isinstance(value, str) or not value:
            raise RunError(
                f"{printable(info_file)}: not a sweep description ('{field}' must be a "
                f"non-empty string; got {shown(value)})"
            )
    return recorded, study


def _recorded_storage(path: Path, info_file: Path, recorded: str) -> str:
    """The storage URL to open for a sweep folder whose ``sweep.json`` records ``recorded``.

    Only the folder's own SQLite file is taken from the file, and only when it is there: any
    other URL (a SQLite file elsewhere, a server) would make mlplab create a database at a
    path, or connect to a server, that the user never named; they pass it with --storage.
    """
    own = path / STUDY_DB
    if recorded in (STUDY_DB, f"sqlite:///{own.resolve()}"):
        try:
            info = own.lstat()  # not followed: a link named study.db may point anywhere
        except OSError:
            raise RunError(
                f"{printable(path)}: the sweep's study {STUDY_DB} is missing; copy the whole "
                "sweep folder, or pass the study's --storage URL"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise RunError(
                f"{printable(own)}: not a regular file (a link, a FIFO, a folder); a sweep's "
                f"{STUDY_DB} is the SQLite file `mlplab sweep` made: copy the real file there"
            )
        try:
            with open_regular(own) as f:  # swapped for a FIFO since the check: refused, unblocked
                header = f.read(16)
        except (FormatError, OSError) as exc:
            raise RunError(f"cannot read the sweep's study: {exc}") from None
        if header != b"SQLite format 3\x00":
            raise RunError(f"{printable(own)}: not a SQLite database (the sweep's study)")
        return f"sqlite:///{own.resolve()}"
    url = printable(_mask(recorded[:2000]))  # a URL is short; a planted one is cut, not echoed
    shown_url = url if len(url) <= 300 else url[:297] + "..."
    raise ConfigError(
        f"{printable(info_file)} records the storage {shown_url}, not the sweep folder's own "
        f"{STUDY_DB}; mlplab opens another database only when you name it: pass it with "
        "--storage URL (with its password, if it has one)"
    )


def _write_sweep_json(path: Path, study: str, url: str) -> None:
    stored = STUDY_DB if _is_default_sqlite(url, path) else _mask(url)
    info = {"study": study, "storage": stored, "created": _now()}
    write_text_atomic(path / SWEEP_JSON, json.dumps(info, indent=2) + "\n")


def _is_default_sqlite(url: str, path: Path) -> bool:
    return url == f"sqlite:///{(path / STUDY_DB).resolve()}"


def _mask(url: str) -> str:
    """The URL with its password hidden (for logs, messages and sweep.json)."""
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _fmt_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _fmt_metric(value: float | None, regression: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if regression else f"{value:.2%}"


@contextlib.contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    """Claims on SQLite are made one process at a time with a lock file beside the
    database: SQLite has no row locks, so two processes could otherwise claim the same
    trial (PostgreSQL's SELECT ... FOR UPDATE needs no help)."""
    if not url.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: one worker per SQLite sweep
        yield
        return
    lock = url[len("sqlite:///") :] + ".lock"
    # A sweep folder is shared: a link named study.db.lock is not followed (it would create
    # or touch a file elsewhere) and a FIFO is not waited on (O_NONBLOCK: ENXIO, no reader).
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock, flags, 0o644)
    except OSError as exc:
        raise RunError(f"cannot open the sweep's lock file {printable(lock)}: "
                       f"{exc.strerror or exc}") from None  # fmt: skip
    with os.fdopen(fd, "w") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{printable(lock)}: not a regular file; remove it (the sweep's lock)")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _training_quiet(verbose: bool) -> Iterator[None]:
    """Keep a trial's training lines off the caller's handlers (its train.log has them)."""
    if verbose:
        yield
        return
    handlers = [*logger.handlers, *logging.getLogger().handlers]
    quiet = _WarningsOnly()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna announces each study it creates or loads at INFO; mlplab says it once itself."""
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        optuna_logger.setLevel(level)
