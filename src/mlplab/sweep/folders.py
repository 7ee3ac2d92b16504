"""A sweep is a folder, ``runs/sweeps/<YYYYmmdd-HHMMSS>-<name>/``, and an Optuna study:

- ``study.db``    the Optuna study (SQLite), unless ``storage`` names another database
- ``sweep.json``  the study's name and storage (password hidden)
- ``base.yaml``   the config every trial starts from (``space.yaml``: the search space)
- ``runs/``       one ordinary run directory per trial (``<stamp>-trial-0007``)

:func:`create_sweep` makes both and queues every trial up front, as a WAITING trial of the
study: a search's without parameters (the sampler draws them when the trial starts, from the
results so far), a grid's with all of them. (Optuna's GridSampler is not used for grids: its
own docs say that concurrent workers occasionally run the same grid point twice, and it has
no notion of repeating a setting over seeds.) What the sweep is (kind, base config, space or
grid, seeds) is kept in the study itself, so any worker and any report can read it.
:func:`open_sweep` and :func:`resume_sweep` open an existing sweep; :mod:`.worker` runs its
trials.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..config import Config, dump_yaml
from ..errors import ConfigError, RunError, did_you_mean
from ..files.atomic import write_text_atomic
from ..files.limits import printable, read_text_file, shown
from ..run.outputs import SWEEPS, sweep_folder
from .space import Param, grid_values, parse_space
from .study import (
    PRUNERS,
    SAMPLERS,
    STUDY_DB,
    folder_storage,
    is_folder_storage,
    load_optuna,
    mask_url,
    open_storage,
    own_storage,
    quiet_optuna,
)

if TYPE_CHECKING:
    import optuna

__all__ = [
    "BASE",
    "MAX_TRIALS",
    "RUNS",
    "SPACE",
    "SWEEP_JSON",
    "Sweep",
    "add_trials",
    "create_sweep",
    "describe_sweep",
    "open_sweep",
    "resume_sweep",
]

SPEC_FORMAT = "mlplab-sweep-1"
SWEEP_JSON, BASE, SPACE, RUNS = ("sweep.json", "base.yaml", "space.yaml", "runs")
# The most trials one sweep queues: each is a row of the study, made up front, and a grid of
# a few keys × --seeds multiplies fast (--seeds 1000000000 took 13 GB before this cap).
MAX_TRIALS = 100_000
MAX_SWEEP_JSON = 64 * 1024  # bytes: sweep.json holds a study name and a URL
DEFAULT_TRIALS = 20  # a search's trials unless told
# Options named on the command line that only add trials to a sweep being resumed; any other
# recipe or new-sweep option given with --resume would change the sweep's recipe.
RESUME_FLAGS = ("--resume", "--trials")


@dataclass
class Sweep:
    """A sweep: its local folder (runs and reports go there) and its Optuna study."""

    path: Path
    study: optuna.Study
    storage_url: str
    sampler_seed: int | None = None  # the creating process samples reproducibly; joiners not
    storage: optuna.storages.RDBStorage | None = None  # the open storage behind ``study``

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
                f"study '{self.name}' in {mask_url(self.storage_url)} was not made by `mlplab sweep`"
            )
        return spec

    @property
    def kind(self) -> str:
        return self.spec["kind"]

    def base_config(self) -> Config:
        return Config.from_dict(self.spec["base_config"], source=f"study '{self.name}'")

    def space(self) -> dict[str, Param]:
        if self.kind != "search":
            return {}
        return parse_space(self.spec.get("space") or {}, self.base_config())

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
        if is_folder_storage(self.storage_url, self.path):
            return f"mlplab sweep report {self.path}"
        return f"mlplab sweep report {self.path} --storage '{mask_url(self.storage_url)}'"

    def join_command(self) -> str:
        """The command another machine runs to work on this sweep."""
        if is_folder_storage(self.storage_url, self.path):
            return f"mlplab sweep --resume {self.path}"
        return f"mlplab sweep --resume --storage '{mask_url(self.storage_url)}' --study {self.name}"


# ----- a new sweep -------------------------------------------------------------------------------
def create_sweep(
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
    flags: Sequence[str] = (),
) -> Sweep:
    """Create a sweep (its folder and study) and queue its trials; nothing runs yet.

    Either ``space`` (a search of ``trials`` trials, default 20) or ``grid`` (every
    combination of its values, each with ``seeds`` seeds: ``train.seed`` = base seed + 0,
    1, ...). ``storage`` is an Optuna RDB URL (``postgresql://user@host/db``) shared by
    several workers; without it the study is ``study.db`` (SQLite) in the sweep folder.
    ``None`` for ``seeds``, ``sampler``, ``pruner`` or ``seed`` means its default. ``flags``:
    the other command-line options given (by name, as ``--out``), see :func:`check_flags`.
    """
    check_flags(flags, resume=False)
    optuna = load_optuna()
    base = base.validate()
    spec, queue = _plan(
        base,
        space,
        grid,
        seeds=1 if seeds is None else seeds,
        trials=trials,
        sampler="tpe" if sampler is None else sampler,
        pruner="median" if pruner is None else pruner,
    )
    name = study or f"{time.strftime('%Y%m%d-%H%M%S')}-{base.run.name or 'sweep'}"
    path, created, url, store = _new_study(optuna, name, storage, study, Path(sweeps_dir))
    created.set_user_attr("mlplab", spec)
    for params in queue:
        created.enqueue_trial(params)
    base.save(path / BASE)
    if spec["kind"] == "search":
        write_text_atomic(path / SPACE, dump_yaml(spec["space"]))
    _write_sweep_json(path, created.study_name, url)
    return Sweep(path, created, url, sampler_seed=0 if seed is None else seed, storage=store)


def _plan(
    base: Config,
    space: str | Path | dict[str, Any] | None,
    grid: dict[str, list[Any]] | Sequence[str] | None,
    *,
    seeds: int,
    trials: int | None,
    sampler: str,
    pruner: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What the sweep is (the spec its study keeps) and the parameters of each trial to
    queue (a search's are empty: the sampler draws them), all checked before anything is made."""
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
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "base_config": base.to_dict(),
        "sampler": sampler,
        "pruner": pruner,
        # A trial is never pruned in the first quarter of its epochs: early on, curves of
        # different rates still cross (a slower rate often catches up by then).
        "pruner_warmup": base.train.epochs // 4,
        "created": _now(),
    }
    if space is not None:
        what, queue = _search(base, space, seeds, trials)
    else:  # grid is given (checked above)
        what, queue = _grid(base, grid or {}, seeds, trials)
    return {**spec, **what}, queue


