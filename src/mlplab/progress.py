"""The one place where mlplab reports progress: log lines and terminal progress bars.

Library code never prints. It logs through the ``mlplab`` logger (the CLI shows INFO
lines on stdout; a notebook sees them after ``logging.basicConfig(level="INFO")``) and
draws tqdm bars only when stderr is a terminal and ``MLPLAB_PROGRESS`` is not ``0``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

__all__ = ["log_line", "log_to_file", "logger", "progress_bar", "show_progress"]

logger = logging.getLogger("mlplab")


def show_progress() -> bool:
    """Draw progress bars? Only on a terminal, unless MLPLAB_PROGRESS says otherwise."""
    setting = os.environ.get("MLPLAB_PROGRESS", "auto").lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return sys.stderr.isatty()


def progress_bar(**kwargs: Any) -> tqdm:
    """A tqdm bar on stderr that is silent (and nearly free) when progress is off."""
    return tqdm(
        disable=not show_progress(), leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs
    )


def log_line(message: str, bar: tqdm | None = None) -> None:
    """Log an INFO line without tearing an active progress bar."""
    if bar is not None and not bar.disable:
        with bar.external_write_mode():
            logger.info(message)
    else:
        logger.info(message)


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
