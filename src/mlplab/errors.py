"""The exception tree of mlplab.

Every error a user can cause or fix is one of these; the CLI prints its message as one
line and exits with its ``exit_code``: 2 (1 for TrainingError and for a write the system
refused); tracebacks only with ``--debug``::

    MlplabError
    ├── ConfigError      a config key, value, preset or YAML file is wrong
    ├── DataError        a dataset is missing, malformed, or cannot be downloaded
    │   ├── FormatError      a data file is truncated or not what its name says
    │   └── DownloadError    no mirror delivered a file with the right checksum
    ├── RunError         a run directory is missing, incomplete, or would be overwritten
    ├── TrainingError    training failed at run time (diverged to nan/inf, device missing)
    ├── WriteError       an output was refused (it exists, is not a regular file, is a run's
    │                    own file) or the system refused it (full disk, read-only, too long)
    │                    (also an OSError, with its errno)
    └── MissingExtraError  a feature needs an optional extra: pip install 'mlplab[extra]'
                         (also an ImportError)

Messages name the key or file, the value received, what is allowed and how to fix it.
"""

from __future__ import annotations

import difflib
import errno as errno_module
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DataError",
    "DownloadError",
    "FormatError",
    "MissingExtraError",
    "MlplabError",
    "RunError",
    "TrainingError",
    "WriteError",
    "did_you_mean",
]


_MACHINE_ERRNOS = {
    errno_module.ENOSPC,
    getattr(errno_module, "EDQUOT", errno_module.ENOSPC),
    errno_module.EROFS,
    errno_module.EACCES,
    errno_module.EPERM,
    errno_module.EIO,
}


class MlplabError(Exception):
    """Base class: an error the user can understand and fix from its message alone."""

    exit_code = 2  # the CLI's exit status: 2 for a usage or data error


class ConfigError(MlplabError, ValueError):
    """A config key, value, preset or config file is invalid."""


class DataError(MlplabError):
    """A dataset cannot be found, read or prepared."""


class FormatError(DataError):
    """A data file is malformed (truncated, wrong magic number, inconsistent counts)."""


class DownloadError(DataError):
    """A file could not be downloaded intact from any mirror."""


class RunError(MlplabError):
    """A run directory is missing, incomplete, or would be overwritten."""


class TrainingError(MlplabError):
    """Training cannot go on: the loss diverged, or the requested device is missing."""

    exit_code = 1  # the run failed, not the command line


class WriteError(MlplabError, OSError):
    """An output cannot be written: refused by mlplab (the path exists and may not be
    replaced, is not a regular file, or is a run's own file), or by the system (no space left,
    a read-only disk, no permission, a name too long).

    Also an :class:`OSError` whose ``errno`` and ``strerror`` are the system's (``errno`` is
    ``EEXIST`` for a refusal), so code that handles a failed write as an ``OSError`` keeps
    doing so; ``str()`` is the one-line message.
    """

    def __init__(
        self, message: str, errno: int = 0, filename: str | None = None, strerror: str = ""
    ) -> None:
        super().__init__(errno, strerror or message)
        self.filename = filename
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        """1 when the machine failed the write (full disk, read-only, no permission, I/O),
        2 when the path itself is the problem (refused by mlplab, a name too long, ...)."""
        return 1 if self.errno in _MACHINE_ERRNOS else 2


class MissingExtraError(MlplabError, ImportError):
    """A feature needs an optional dependency that is not installed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
