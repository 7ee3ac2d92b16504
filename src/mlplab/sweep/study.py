"""Where a sweep's Optuna study is stored: ``study.db`` (SQLite) in the sweep folder, or a
database that several workers share, named by a ``--storage`` URL (PostgreSQL).

- :func:`open_storage` opens a URL, with one-line errors for a bad URL or an unreachable server;
- :func:`folder_storage` is the rule for a shared sweep folder: its ``sweep.json`` may name
  only the folder's own ``study.db``; any other database is opened only when the user names it;
- :func:`mask_url` hides a URL's password wherever one is shown or written;
- :func:`sqlite_lock` makes claims on SQLite one process at a time;
- :func:`make_sampler` and :func:`make_pruner` build the search's sampler and pruner.

Optuna is an optional extra (``pip install 'mlplab[sweep]'``): :func:`load_optuna` imports it
or says how to install it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import ConfigError, FormatError, RunError
from ..extras import require
from ..files.limits import open_regular, printable

if TYPE_CHECKING:
    import optuna

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "STUDY_DB",
    "folder_storage",
    "is_folder_storage",
    "load_optuna",
    "make_pruner",
    "make_sampler",
    "mask_url",
    "open_storage",
    "own_storage",
    "quiet_optuna",
    "sqlite_lock",
]

STUDY_DB = "study.db"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
SQLITE_HEADER = b"SQLite format 3\x00"


def load_optuna() -> ModuleType:
    """Optuna, or a one-line error naming the extra that installs it."""
    return require("optuna", "sweep", "mlplab sweep")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url``, with one-line errors for a bad URL or server."""
    optuna = load_optuna()
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
        with quiet_optuna():
            full = parsed.render_as_string(hide_password=False)
            return optuna.storages.RDBStorage(full, engine_kwargs=engine)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ConfigError(
            f"cannot open sweep storage {mask_url(url)}: "
            f"{first[0] if first else type(exc).__name__}; "
            "check the URL, that the server runs and that the database exists"
        ) from None


def mask_url(url: str) -> str:
    """The URL with its password hidden (for logs, messages and sweep.json)."""
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url


# ----- a sweep folder's own study.db -------------------------------------------------------------
def own_storage(folder: Path) -> str:
    """The URL of the sweep folder's own SQLite study."""
    return f"sqlite:///{(folder / STUDY_DB).resolve()}"


def is_folder_storage(url: str, folder: Path) -> bool:
    """``url`` is the folder's own ``study.db`` (what sweep.json records as ``study.db``)."""
    return url == own_storage(folder)


def folder_storage(folder: Path, info_file: Path, recorded: str) -> str:
    """The storage URL to open for a sweep folder whose ``sweep.json`` records ``recorded``.

    Only the folder's own SQLite file is taken from the file, and only when it is there: any
    other URL (a SQLite file elsewhere, a server) would make mlplab create a database at a
    path, or connect to a server, that the user never named; they pass it with --storage.
    """
    if recorded not in (STUDY_DB, own_storage(folder)):
        url = printable(mask_url(recorded[:2000]))  # a URL is short; a planted one is cut
        shown_url = url if len(url) <= 300 else url[:297] + "..."
        raise ConfigError(
            f"{printable(info_file)} records the storage {shown_url}, not the sweep folder's own "
            f"{STUDY_DB}; mlplab opens another database only when you name it: pass it with "
            "--storage URL (with its password, if it has one)"
        )
    _check_own_study_db(folder)
    return own_storage(folder)


def _check_own_study_db(folder: Path) -> None:
    """The folder's study.db is there, a regular file (not a link) and a SQLite database."""
    own = folder / STUDY_DB
    try:
        info = own.lstat()  # not followed: a link named study.db may point anywhere
    except OSError:
        raise RunError(
            f"{printable(folder)}: the sweep's study {STUDY_DB} is missing; copy the whole "
            "sweep folder, or pass the study's --storage URL"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise RunError(
            f"{printable(own)}: not a regular file (a link, a FIFO, a folder); a sweep's "
            f"{STUDY_DB} is the SQLite file `mlplab sweep` made: copy the real file there"
        )
    try:
        with open_regular(own) as f:  # swapped for a FIFO since the check: refused, unblocked
            header = f.read(len(SQLITE_HEADER))
    except (FormatError, OSError) as exc:
        raise RunError(f"cannot read the sweep's study: {exc}") from None
    if header != SQLITE_HEADER:
        raise RunError(f"{printable(own)}: not a SQLite database (the sweep's study)")


# ----- claims, sampler, pruner, Optuna's logging ------------------------------------------------
@contextlib.contextmanager
def sqlite_lock(url: str) -> Iterator[None]:
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
        raise RunError(
            f"cannot open the sweep's lock file {printable(lock)}: {exc.strerror or exc}"
        ) from None
    with os.fdopen(fd, "w") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{printable(lock)}: not a regular file; remove it (the sweep's lock)")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The search's sampler: TPE (learns from the trials so far) or random."""
    samplers = load_optuna().samplers
    return samplers.RandomSampler(seed=seed) if name == "random" else samplers.TPESampler(seed=seed)


def make_pruner(name: str, warmup: int = 0) -> optuna.pruners.BasePruner:
    """Optuna's MedianPruner: stop a trial whose score at an epoch is below the median of
    earlier trials' at that epoch, once 5 trials finished and past ``warmup`` epochs."""
    pruners = load_optuna().pruners
    if name == "none":
        return pruners.NopPruner()
    return pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna announces each study it creates or loads at INFO; mlplab says it once itself."""
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        optuna_logger.setLevel(level)
