"""Training shown live in a Jupyter cell: one output with a progress bar, the loss and
accuracy curves redrawn after every epoch, the latest epoch's line and the log folded away.

Jupyter is detected, never required: :func:`live_wanted` is true only inside an IPython
kernel (``ZMQInteractiveShell``: Jupyter, JupyterLab, VS Code, Colab), and IPython is never
imported to find out. ``MLPLAB_NOTEBOOK=0`` keeps the plain text lines in a notebook;
``MLPLAB_NOTEBOOK=1`` asks for the live output anywhere IPython can display it.

:class:`LiveTraining` stands in for the tqdm bar of :mod:`mlplab.progress` (``update``,
``close``, ``disable``, ``external_write_mode``), so the training loop has one bar either
way. It draws with :func:`IPython.display.display` (``display_id=True``) once and then
updates that one handle: the bar at most every ``interval`` seconds, the curves once per
epoch. The figure is SVG drawn by hand (:mod:`.svg`): no matplotlib figure is created, so
none is leaked and no window opens.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..extras import require
from .svg import curves_html, from_history

__all__ = ["LiveTraining", "in_notebook", "live_setting", "live_wanted"]

SHOWN_LOG_LINES = 400  # the folded log keeps the last this many lines

logger = logging.getLogger("mlplab")


def live_setting() -> bool | None:
    """MLPLAB_NOTEBOOK: False for 0/false/no/off, True for 1/true/yes/on, None otherwise."""
    setting = os.environ.get("MLPLAB_NOTEBOOK", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return None


def in_notebook() -> bool:
    """Inside a Jupyter kernel? Only if IPython is already imported (a kernel always has it;
    a script never pays for importing it) and its shell is a kernel's."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # a half-imported or stubbed IPython: not a notebook
        return False
    if shell is None:
        return False
    kernel = any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)
    return kernel or "IPKernelApp" in getattr(shell, "config", {})


def live_wanted() -> bool:
    """Show training live? MLPLAB_NOTEBOOK decides if set, else :func:`in_notebook`."""
    setting = live_setting()
    return in_notebook() if setting is None else setting


def ipython_display() -> Callable[..., Any]:
    """IPython's ``display`` (MissingExtraError naming ``mlplab[notebook]`` without it)."""
    return require("IPython.display", "notebook", "the live training display").display


class _Output:
    """What is displayed: HTML for a notebook, the latest line for a text-only frontend."""

    def __init__(self, markup: str, text: str) -> None:
        self.markup, self.text = markup, text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text


