"""The one place where mlplab reports progress: log lines and terminal progress bars.

Library code never prints. It logs through the ``mlplab`` logger (the CLI shows INFO
lines on stdout; a notebook sees them after ``logging.basicConfig(level="INFO")``) and
draws tqdm bars only when stderr is a terminal and ``MLPLAB_PROGRESS`` is not ``0``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["logger", "progress_bar", "show_progress"]

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
