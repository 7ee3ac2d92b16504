"""Bounds on what untrusted input may make mlplab allocate, decompress or show.

A leaf module (it imports only :mod:`mlplab.errors`): the data readers, the run reader, the
prediction path and the server check sizes here *before* allocating, so that a file whose
header claims a huge array, a compressed member that inflates without end, or a
``model.json`` asking for enormous layers ends in one clear line instead of a MemoryError
(or the machine swapping first).

- :func:`check_alloc` refuses an allocation larger than the memory budget: a fraction of
  the memory available now (``MemAvailable`` on Linux), or ``MLPLAB_MAX_ALLOC_MB`` when set.
- :func:`check_declared` compares a size a header declares with the bytes really there.
- :func:`read_bounded` reads a (decompressing) stream up to a limit, and refuses more.
- :func:`printable` escapes control characters (newlines, terminal escape codes) in a name
  before it is echoed in a message.
"""

from __future__ import annotations

import os
from typing import IO

from .errors import FormatError

__all__ = [
    "MEMORY_FRACTION",
    "available_memory",
    "check_alloc",
    "check_declared",
    "memory_budget",
    "printable",
    "read_bounded",
]

MEMORY_FRACTION = 0.5  # of the memory available now: the most one array (or file) may take
_FALLBACK_BUDGET = 4 * 1024**3  # bytes, where the available memory cannot be read


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``; else physical pages), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory_budget() -> int:
    """The most bytes one allocation driven by input may take.

    ``MLPLAB_MAX_ALLOC_MB`` when set (tests and servers pin it); else half of the memory
    available now, or 4 GiB where that cannot be read.
    """
    pinned = os.environ.get("MLPLAB_MAX_ALLOC_MB")
    if pinned:
        try:
            return max(1, int(float(pinned) * 1024 * 1024))
        except ValueError:
            pass  # a malformed setting falls back to the measured budget
    available = available_memory()
    return int(available * MEMORY_FRACTION) if available else _FALLBACK_BUDGET


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


def check_alloc(nbytes: int, what: str, *, error: type[Exception] = FormatError) -> None:
    """Raise ``error`` when ``nbytes`` (what ``what`` would take) exceeds the memory budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise error(
            f"{what} would need {_size(nbytes)} of memory, more than the {_size(budget)} "
            "mlplab allows one array (half the memory available now; set MLPLAB_MAX_ALLOC_MB "
            "to change it)"
        )


def check_declared(declared: int, actual: int, what: str) -> None:
    """Raise FormatError when a header declares more bytes than the file really holds."""
    if declared > actual:
        raise FormatError(
            f"{what} declares {_size(declared)} of data but only {_size(actual)} are there "
            "(the file is truncated or its header is wrong)"
        )


def read_bounded(stream: IO[bytes], limit: int, what: str) -> bytes:
    """Read all of ``stream`` (e.g. a gzip or zip member) unless it exceeds ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise FormatError(
            f"{what} decompresses to more than {_size(limit)}, more than mlplab allows "
            "(a damaged or hostile file; set MLPLAB_MAX_ALLOC_MB to raise the limit)"
        )
    return data


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``), safe to echo on one line."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(
        ch
        if ch.isprintable()
        else _ESCAPES.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        for ch in s
    )
