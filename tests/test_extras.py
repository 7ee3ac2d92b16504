"""Optional extras: a missing one is a one-line error naming the install command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.extras import MissingExtraError, require


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    with pytest.raises(MissingExtraError) as info:
        require("matplotlib.figure", "report", "the report")
    assert str(info.value) == (
        "the report needs the Python package 'matplotlib', which is not installed; "
        "install it with: pip install 'mlplab[report]'"
    )
    assert isinstance(info.value, ImportError)
    assert require("json", "report").dumps([]) == "[]"


def test_cli_without_matplotlib_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["explore", "digits", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "mlplab: error: the report needs the Python package 'matplotlib', which is not installed; "
        "install it with: pip install 'mlplab[report]'\n"
    )
