"""Training in a notebook: one live output (bar, curves redrawn each epoch, the lines folded
in), detected, never required; outside a notebook nothing changes (tests/test_progress.py).

No kernel is started: IPython's detection is faked (a stand-in ``IPython`` module whose
shell is a ``ZMQInteractiveShell``) and ``display`` is a recorder of what a cell would show.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import types
from typing import ClassVar

import pytest

from mlplab import Config, progress, resume, train
from mlplab.errors import MissingExtraError
from mlplab.notebook.live import LiveTraining, in_notebook, live_wanted
from mlplab.progress import logger, reporting
from mlplab.training.loop import format_epoch


class ZMQInteractiveShell:  # the name a Jupyter kernel's shell has
    config: ClassVar[dict] = {}


class TerminalInteractiveShell:  # plain `ipython` in a terminal: not a notebook
    config: ClassVar[dict] = {}


class Cell:
    """What ``IPython.display.display`` would put in the cell: one output, its updates."""

    def __init__(self) -> None:
        self.outputs: list[list[str]] = []  # per display() call, every version shown

    def display(self, obj: object, display_id: bool = False) -> Cell.Handle:
        assert display_id is True
        self.outputs.append([obj._repr_html_()])  # type: ignore[attr-defined]
        return Cell.Handle(self.outputs[-1])

    class Handle:
        def __init__(self, versions: list[str]) -> None:
            self.versions = versions

        def update(self, obj: object) -> None:
            self.versions.append(obj._repr_html_())  # type: ignore[attr-defined]


def fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object | None) -> None:
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> Cell:
    """A Jupyter kernel as train() sees it: progress on (conftest sets 0, as CI does), a
    kernel's shell, and a cell recording what is displayed. (Each test takes away pytest's
    logging handlers itself, ``plain()``: pytest adds them after the fixtures.)"""
    monkeypatch.delenv("MLPLAB_PROGRESS", raising=False)
    monkeypatch.delenv("MLPLAB_NOTEBOOK", raising=False)
    fake_ipython(monkeypatch, ZMQInteractiveShell())
    cell = Cell()
    monkeypatch.setattr(progress, "ipython_display", lambda: cell.display)
    monkeypatch.setattr(LiveTraining, "__init__", _never_throttled(LiveTraining.__init__))
    return cell


def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """No handler on the root logger, as in a fresh kernel."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def _never_throttled(init):  # the bar is redrawn only at epochs: counts do not depend on speed
    def patched(self, display=None, interval=0.5):
        init(self, display, interval=float("inf"))

    return patched


def _epochs_drawn(version: str) -> int:
    return len(re.findall(r"<title>epoch \d+: val loss", version))


