"""The runs table: every run directory under a folder, one row each, from its files alone.

``list_runs("runs")`` finds run directories (folders holding a ``config.yaml``: the folder
itself, and up to four levels below it, so ``mlplab runs sweeps`` shows every
trial) and reads each one's ``config.yaml``, ``summary.json``, ``metrics.jsonl`` and
``model.json``. Nothing is loaded onto a device and no data is read, so listing is quick.
``list_runs()`` (plain ``mlplab runs``) lists ``runs/``, the trials of its sweeps
(``runs/sweeps/<sweep>/runs/``) among them, and those of an earlier mlplab's ``sweeps/``
(:mod:`.outputs`): a trial is a run like any other, and a user looking for "my runs" means
those too. A trial's row names its sweep (``sweep``) and the table shows it at its real
path, ``runs/sweeps/<sweep>/runs/<stamp>-trial-0002``, so it reads as part of that sweep.
A ``--dry-run`` run (a few batches: its numbers mean nothing) is listed, marked
``finished (dry run)`` in the table and ``"dry_run": true`` in the JSON.

A row's ``status`` is ``finished`` (a summary, not interrupted), ``interrupted`` (Ctrl-C
after an epoch, or stopped without a summary but with epochs written: resumable),
``empty`` (no epoch finished) or ``unreadable`` (a damaged file; its ``problem`` says
which): a half-written run is a row, never a crash. Regression runs show R² where
classification runs show accuracy.

Run folders may come from others: the run readers bound and check every file (see
:mod:`mlplab.run.directory`), one bad run is one ``unreadable`` row and never stops the listing, the
search does not follow links to folders (a link to ``/`` is not searched; a link that is
itself a run directory is listed), and the text table escapes control characters in names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import selection_score
from ..errors import ConfigError, RunError, did_you_mean
from ..files.atomic import describe
from ..files.limits import printable
from ..model.mlp import alignment, input_features
from ..tables import format_table
from .directory import CONFIG, MODEL, Run
from .outputs import OLD_SWEEPS, ROOT

__all__ = [
    "COLUMNS",
    "RunRow",
    "filter_runs",
    "list_runs",
    "read_row",
    "runs_table",
    "sort_runs",
    "to_json",
]

STATUSES = ("finished", "interrupted", "empty", "unreadable")
COLUMNS = ("date", "name", "dataset", "architecture", "epochs", "val", "test", "time", "status")
FIELDS = ("path", *COLUMNS, "task", "parameters", "sweep")  # what --filter may match
MAX_DEPTH = 4  # levels below the folder given that are searched (sweeps/SWEEP/runs/RUN)
# what makes a folder a sweep, and its trials' folder (mlplab.sweep.folders' SWEEP_JSON and
# RUNS; sweep/ sits above run/, and tests/run/test_table.py checks the two agree)
SWEEP_JSON, TRIALS = "sweep.json", "runs"
STAMP = re.compile(r"^(\d{8})-(\d{6})")


@dataclass(frozen=True)
class RunRow:
    """One run directory, summarized. Scores are fractions (accuracy) or R² values."""

    path: str
    date: str  # YYYY-mm-dd HH:MM:SS from the folder's stamp (else the config's mtime)
    name: str  # run.name from the config (else the folder's name after its stamp)
    dataset: str
    architecture: str  # e.g. 64-16-10 relu (from model.json; the config's widths before one)
    task: str  # classification or regression
    epochs_run: int
    epochs_planned: int | None
    val: float | None  # kept epoch's validation accuracy (R² for a regression)
    test: float | None  # test accuracy (R²)
    seconds: float | None  # training time
    status: str
    parameters: int | None = None
    problem: str = ""  # why a row is unreadable
    sweep: str = ""  # the sweep folder when the run is one of its trials (SWEEP/runs/RUN)
    dry_run: bool = False  # trained with train.dry_run: a few batches, numbers meaningless

    @property
    def epochs(self) -> str:
        return f"{self.epochs_run}/{self.epochs_planned if self.epochs_planned else '?'}"

    def cells(self) -> dict[str, str]:
        """The row as the table shows it (control characters in names escaped)."""
        return {
            "date": self.date,
            "name": printable(self.name or "-"),
            "dataset": printable(self.dataset or "-"),
            "architecture": printable(self.architecture or "-"),
            "epochs": self.epochs,
            "val": self._score(self.val),
            "test": self._score(self.test),
            "time": self._time(),
            "status": self.status
            + (f" ({printable(self.problem)})" if self.problem else "")
            + (" (dry run)" if self.dry_run else ""),
        }

    def _time(self) -> str:
        if self.seconds is None:
            return "-"
        return f"{self.seconds:.{2 if self.seconds < 10 else 1}f}s"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _score(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"R² {value:.4f}" if self.task == "regression" else f"{value:.2%}"


def list_runs(root: str | Path | None = None) -> list[RunRow]:
    """Every run directory at or under ``root`` (up to four levels down), oldest first;
    with no ``root``, those of ``runs/`` (its sweeps' trials too) and of an earlier
    mlplab's ``sweeps/`` (each folder when it exists; both missing is ``runs/``'s error).

    Links to folders are not searched through (a link to ``/`` would walk the whole
    machine), though one that is itself a run directory is listed; a folder that cannot
    be read is skipped.
    """
    if root is None:
        roots = [ROOT] if ROOT.is_dir() or not OLD_SWEEPS.is_dir() else []
        roots += [OLD_SWEEPS] if OLD_SWEEPS.is_dir() else []
        rows = [row for folder in roots for row in list_runs(folder)]
        return sorted(rows, key=lambda r: (r.date, r.path))
    root = Path(root)
    if not root.is_dir():
        what = (
            "does not exist" if not os.path.lexists(root) else f"is {describe(root)}, not a folder"
        )
        raise RunError(
            f"runs folder {printable(root)} {what}; pass a folder holding run directories"
        )
    found = [root] if _is_run(root) else []
    level = [root] if not found else []
    for _ in range(MAX_DEPTH):
        children = [c for d in level for c in _folders(d)]
        found += [c for c in children if _is_run(c)]
        level = [c for c in children if not _is_run(c) and not c.is_symlink()]
    return sorted((read_row(p) for p in found), key=lambda r: (r.date, r.path))


def _is_run(path: Path) -> bool:
    """A folder holding a config.yaml (whatever it is: its reader says what is wrong)."""
    return os.path.lexists(path / CONFIG)


def _folders(path: Path) -> list[Path]:
    """The folders in ``path``, sorted; none when it cannot be read."""
    try:
        return sorted(c for c in path.iterdir() if c.is_dir())
    except OSError:  # permissions, a folder removed meanwhile: not a reason to stop listing
        return []


def read_row(path: Path) -> RunRow:
    """One run directory as a row; any damaged file makes an ``unreadable`` row."""
    date = _date(path)
    try:
        return _read(path, date)
    # The readers turn what they find wrong into RunError/ConfigError; anything else from a
    # folder someone else wrote still makes one unreadable row, never a failed listing.
    except Exception as exc:
        problem = _why(exc, path)
        return RunRow(
            path=str(path),
            date=date,
            name=_folder_name(path),
            dataset="",
            architecture="",
            task="",
            epochs_run=0,
            epochs_planned=None,
            val=None,
            test=None,
            seconds=None,
            status="unreadable",
            problem=problem,
            sweep=_sweep_of(path),
        )


def _read(path: Path, date: str) -> RunRow:
    run = Run(path)
    config = run.config()
    summary, history = run.summary(), run.metrics()
    info = run.model_info() if os.path.lexists(path / MODEL) else None
    regression = "test_r2" in summary or (bool(history) and "val_r2" in history[0])
    if info is not None:
        spec = info["model"]
        features = input_features(spec["input_shape"], spec.get("crop", 0))
        widths = [features, *spec["hidden"], spec["classes"]]
        aligned = alignment(bool(spec.get("deskew")), bool(spec.get("center")), spec.get("tta", []))
        architecture = " ".join(
            ["-".join(map(str, widths)), spec.get("activation", "relu"), *aligned]
        )
    else:  # no model.json yet: what the config asked for, widths unknown
        m = config.model
        widths = ["?", *m.hidden, "?"]
        architecture = " ".join(
            ["-".join(map(str, widths)), m.activation, *alignment(m.deskew, m.center, m.tta)]
        )
    dataset = summary.get("dataset") or _dataset_name(run) or config.data.dataset
    best = summary.get("best_epoch") or _best_epoch(history, config.train.select)
    kept = history[best - 1] if best and best <= len(history) else {}
    val = kept.get("val_r2" if regression else "val_accuracy")
    test = summary.get("test_r2" if regression else "test_accuracy")
    seconds = summary.get("train_seconds")
    if seconds is None and history:
        seconds = sum(r.get("epoch_seconds") or 0.0 for r in history)
    if summary:
        status = "interrupted" if summary.get("interrupted") else "finished"
    else:
        status = "interrupted" if history else "empty"
    return RunRow(
        path=str(path),
        date=date,
        name=config.run.name or _folder_name(path),
        dataset=dataset,
        architecture=architecture,
        task="regression" if regression else "classification",
        epochs_run=len(history),
        epochs_planned=summary.get("epochs_planned") or config.train.epochs,
        val=val,
        test=test,
        seconds=seconds,
        status=status,
        parameters=summary.get("parameters"),
        sweep=_sweep_of(path),
        dry_run=bool(summary.get("dry_run", config.train.dry_run)),
    )


def filter_runs(rows: list[RunRow], filters: list[str]) -> list[RunRow]:
    """Keep the rows matching every ``key=pattern`` (shell-style wildcards, case-insensitive,
    against the table's text: ``dataset=mnist``, ``status=finished``, ``name=trial-*``)."""
    out = rows
    for item in filters:
        if "=" not in item:
            raise ConfigError(f"--filter expects KEY=VALUE (e.g. dataset=mnist); got '{item}'")
        key, pattern = (part.strip() for part in item.split("=", 1))
        if key not in FIELDS:
            raise ConfigError(
                f"--filter key '{key}' is not a column{did_you_mean(key, FIELDS)}; "
                f"filter on one of: {', '.join(FIELDS)}"
            )
        out = [r for r in out if fnmatch.fnmatch(_text(r, key).lower(), pattern.lower())]
    return out


def sort_runs(rows: list[RunRow], key: str = "date", reverse: bool = False) -> list[RunRow]:
    """Rows ordered by a column (numbers as numbers; rows without a value last)."""
    if key not in COLUMNS:
        raise ConfigError(
            f"--sort must be one of {', '.join(COLUMNS)}; got '{key}'{did_you_mean(key, COLUMNS)}"
        )
    value = {
        "val": lambda r: r.val,
        "test": lambda r: r.test,
        "time": lambda r: r.seconds,
        "epochs": lambda r: r.epochs_run,
    }.get(key, lambda r: r.cells()[key])
    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    return sorted(present, key=value, reverse=reverse) + missing


def runs_table(rows: list[RunRow], style: str = "text", root: str | Path | None = None) -> str:
    """The rows as an aligned text (or Markdown, CSV) table; ``run`` shows the run folder
    relative to ``root`` when the rows come from several folders (with no ``root``: its name,
    or a trial's whole path, ``runs/sweeps/<sweep>/runs/<run>``, which says whose trial it is)."""
    header = ["date", "run", "dataset", "architecture", "epochs", "val", "test", "time", "status"]
    table = []
    for r in rows:
        cells = r.cells()
        where = printable(_relative(r.path, root, r.sweep))
        table.append(
            [
                cells["date"],
                where,
                cells["dataset"],
                cells["architecture"],
                cells["epochs"],
                cells["val"],
                cells["test"],
                cells["time"],
                cells["status"],
            ]
        )
    return format_table(header, table, style)


# ----- helpers ---------------------------------------------------------------------------------
def _date(path: Path) -> str:
    match = STAMP.match(path.name)
    if match:
        with contextlib.suppress(ValueError):  # 20261399-...: a stamp that is no date
            with_stamp = dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S")
            return with_stamp.strftime("%Y-%m-%d %H:%M:%S")
    try:
        stamp = (path / CONFIG).lstat().st_mtime
    except OSError:
        return "-"
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _folder_name(path: Path) -> str:
    """The run's name as its folder says it: the part after the time stamp."""
    return STAMP.sub("", path.name).lstrip("-") or path.name


def _dataset_name(run: Run) -> str | None:
    try:
        return run.dataset_info()["name"]
    except RunError:
        return None


def _best_epoch(history: list[dict[str, Any]], select: str) -> int | None:
    """The epoch the loop keeps by ``train.select`` (a run without summary.json: it stopped
    before its end)."""
    scored = []
    for record in history:
        with contextlib.suppress(KeyError, TypeError):  # an epoch without the figure
            scored.append((selection_score(record, select), record["epoch"]))
    return min(scored)[1] if scored else None


def _text(row: RunRow, key: str) -> str:
    if key in ("path", "task", "sweep"):
        return getattr(row, key)
    if key == "parameters":
        return "" if row.parameters is None else str(row.parameters)
    return row.cells()[key] if key != "status" else row.status


def _sweep_of(path: Path) -> str:
    """The sweep folder of a trial (SWEEP/runs/RUN, SWEEP holding sweep.json), else ""."""
    folder = path.parent
    if folder.name == TRIALS and os.path.lexists(folder.parent / SWEEP_JSON):
        return str(folder.parent)
    return ""


def _relative(path: str, root: str | Path | None, sweep: str = "") -> str:
    if root is None:
        return path if sweep else Path(path).name
    try:
        rel = str(Path(path).relative_to(Path(root)))
    except ValueError:
        return path
    return Path(path).name if rel == "." else rel


def _why(exc: BaseException, path: Path) -> str:
    """The first line of the error, the run's own path left out (its row says it), cut to
    120 characters."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    message = message.replace(f"{path}/", "").replace(str(path), "run")
    return message if len(message) <= 120 else message[:117] + "..."


def to_json(rows: list[RunRow]) -> str:
    """The rows as a JSON array (raw values: fractions, seconds, the full path)."""
    return json.dumps([r.to_dict() for r in rows], indent=2)
