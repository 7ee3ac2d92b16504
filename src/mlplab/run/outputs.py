"""Where mlplab writes when not told: one output root, ``runs/``, for everything it makes.

A user git-ignores (or deletes, or backs up) one folder. ``--out`` (``--sweeps-dir`` for
sweeps, ``--runs-dir`` for runs) puts any of them elsewhere.

==========================  ==============================================  ============
what                        where                                           earlier
==========================  ==============================================  ============
a run                       ``runs/<stamp>-<name>/``                        same
``mlplab compare``          ``runs/compare/compare.html`` (+ figures/)      ``compare/``
``mlplab explore NAME``     ``runs/explore-<name>/explore.html``            ``explore-<name>/``
``mlplab lr-find``          ``runs/lr_find.png`` + ``runs/lr_find.json``    ``./lr_find.*``
``mlplab explain``          ``runs/explain/`` (PNGs + explanations.json)    new
a sweep                     ``runs/sweeps/<sweep>/`` (its trials in runs/)  ``sweeps/``
==========================  ==============================================  ============

Nothing that was written to an old place is moved or lost: a sweep is addressed by its
folder's path, which keeps working; a shared study joined again (``--storage``/``--study``)
goes on in ``sweeps/<study>`` when that folder exists (:func:`sweep_folder`), and plain
``mlplab runs`` still lists the trials in ``sweeps/``. Runs stay directly in ``runs/``, and
``mlplab runs`` tells a run by its ``config.yaml``, so the other outputs there are not rows.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig

__all__ = [
    "COMPARE",
    "EXPLAIN",
    "LR_FIND",
    "OLD_SWEEPS",
    "ROOT",
    "SWEEPS",
    "explore_folder",
    "sweep_folder",
]

ROOT = Path(RunConfig().dir)  # runs: the default of run.dir (--runs-dir)
COMPARE = ROOT / "compare"  # compare.html and its figures/
EXPLAIN = ROOT / "explain"  # mlplab explain: the PNGs and explanations.json
LR_FIND = ROOT / "lr_find.png"  # the plot; its numbers beside it, lr_find.json
SWEEPS = ROOT / "sweeps"  # a folder per sweep, its trials' runs in SWEEP/runs/
OLD_SWEEPS = Path("sweeps")  # where sweeps went before: still read (see the docstring)


def explore_folder(name: str) -> Path:
    """``runs/explore-<name>``, each character of the name but letters, digits and ``-_.``
    made a ``-`` (``a/b c`` -> ``a-b-c``)."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name) or "dataset"
    return ROOT / f"explore-{slug}"


def sweep_folder(sweeps_dir: str | Path, name: str) -> Path:
    """The folder of sweep ``name`` under ``sweeps_dir``; for the default ``runs/sweeps``,
    an existing ``sweeps/<name>`` of an earlier mlplab, so a study goes on where it was."""
    folder = Path(sweeps_dir) / name
    old = OLD_SWEEPS / name
    if Path(sweeps_dir) == SWEEPS and not folder.exists() and old.is_dir():
        return old
    return folder
