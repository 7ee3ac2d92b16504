"""The one place where mlplab reports progress: log lines and terminal progress bars.

Library code never prints. It logs through the ``mlplab`` logger and draws tqdm bars only
when stderr is a terminal and ``MLPLAB_PROGRESS`` is not ``0``. Who shows the log lines:

- the CLI: a handler on stdout (``main``), warnings only with ``--quiet``;
- ``train()``/``resume()`` called from Python (a script, a notebook): :func:`reporting`
  installs a handler on stderr for the call, so the lines the CLI prints appear in a terminal
  and in a notebook's cell output with nothing configured. ``progress=False`` or
  ``MLPLAB_PROGRESS=0`` (what CI sets) keeps it away; a caller who set up ``logging``
  (a handler on the ``mlplab`` or the root logger) gets the lines through that instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import TqdmWarning

with warnings.catch_warnings():  # in a kernel without ipywidgets tqdm.auto falls back to its
    warnings.simplefilter("ignore", TqdmWarning)  # text bar, with a warning in the cell: quiet
    from tqdm.auto import tqdm

from .notebook.live import LiveTraining, LogToLive, ipython_display, live_wanted

__all__ = [
    "log_line",
    "log_to_file",
    "logger",
    "progress_bar",
    "progress_setting",
    "reporting",
    "show_epoch",
    "show_progress",
    "training_bar",
]

logger = logging.getLogger("mlplab")
# the notebook output of the train()/resume() call inside (None: terminal behaviour)
_live: contextvars.ContextVar[LiveTraining | None] = contextvars.ContextVar("live", default=None)


def progress_setting() -> bool | None:
    """MLPLAB_PROGRESS: False for 0/false/no/off, True for 1/true/yes/on, None otherwise."""
    setting = os.environ.get("MLPLAB_PROGRESS", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return None


def show_progress() -> bool:
    """Draw progress bars? Only on a terminal, unless MLPLAB_PROGRESS says otherwise."""
    setting = progress_setting()
    return sys.stderr.isatty() if setting is None else setting


def progress_bar(**kwargs: Any) -> tqdm:
    """A tqdm bar on stderr that is silent (and nearly free) when progress is off."""
    return tqdm(
        disable=not show_progress(), leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs
    )


def training_bar(
    *, total: int, initial: int, epochs: int, history: list[dict[str, Any]]
) -> tqdm | LiveTraining:
    """The training loop's bar: the notebook's live output inside a :func:`reporting` that
    made one (it then draws ``history``, a resumed run's epochs, at once), else
    :func:`progress_bar`."""
    live = _live.get()
    if live is not None:
        return live.start(total=total, done=initial, epochs=epochs, history=history)
    return progress_bar(total=total, initial=initial, desc="train", unit="step")


def show_epoch(record: dict[str, Any], line: str, bar: tqdm | LiveTraining) -> None:
    """An epoch ended: its line (:func:`log_line`), and its record to a live output's curves."""
    log_line(line, bar)
    if isinstance(bar, LiveTraining):
        bar.epoch(record, line)


def log_line(message: str, bar: tqdm | LiveTraining | None = None) -> None:
    """Log an INFO line without tearing an active progress bar."""
    if bar is not None and not bar.disable:
        with bar.external_write_mode():
            logger.info(message)
    else:
        logger.info(message)


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def reporting(progress: bool | None = None) -> Iterator[None]:
    """Show mlplab's log lines to a caller of the Python API while inside (train, resume).

    ``None`` (the default): on stderr, unless ``MLPLAB_PROGRESS`` is off or the caller set up
    ``logging`` (a handler on the root logger: ``logging.basicConfig``), whose handlers then
    decide. ``True``: on stderr whatever either says (the root's handlers do not get them
    too). ``False``: quiet: the caller's handlers get warnings only. A handler on the
    ``mlplab`` logger itself (the CLI's) always decides. A run's ``train.log`` gets every
    line in all cases (:func:`log_to_file`).
    """
    own, root = bool(logger.handlers), bool(logging.getLogger().handlers)
    if progress is not False and (progress or progress_setting() is not False) and live_wanted():
        with _live_output(lines=not own and (progress is True or not root)):
            yield
        return
    if progress is False:
        quiet, handlers = _WarningsOnly(), [*logger.handlers, *logging.getLogger().handlers]
        for handler in handlers:
            handler.addFilter(quiet)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(quiet)
        return
    if own or (progress is None and (root or progress_setting() is False)):
        yield
        return
    # sys.stderr as it is now: a terminal, a notebook's cell output, pytest's capture
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)  # log_to_file then leaves propagation alone: no doubles
    logger.propagate = False  # nor from the root's handlers or logging's last resort
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _live_output(lines: bool) -> Iterator[None]:
    """One notebook output for the call; with ``lines``, mlplab's log lines go into it too
    (else the caller's handlers show them, as outside a notebook)."""
    live = LiveTraining(ipython_display())  # no IPython with MLPLAB_NOTEBOOK=1: one line now
    handler = LogToLive(live) if lines else None
    level, propagate = logger.level, logger.propagate
    if handler is not None:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)
    token = _live.set(live)
    try:
        yield
    finally:
        _live.reset(token)
        live.finish()
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


class _Forward(logging.Handler):
    """Hands records at or above a level on to the root logger's handlers."""

    def __init__(self, level: int) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextlib.contextmanager
def log_to_file(path: Path, mode: str = "w") -> Iterator[None]:
    """Also write mlplab's INFO lines to ``path`` (a run's ``train.log``) while inside.

    The file gets every INFO line even when the caller shows only warnings: the logger is
    opened to INFO for the duration, and what the caller did not ask to see is kept from
    the root logger's handlers. Everything is put back on the way out.
    """
    handler = logging.FileHandler(path, mode=mode, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    level, propagate = logger.level, logger.propagate
    shown = logger.getEffectiveLevel()
    forward = None
    if shown > logging.INFO:
        logger.setLevel(logging.INFO)
        if propagate:
            logger.propagate = False
            forward = _Forward(shown)
            logger.addHandler(forward)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        if forward is not None:
            logger.removeHandler(forward)
        logger.setLevel(level)
        logger.propagate = propagate
