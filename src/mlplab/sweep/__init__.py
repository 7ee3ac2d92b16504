"""Sweeps: Optuna studies over config keys, and ablations (a grid of settings × seeds).

The package, in the order a sweep happens:

- :mod:`.space`    what varies: search spaces (``--space FILE``) and grids (``--grid``), checked
  key by key against the base config;
- :mod:`.folders`  the sweep itself: its folder (``study.db``, ``sweep.json``, ``base.yaml``,
  ``runs/``) and study, every trial queued up front (:func:`create_sweep`), opened again
  from the folder or a shared database (:func:`open_sweep`, :func:`resume_sweep`);
- :mod:`.study`    where the study is stored: SQLite in the folder or a ``--storage`` URL
  shared by several machines, passwords hidden, claims on SQLite locked;
- :mod:`.worker`   a worker: claim a waiting trial, train it as an ordinary run, record its
  validation score (:func:`run_sweep`; :func:`sweep` creates and runs);
- :mod:`.report`   the report, from the study alone (tables, importance, best.yaml, ablation).
"""

from .folders import (
    BASE,
    MAX_TRIALS,
    RUNS,
    SPACE,
    SWEEP_JSON,
    Sweep,
    add_trials,
    create_sweep,
    describe_sweep,
    open_sweep,
    resume_sweep,
)
from .space import Param, parse_grid, parse_space
from .study import PRUNERS, SAMPLERS, STUDY_DB
from .worker import run_sweep, sweep

__all__ = [
    "BASE",
    "MAX_TRIALS",
    "PRUNERS",
    "RUNS",
    "SAMPLERS",
    "SPACE",
    "STUDY_DB",
    "SWEEP_JSON",
    "Param",
    "Sweep",
    "add_trials",
    "create_sweep",
    "describe_sweep",
    "open_sweep",
    "parse_grid",
    "parse_space",
    "resume_sweep",
    "run_sweep",
    "sweep",
]
