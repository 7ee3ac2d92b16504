"""The Python path's progress: train() shows what `mlplab train` prints on stderr (a terminal,
a notebook's cell output) with nothing configured, and is quiet when asked (issue 24, point 5).

pytest puts its own handlers on the root logger as each test starts; each test here takes
them away first (``plain()``), as a plain script or a fresh notebook has none.
"""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest

from mlplab import Config, train
from mlplab.progress import logger, reporting

EPOCH = re.compile(r"^epoch \d/3  train loss \d\.\d{4} acc +\d+\.\d\d%  val loss ", re.M)


def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """No handler anywhere and MLPLAB_PROGRESS unset (conftest sets 0, as CI does)."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.delenv("MLPLAB_PROGRESS", raising=False)
    assert logger.handlers == []


def _lines_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_train_shows_the_cli_lines_on_stderr_by_default(
    tiny, quick_config: Config, capsys, monkeypatch
) -> None:
    """It trained silently: only logging.basicConfig(level="INFO") showed anything."""
    plain(monkeypatch)
    result = train(quick_config, dataset=tiny)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("config   data: ")
    assert len(EPOCH.findall(err)) == 3
    assert f"run      {result.run_dir}\n" in err
    assert re.search(r"^test     loss \d\.\d{4}  accuracy", err, re.M)
    log = (result.run_dir / "train.log").read_text()
    assert _lines_of(err) == _lines_of(log)  # the same lines as the run's train.log, once each
    # put back as found: nothing left on the logger
    assert logger.handlers == [] and logger.level == logging.NOTSET and logger.propagate


def test_in_a_notebook_the_lines_go_to_its_stderr(tiny, quick_config: Config, monkeypatch) -> None:
    """A notebook replaces sys.stderr with its cell's stream (not a terminal): the lines go
    there, as they are written, and no progress bar is drawn."""
    plain(monkeypatch)
    cell = io.StringIO()
    monkeypatch.setattr(sys, "stderr", cell)
    train(quick_config, dataset=tiny)
    assert len(EPOCH.findall(cell.getvalue())) == 3
    assert "it/s" not in cell.getvalue() and "step/s" not in cell.getvalue()


@pytest.mark.parametrize(
    "env, progress, shown",
    [
        ("0", None, False),  # what CI sets
        ("off", None, False),
        ("1", False, False),  # asked: quiet
        (None, False, False),
        ("0", True, True),  # asked: shown
        ("1", None, True),
    ],
)
def test_quiet_when_asked(
    tiny, quick_config: Config, capsys, monkeypatch, env, progress, shown
) -> None:
    plain(monkeypatch)
    if env is not None:
        monkeypatch.setenv("MLPLAB_PROGRESS", env)
    result = train(quick_config.override({"train.epochs": 1}), dataset=tiny, progress=progress)
    err = capsys.readouterr().err
    assert ("epoch 1/1  train loss" in err) is shown, err
    assert "epoch 1/1  train loss" in (result.run_dir / "train.log").read_text()
    assert logger.handlers == []


def test_configured_logging_decides(tiny, quick_config: Config, capsys, monkeypatch) -> None:
    """A caller with logging set up gets the lines through it, once, and nothing on stderr;
    progress=False leaves their handlers the warnings only."""
    plain(monkeypatch)
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        train(quick_config.override({"train.epochs": 1}), dataset=tiny)
        assert capsys.readouterr().err == ""
        assert seen.getvalue().count("epoch 1/1  train loss") == 1
        seen.truncate(0)
        train(quick_config.override({"train.epochs": 1}), dataset=tiny, progress=False)
        assert seen.getvalue() == "" and capsys.readouterr().err == ""
        assert handler.filters == []  # the quiet filter is taken off again
    finally:
        root.removeHandler(handler)
        root.setLevel(logging.WARNING)


def test_a_warning_is_shown_once(capsys, monkeypatch) -> None:
    """With train()'s own handler, a warning is not shown again by logging's last resort."""
    plain(monkeypatch)
    with reporting():
        logger.info("an info line")
        logger.warning("a warning")
    with reporting(progress=False):
        logger.info("not shown")
        logger.warning("still shown")  # by logging's last resort: no handler anywhere
    assert capsys.readouterr().err == "an info line\na warning\nstill shown\n"
