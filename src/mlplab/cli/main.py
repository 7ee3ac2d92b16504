"""``mlplab``'s entry point: parse, run the command's handler, turn failures into exit codes.

Errors print one line and exit 2 (1 when training itself or the file system fails, 130 on
Ctrl-C); ``--debug`` shows the traceback instead. mlplab's log lines go to stdout, bare,
for the length of one command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import MlplabError
from ..files.limits import printable
from ..progress import logger
from ..training.distributed import world_size
from . import commands
from .parser import build_parser

EXIT_INTERRUPTED = 130  # the shell's code for a Ctrl-C (128 + SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``mlplab`` command; returns its exit code."""
    args = build_parser().parse_args(argv)
    handler = getattr(commands, "cmd_" + args.command.replace("-", "_"))
    saved = logger.level, logger.propagate
    log_handler = _log_to_stdout(quiet=getattr(args, "quiet", False))
    try:
        return handler(args) or 0
    except BrokenPipeError:  # `mlplab config --list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            raise
        return _report(exc)
    finally:  # main() may run again in this process (tests, notebooks): leave logging as it was
        logger.removeHandler(log_handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def entry() -> NoReturn:
    """The ``mlplab`` program (console script and ``python -m mlplab``): :func:`main`, then exit
    with its code.

    A rank of a data-parallel run that failed leaves without the interpreter's teardown
    (``os._exit``, once its output is flushed): after another rank died, gloo's threads may
    still be tied to the lost peer, and tearing them down aborted the process once in the
    test suite ("terminate called without an active exception", exit -6 after the right
    one-line error) instead of exiting with the code the error deserves.
    """
    code = main()
    if code and world_size() > 1:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _report(exc: BaseException) -> int:
    """Say what went wrong in one line on stderr; the exit code it deserves."""
    if isinstance(exc, KeyboardInterrupt):
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: no traceback either
            print("mlplab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, MlplabError):
        print(f"mlplab: error: {printable(exc)}", file=sys.stderr)  # one line, whatever it names
        return exc.exit_code  # 1 when training or the machine failed, 2 for usage and data
    if isinstance(exc, OSError):  # the last line of defence: a full disk, a read-only folder...
        where = f" ({printable(exc.filename)})" if exc.filename else ""
        print(
            f"mlplab: error: {exc.strerror or exc}{where}; check that the folder exists, "
            "is writable and has free space (--debug shows where it failed)",
            file=sys.stderr,
        )
        return 1
    # a bug, not a user's mistake: still one line, and how to report it
    print(
        f"mlplab: internal error: {type(exc).__name__}: {printable(exc)} (a bug in mlplab: run "
        "again with --debug for the traceback and report it)",
        file=sys.stderr,
    )
    return 1


def _log_to_stdout(quiet: bool) -> logging.Handler:
    """Show mlplab's log lines on stdout, bare, for the length of one command."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING if quiet else logging.INFO)  # train.log still gets INFO
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
