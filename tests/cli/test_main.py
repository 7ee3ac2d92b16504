"""main(): one command, its failures as one line on stderr and an exit code, logging put back.

Exit codes: 0 done, 2 a usage or data error (MlplabError), 1 training or the machine failed
(or a bug: "internal error"), 130 Ctrl-C; --debug re-raises instead.
"""

from __future__ import annotations

import errno
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlplab.cli.commands
from mlplab.cli import main
from mlplab.errors import RunError, TrainingError

QUICK = ["--dataset", "digits", "--hidden", "32", "--epochs", "2", "--lr", "0.01", "--threads", "1"]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def failing(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """`mlplab presets` raises ``exc``: main looks the handler up by name at each call."""

    def broken(args: object) -> int:
        raise exc

    monkeypatch.setattr(mlplab.cli.commands, "cmd_presets", broken)


def test_the_entry_point_is_main() -> None:
    module = importlib.import_module("mlplab.cli.main")  # `mlplab.cli.main` is the function
    assert main is module.main and callable(main)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--optimizer", "adma"],
            "config key 'train.optimizer' must be one of adam, adamw, sgd, rmsprop; got 'adma' (did you mean 'adam'?)",
        ),
        (["train", "--lr", "-1"], "config key 'train.lr' must be in (0, inf); got -1.0"),
        (
            ["train", "--set", "train.epoch=3"],
            "--set: unknown config key 'train.epoch' (did you mean 'train.epochs'?)",
        ),
        (["train", "--preset", "tutorail"], "unknown preset 'tutorail' (did you mean 'tutorial'?)"),
        (
            ["train", "--config", "nope.yaml"],
            "cannot read config file: nope.yaml: no such file",
        ),
        (["evaluate", "runs/nothing"], "run directory runs/nothing does not exist"),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlplab: error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_usage_errors_from_a_real_process(tmp_path: Path) -> None:
    """Exit code 2, one line on stderr, no traceback: as a user's shell sees it."""
    proc = subprocess.run(
        [sys.executable, "-m", "mlplab", "train", "--hidden", "512,x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "mlplab: error: config key 'model.hidden' must be a comma-separated list of whole numbers (e.g. 512,256); got '512,x'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mlplab", "train", "--no-such-flag"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "mlplab train: error: unknown flag --no-such-flag (`mlplab train --help` lists its flags)\n"
    )


@pytest.mark.parametrize("world, torn_down", [("1", True), ("2", False)])
def test_a_failed_rank_leaves_without_the_interpreters_teardown(
    tmp_path: Path, world: str, torn_down: bool
) -> None:
    """A rank of a data-parallel run that fails exits with ``os._exit`` (gloo's threads may
    abort the teardown, cli/main.py says why), its one line and exit code intact; a single
    process exits as usual, its ``atexit`` handlers run."""
    script = (
        "import atexit, sys; atexit.register(print, 'torn down'); "
        "sys.argv = ['mlplab', 'evaluate', 'nothing']; from mlplab.cli import entry; entry()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "WORLD_SIZE": world},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mlplab: error: run directory nothing does not exist")
    assert proc.stderr.count("\n") == 1
    assert ("torn down" in proc.stdout) is torn_down


def test_main_leaves_logging_as_it_found_it(tmp_path: Path) -> None:
    import logging

    log = logging.getLogger("mlplab")
    before = (list(log.handlers), log.level, log.propagate)
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert (list(log.handlers), log.level, log.propagate) == before


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from mlplab import ConfigError

    with pytest.raises(ConfigError, match="run.name"):  # --debug re-raises the exception itself
        main(["train", *QUICK, "--runs-dir", str(tmp_path), "--name", "a/b", "--debug"])


def test_an_unexpected_exception_is_one_line_too(capsys, monkeypatch) -> None:
    import mlplab.cli.commands

    def broken(args):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(mlplab.cli.commands, "cmd_presets", broken)  # main looks it up by name
    assert main(["presets"]) == 1
    assert one_line_error(capsys) == (
        "mlplab: internal error: RuntimeError: something inside broke (a bug in mlplab: run "
        "again with --debug for the traceback and report it)"
    )


def test_control_characters_in_a_message_are_escaped(tmp_path: Path, capsys) -> None:
    """A name holding a newline or a terminal escape code is echoed escaped, on one line."""
    assert main(["evaluate", str(tmp_path / "run\n\x1b[2J")]) == 2
    err = one_line_error(capsys)
    assert "\x1b" not in err and "run\\n\\x1b[2J" in err, err


@pytest.mark.parametrize(
    "exc, code, line",
    [
        (RunError("run x is damaged"), 2, "mlplab: error: run x is damaged"),
        (TrainingError("loss is nan"), 1, "mlplab: error: loss is nan"),
        (
            OSError(errno.EROFS, "Read-only file system", "runs/x"),
            1,
            "mlplab: error: Read-only file system (runs/x); check that the folder exists, is "
            "writable and has free space (--debug shows where it failed)",
        ),
        (KeyboardInterrupt(), 130, "mlplab: interrupted"),
    ],
)
def test_each_failure_has_its_exit_code(
    exc: BaseException, code: int, line: str, capsys, monkeypatch
) -> None:
    failing(monkeypatch, exc)
    assert main(["presets"]) == code
    assert one_line_error(capsys) == line
    with pytest.raises(type(exc)):
        main(["presets", "--debug"])


def test_a_reader_that_leaves_is_not_an_error(tmp_path: Path, capsys, monkeypatch) -> None:
    """`mlplab config --list | head -1`: the pipe closed early; exit 0, nothing on stderr,
    and stdout pointed at /dev/null so that Python's own flush at exit does not fail."""
    failing(monkeypatch, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    redirected: list[int] = []
    with open(tmp_path / "stdout", "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.setattr("os.dup2", lambda fd, to: redirected.append(to))
        assert main(["presets"]) == 0
        assert redirected == [stdout.fileno()]
    assert capsys.readouterr().err == ""