def test_detection(monkeypatch) -> None:
    monkeypatch.delenv("MLPLAB_NOTEBOOK", raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()  # IPython not imported: a script, and it is not imported to check
    assert "IPython" not in sys.modules
    fake_ipython(monkeypatch, None)
    assert not in_notebook()  # imported, no shell
    fake_ipython(monkeypatch, TerminalInteractiveShell())
    assert not in_notebook()
    fake_ipython(monkeypatch, ZMQInteractiveShell())
    assert in_notebook()
    colab = type("Shell", (ZMQInteractiveShell,), {})()  # Colab's shell subclasses it
    fake_ipython(monkeypatch, colab)
    assert in_notebook() and live_wanted()
    monkeypatch.setenv("MLPLAB_NOTEBOOK", "0")
    assert not live_wanted()
    fake_ipython(monkeypatch, TerminalInteractiveShell())
    monkeypatch.setenv("MLPLAB_NOTEBOOK", "1")
    assert live_wanted()


def test_train_in_a_notebook_shows_one_live_output(
    notebook: Cell, tiny, quick_config: Config, capsys, monkeypatch
) -> None:
    plain(monkeypatch)
    result = train(quick_config, dataset=tiny)
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # nothing printed line by line
    assert len(notebook.outputs) == 1  # one output, updated
    versions = notebook.outputs[0]
    drawn = [_epochs_drawn(v) for v in versions]
    # the curves: redrawn once per epoch, each time with that epoch's numbers
    assert [drawn.index(k) for k in (1, 2, 3)] == sorted(drawn.index(k) for k in (1, 2, 3))
    for k, record in enumerate(result.history, 1):
        first = versions[drawn.index(k)]
        assert drawn.count(k) >= 1 and f"epoch {k}: val loss {record['val_loss']:.4f}" in first
        assert f"epoch {k}: train accuracy {record['train_accuracy']:.2%}" in first
        assert html.escape(format_epoch(record, 3)) in first  # the epoch's line, shown
        assert f"epoch {k}/3" in first  # the bar's status
    epoch_updates = [i for i in range(1, len(drawn)) if drawn[i] > drawn[i - 1]]
    assert len(epoch_updates) == 3  # one redraw per epoch
    last = versions[-1]
    assert "done: epoch 3/3" in last and "width:100.0%" in last
    log = (result.run_dir / "train.log").read_text()  # every line, folded into the output
    assert html.escape(log.strip()) in last
    assert logger.handlers == [] and logger.level == logging.NOTSET and logger.propagate


def test_resume_draws_the_earlier_epochs_at_once(
    notebook: Cell, tiny, quick_config, monkeypatch
) -> None:
    plain(monkeypatch)
    first = train(quick_config.override({"train.epochs": 2}), dataset=tiny)
    notebook.outputs.clear()
    resume(first.run_dir, epochs=3, dataset=tiny)
    assert len(notebook.outputs) == 1
    drawn = [_epochs_drawn(v) for v in notebook.outputs[0]]
    assert 2 in drawn and drawn.index(2) < drawn.index(3)  # epochs 1-2 before epoch 3 ends
    assert 0 not in drawn[drawn.index(2) :]


@pytest.mark.parametrize(
    "env, progress, live",
    [
        ({}, None, True),
        ({}, False, False),  # asked: quiet
        ({"MLPLAB_PROGRESS": "0"}, None, False),  # CI's switch
        ({"MLPLAB_PROGRESS": "0"}, True, True),
        ({"MLPLAB_NOTEBOOK": "0"}, None, False),  # the lines, as outside a notebook
    ],
)
def test_switched_off(notebook: Cell, tiny, quick_config, capsys, monkeypatch, env, progress, live):
    plain(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    train(quick_config.override({"train.epochs": 1}), dataset=tiny, progress=progress)
    err = capsys.readouterr().err
    assert (len(notebook.outputs) == 1) is live
    shown_as_lines = not live and progress is not False and env.get("MLPLAB_PROGRESS") != "0"
    assert ("epoch 1/1  train loss" in err) is shown_as_lines


def test_outside_a_notebook_nothing_is_displayed(tiny, quick_config, capsys, monkeypatch) -> None:
    """A terminal IPython (or a script): the lines on stderr, no display call."""
    plain(monkeypatch)
    monkeypatch.delenv("MLPLAB_PROGRESS", raising=False)
    fake_ipython(monkeypatch, TerminalInteractiveShell())
    monkeypatch.setattr(progress, "ipython_display", pytest.fail)
    train(quick_config.override({"train.epochs": 1}), dataset=tiny)
    assert "epoch 1/1  train loss" in capsys.readouterr().err


def test_with_logging_configured_the_lines_go_there(
    notebook: Cell, tiny, quick_config, monkeypatch
) -> None:
    """A caller's logging keeps the lines; the output still has the bar and the curves."""
    plain(monkeypatch)
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        train(quick_config.override({"train.epochs": 1}), dataset=tiny)
    finally:
        root.removeHandler(handler)
        root.setLevel(logging.WARNING)
    assert sum(line.startswith("epoch 1/1") for line in seen) == 1
    last = notebook.outputs[0][-1]
    assert _epochs_drawn(last) == 1 and "epoch 1/1  train loss" in last and "<details>" not in last


def test_forced_on_without_ipython_is_one_line(monkeypatch) -> None:
    monkeypatch.delenv("MLPLAB_PROGRESS", raising=False)
    monkeypatch.setenv("MLPLAB_NOTEBOOK", "1")
    monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython fails
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'mlplab\[notebook\]'"), reporting():
        pass


def test_the_bar_is_throttled() -> None:
    """Within an epoch the output is redrawn at most every `interval` seconds."""
    cell = Cell()
    live = LiveTraining(cell.display, interval=3600)
    live.start(total=1000, done=0, epochs=1, history=[])
    for _ in range(1000):
        live.update()
    assert len(cell.outputs[0]) == 1
    live.close()
    assert len(cell.outputs[0]) == 2 and "step 1000/1000" in cell.outputs[0][-1]


def test_a_warning_is_shown_unfolded(notebook: Cell, monkeypatch) -> None:
    """The log is folded away; a warning is not, and is drawn at once, even mid-epoch."""
    plain(monkeypatch)
    with reporting():
        logger.info("config   ...")
        progress.training_bar(total=10, initial=0, epochs=1, history=[])
        logger.info("an info line")
        logger.warning("a <warning>")
    _, started, warned, _ = notebook.outputs[0]  # config line, loop start, warning, end
    assert "an info line" not in started  # inside the loop: drawn with the next redraw
    shown, folded = warned.split("<details>")
    assert "a &lt;warning&gt;" in shown and "an info line" in folded


def test_a_failing_display_stops_the_drawing_not_the_training(
    notebook: Cell, tiny, quick_config: Config, monkeypatch, caplog
) -> None:
    """The frontend goes away mid-run (a closed tab, a broken comm): one warning, no more
    drawing, and the run finishes with every epoch."""
    plain(monkeypatch)
    calls = []

    def update(self, obj: object) -> None:
        calls.append(obj)
        if len(calls) >= 2:
            raise ConnectionError("comm closed")
        self.versions.append(obj._repr_html_())  # type: ignore[attr-defined]

    monkeypatch.setattr(Cell.Handle, "update", update)
    result = train(quick_config, dataset=tiny)
    assert len(result.history) == 3 and not result.interrupted
    assert len(calls) == 2  # nothing redrawn after the failure
    log = (result.run_dir / "train.log").read_text()
    assert (
        log.count("notebook: the live output could not be drawn (ConnectionError: comm closed)")
        == 1
    )
    assert "training goes on" in log
