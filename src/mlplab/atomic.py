"""Atomic file writes: a temporary sibling, then a rename, so readers see whole files or none.

A leaf module (it imports nothing from mlplab): the run directory, the config and the
downloads all write through it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "temporary_sibling", "write_bytes_atomic", "write_text_atomic"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it: put it straight back


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A unique hidden name beside ``path``: created by the writer, so the umask applies."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary sibling of ``path``, then rename it into place.

    On any failure (a full disk, an exception in ``write``) the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would; some writers (safetensors) use 0600
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