def _search(
    base: Config, space: str | Path | dict[str, Any], seeds: int, trials: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    params = parse_space(space, base)
    if seeds != 1:
        raise ConfigError("--seeds repeats the settings of a --grid; a search draws its own")
    trials = DEFAULT_TRIALS if trials is None else trials
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ConfigError(f"--trials must be a whole number >= 1; got {trials!r}")
    _check_trials(trials, f"--trials {trials:,}")
    what = {"kind": "search", "space": {k: p.to_dict() for k, p in params.items()}}
    return {**what, "trials": trials}, [{} for _ in range(trials)]


def _grid(
    base: Config, grid: dict[str, list[Any]] | Sequence[str], seeds: int, trials: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if trials is not None:
        raise ConfigError("--trials is for a search; a --grid runs every setting × --seeds")
    values = grid_values(grid, base)
    if "train.seed" in values and seeds > 1:
        raise ConfigError("--grid train.seed=... and --seeds both set the seeds; use one")
    # counted before a single trial is built
    sizes = [len(v) for v in values.values()]
    how = " × ".join(f"{n:,}" for n in [*sizes, seeds]) + " (--grid values × --seeds)"
    _check_trials(math.prod(sizes) * seeds, how)
    seed_list = [] if "train.seed" in values else [base.train.seed + i for i in range(seeds)]
    combos = [dict(zip(values, c, strict=True)) for c in itertools.product(*values.values())]
    queue = [{**c, "train.seed": s} for c in combos for s in seed_list] if seed_list else combos
    return {"kind": "grid", "grid": values, "seeds": seed_list, "trials": len(queue)}, queue


def _new_study(
    optuna: ModuleType, name: str, storage: str | None, study: str | None, sweeps_dir: Path
) -> tuple[Path, optuna.Study, str, optuna.storages.RDBStorage]:
    """The sweep's folder and its new, empty study: (folder, study, storage URL, storage).
    A folder made here is removed again if the study cannot be made."""
    store = open_storage(storage) if storage else None  # a bad URL or server: before any folder
    fresh = study is None or not (sweeps_dir / name).exists()
    path = _new_folder(sweeps_dir, name, fixed=study is not None)
    url = storage or own_storage(path)
    try:
        with quiet_optuna():
            store = store or open_storage(url)
            created = optuna.create_study(
                storage=store,
                study_name=path.name if study is None else name,
                direction="maximize",
            )
    except BaseException as exc:
        if fresh:  # leave no empty sweep folder behind
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, optuna.exceptions.DuplicatedStudyError):
            raise ConfigError(
                f"a study named '{name}' already exists in {mask_url(url)}; join it with "
                f"`mlplab sweep --resume --storage URL --study {name}`, or choose another --study"
            ) from None
        raise
    return path, created, url, store


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


# ----- an existing sweep -------------------------------------------------------------------------
def open_sweep(
    path: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = SWEEPS,
    join: bool = True,
) -> Sweep:
    """An existing sweep: from its folder (``sweep.json`` says where its study is), or from
    ``storage`` and ``study``: its runs on this machine then go to ``sweeps_dir/<study>``,
    made now unless ``join=False`` (only reading it, as a report does)."""
    optuna = load_optuna()
    if path is not None:
        path = Path(path)
        recorded, named = _read_sweep_json(path)
        study = study or named
        if storage is None:
            storage = folder_storage(path, path / SWEEP_JSON, recorded)
    elif storage is None:
        raise ConfigError(
            "pass a sweep folder, or --storage URL (and --study NAME) of a shared study"
        )
    store = open_storage(storage)
    study = _study_name(optuna, store, storage, study)
    with quiet_optuna():
        loaded = optuna.load_study(study_name=study, storage=store)
    if path is None:
        path = sweep_folder(sweeps_dir, _folder_name(study))  # or an earlier ./sweeps/ one
    if join:
        path.mkdir(parents=True, exist_ok=True)
        if not (path / SWEEP_JSON).is_file():
            _write_sweep_json(path, study, storage)
    result = Sweep(path, loaded, storage, storage=store)
    _ = result.spec  # refuse a study mlplab did not make, now
    return result


def resume_sweep(
    path: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    sweeps_dir: str | Path = SWEEPS,
    trials: int | None = None,
    flags: Sequence[str] = (),
) -> Sweep:
    """An existing sweep to work on (``mlplab sweep --resume``), from its folder or from
    ``storage`` and ``study`` (see :func:`open_sweep`), with ``trials`` more trials queued
    if it is a search. Its recipe is kept in its study: ``flags`` (the other command-line
    options given, by name) may only be --trials and --resume (:func:`check_flags`)."""
    check_flags(flags, resume=True)
    sweep = open_sweep(path, storage=storage, study=study, sweeps_dir=sweeps_dir)
    if trials is not None:
        add_trials(sweep, trials)
    return sweep


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


def describe_sweep(sweep: Sweep) -> str:
    """A few lines saying what a sweep searches, where it lives and how to join it."""
    spec = sweep.spec
    if spec["kind"] == "search":
        ranges = "; ".join(str(p) for p in sweep.space().values())
        what = f"search of {spec['trials']} trials over {ranges}"
        what += f" ({spec['sampler']} sampler, {spec['pruner']} pruner)"
    else:
        settings = math.prod(len(v) for v in spec["grid"].values())
        seeds = len(spec.get("seeds") or []) or 1
        values = "; ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in spec["grid"].items())
        what = (
            f"grid of {settings} settings × {seeds} seed{'s' * (seeds > 1)} = "
            f"{spec['trials']} runs: {values}"
        )
    return (
        f"sweep    {sweep.path}: {what}\n"
        f"study    {sweep.name} in {mask_url(sweep.storage_url)}\n"
        f"join     {sweep.join_command()}"
    )


def _study_name(
    optuna: ModuleType, store: optuna.storages.RDBStorage, storage: str, study: str | None
) -> str:
    """The study to open in ``storage``: the one named, or the only one there."""
    names = optuna.get_all_study_names(store)
    if study is None:
        if len(names) != 1:
            raise ConfigError(
                f"{mask_url(storage)} holds {len(names)} studies; name one with --study NAME"
                f"{': ' + ', '.join(names) if names else ''}"
            )
        study = names[0]
    if study not in names:
        raise ConfigError(
            f"no study '{study}' in {mask_url(storage)}{did_you_mean(study, names)}; "
            f"studies there: {', '.join(names) or 'none'}"
        )
    return study


def _folder_name(study: str) -> str:
    """A study name (read from a database: input) as this machine's sweep folder name."""
    if study in (".", "..") or not study.isprintable() or any(c in study for c in "/\\"):
        raise ConfigError(
            f"study name {shown(study)} cannot name a sweep folder (a path, or control "
            "characters); name a study without / or \\ with --study"
        )
    return study


# ----- sweep.json --------------------------------------------------------------------------------
def _read_sweep_json(path: Path) -> tuple[str, str]:
    """The storage and study that a sweep folder's ``sweep.json`` records (bounded read: a
    sweep folder is shared like a run directory, and its files are input)."""
    info_file = path / SWEEP_JSON
    if not os.path.lexists(info_file):  # a FIFO or a link there: read_text_file says so
        if path.is_dir():
            raise RunError(
                f"{printable(path)} is not a sweep folder (no {SWEEP_JSON}); pass a folder "
                "made by `mlplab sweep`"
            )
        if os.path.lexists(path):
            raise RunError(f"{printable(path)} is a file, not a sweep folder")
        raise RunError(f"sweep folder {printable(path)} does not exist")
    hint = "a sweep.json is a few lines written by `mlplab sweep`"
    text = read_text_file(info_file, MAX_SWEEP_JSON, "sweep description", error=RunError, hint=hint)
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


def _write_sweep_json(path: Path, study: str, url: str) -> None:
    stored = STUDY_DB if is_folder_storage(url, path) else mask_url(url)
    info = {"study": study, "storage": stored, "created": _now()}
    write_text_atomic(path / SWEEP_JSON, json.dumps(info, indent=2) + "\n")


# ----- checks ------------------------------------------------------------------------------------
def check_flags(flags: Sequence[str], *, resume: bool) -> None:
    """Refuse command-line options that do not go with making (or, ``resume``, joining) a
    sweep: ``flags`` names the options given beside the call's own arguments (the recipe's,
    such as --lr or --preset, and --space, --grid, --seeds, --sampler, --pruner,
    --sampler-seed, --trials, --resume, --out), in the order the message lists them."""
    if "--out" in flags:
        raise ConfigError(
            "--out goes with `mlplab sweep report`; a sweep's runs go into its folder under "
            "--sweeps-dir"
        )
    if "--runs-dir" in flags:
        raise ConfigError(
            "--runs-dir: a sweep keeps its trials' runs in its own folder (SWEEP/runs); "
            "choose where sweep folders go with --sweeps-dir"
        )
    changes = [flag for flag in flags if flag not in RESUME_FLAGS]
    if resume and changes:
        raise ConfigError(
            f"--resume works on the sweep's own recipe (kept in its study); "
            f"{', '.join(changes)} would change it (only --trials N, to queue N more trials "
            "of a search, goes with --resume)"
        )


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
            f"--{what} must be one of {', '.join(choices)}; got '{value}'"
            f"{did_you_mean(value, choices)}"
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