class LiveTraining:
    """One cell output for one ``train()``/``resume()`` call (see the module docstring)."""

    disable = False  # as a tqdm bar that draws

    def __init__(self, display: Callable[..., Any] | None = None, interval: float = 0.5) -> None:
        self._display = display  # None: IPython's, looked up when first drawn
        self.interval = interval  # seconds between redraws of the bar within an epoch
        self.handle: Any = None
        self.total, self.done, self.epochs = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.lines: list[str] = []  # the log, folded
        self.warnings: list[str] = []  # shown unfolded too
        self.latest = ""  # the last epoch's line
        self.running = self.closed = False
        self.broken = False  # a redraw failed: drawing stopped, training went on
        self._drawn_at = -float("inf")
        self._started = time.perf_counter()

    # ----- what the training loop calls ---------------------------------------------------
    def start(self, *, total: int, done: int, epochs: int, history: Sequence[Mapping[str, Any]]):
        """The loop begins: ``total`` steps planned, ``done`` already (a resumed run), and the
        epochs before (a resumed run's history, drawn at once)."""
        self.total, self.done, self.epochs = total, done, epochs
        self.history = [dict(r) for r in history]
        self.running, self._started = True, time.perf_counter()
        self.refresh()
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.perf_counter() - self._drawn_at >= self.interval:
            self.refresh()

    def epoch(self, record: Mapping[str, Any], line: str) -> None:
        """An epoch ended: its record joins the curves and its line is shown, drawn now."""
        self.history.append(dict(record))
        self.latest = line
        self.refresh()

    def close(self) -> None:
        if self.running:
            self.running = False
            self.refresh()

    @contextlib.contextmanager
    def external_write_mode(self) -> Iterator[None]:
        yield  # the log is part of this output: nothing to step around

    # ----- what the log handler calls -------------------------------------------------------
    def log(self, line: str, warning: bool = False) -> None:
        """A log line joins the folded log; drawn now outside the loop (set-up, test score),
        with the next redraw inside it (an epoch's line comes with its record). A warning is
        also shown unfolded, at once."""
        self.lines.append(line)
        del self.lines[:-SHOWN_LOG_LINES]
        if warning:
            self.warnings.append(line)
        if warning or not self.running:
            self.refresh()

    def finish(self) -> None:
        """The call returns: the last state, drawn once more if anything changed."""
        self.close()
        self.closed = True

    # ----- drawing ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Draw the output now. A display that fails (a closed frontend, a broken comm) stops
        the drawing, never the training: one warning says so, the run goes on and its
        directory and ``train.log`` have everything."""
        if self.broken:
            return
        try:
            output = _Output(self.html(), self.text())
            if self.handle is None:
                display = self._display or ipython_display()
                self.handle = display(output, display_id=True)
            else:
                self.handle.update(output)
        except Exception as error:
            self.broken = True  # before the warning: its log line must not redraw
            logger.warning(
                "notebook: the live output could not be drawn (%s: %s); training goes on "
                "without it (train.log and the run directory have everything)",
                type(error).__name__,
                error,
            )
            return
        self._drawn_at = time.perf_counter()

    def text(self) -> str:
        """The output for a text-only frontend: the bar's numbers and the latest epoch."""
        return f"{self._status()}\n{self.latest}".strip()

    def html(self) -> str:
        share = self.done / self.total if self.total else 0.0
        colour = "#2da44e" if self.done >= self.total > 0 else "#0969da"
        bar = (
            '<div style="background:#eaeef2;border-radius:3px;height:10px;width:100%;'
            f'max-width:690px"><div style="background:{colour};height:10px;border-radius:3px;'
            f'width:{100 * min(share, 1.0):.1f}%"></div></div>'
        )
        parts = [
            '<div style="font:13px/1.4 system-ui,-apple-system,sans-serif;color:#1f2328">',
            bar,
            f'<div style="color:#59636e;font-size:12px">{html.escape(self._status())}</div>',
        ]
        if self.history:
            parts.append(curves_html([from_history("", self.history)], self.epochs))
        if self.latest:
            parts.append(f'<pre style="margin:4px 0">{html.escape(self.latest)}</pre>')
        parts += [
            f'<div style="color:#9a6700;background:#fff8c5;padding:2px 6px;margin:2px 0">'
            f"{html.escape(w)}</div>"
            for w in self.warnings
        ]
        if self.lines:
            parts.append(
                f'<details><summary style="color:#59636e;font-size:12px">log '
                f'({len(self.lines)} lines)</summary><pre style="font-size:11px">'
                f"{html.escape(chr(10).join(self.lines))}</pre></details>"
            )
        parts.append("</div>")
        return "".join(parts)

    def _status(self) -> str:
        if not self.total:
            return "preparing"
        elapsed = time.perf_counter() - self._started
        epoch = len(self.history)
        state = "done" if not self.running and self.done >= self.total else "training"
        if not self.running and self.done < self.total:
            state = "stopped"
        return (
            f"{state}: epoch {epoch}/{self.epochs}, step {self.done}/{self.total} "
            f"({self.done / self.total:.0%}), {elapsed:.1f}s"
        )


class LogToLive(logging.Handler):
    """mlplab's INFO lines into a :class:`LiveTraining`'s folded log."""

    def __init__(self, live: LiveTraining) -> None:
        super().__init__(logging.INFO)
        self.live = live
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.live.log(self.format(record), warning=record.levelno >= logging.WARNING)
        except Exception:  # a display that fails must not stop training
            self.handleError(record)
