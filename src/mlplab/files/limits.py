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
- :func:`open_regular` and :func:`check_regular` refuse anything that is not a regular file
  (a FIFO would block the read forever, ``/dev/zero`` never ends) before reading it.
- :func:`read_text_file` reads a small UTF-8 text file (a config, a search space, a sweep's
  ``sweep.json``): a regular file of at most a given size, else one line.
"""

from __future__ import annotations

import math
import os
import reprlib
import stat
from pathlib import Path
from typing import IO, BinaryIO

from ..errors import ConfigError, FormatError

__all__ = [
    "MEMORY_FRACTION",
    "available_memory",
    "check_alloc",
    "check_declared",
    "check_regular",
    "file_kind",
    "memory_budget",
    "open_regular",
    "printable",
    "read_bounded",
    "read_into",
    "read_text_file",
    "shown",
]

MEMORY_FRACTION = 0.5  # of the memory available now: the most one array (or file) may take
_CHUNK = 1 << 20  # bytes read at a time from a stream of unknown length
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

    ``MLPLAB_MAX_ALLOC_MB`` when set (tests and servers pin it; a malformed value is refused
    in one line); else half of the memory available now, or 4 GiB where that cannot be read.
    """
    pinned = _pinned_budget()
    if pinned is not None:
        return pinned
    available = available_memory()
    return int(available * MEMORY_FRACTION) if available else _FALLBACK_BUDGET


def _pinned_budget() -> int | None:
    pinned = os.environ.get("MLPLAB_MAX_ALLOC_MB")
    if not pinned:
        return None
    try:
        mib = float(pinned)
    except ValueError:
        mib = math.nan
    if not (mib > 0 and math.isfinite(mib)):
        raise ConfigError(
            f"environment variable MLPLAB_MAX_ALLOC_MB must be a number of MiB > 0; got "
            f"{shown(pinned)} (unset it for half the memory available)"
        )
    return max(1, int(mib * 1024 * 1024))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


def check_alloc(nbytes: int, what: str, *, error: type[Exception] = FormatError) -> None:
    """Raise ``error`` when ``nbytes`` (what ``what`` would take) exceeds the memory budget."""
    budget = memory_budget()
    if nbytes > budget:
        why = (
            "set by MLPLAB_MAX_ALLOC_MB"
            if _pinned_budget() is not None
            else "half the memory available now; set MLPLAB_MAX_ALLOC_MB to change it"
        )
        raise error(
            f"{what} would need {_size(nbytes)} of memory, more than the {_size(budget)} "
            f"mlplab allows one array ({why})"
        )


def check_declared(declared: int, actual: int, what: str) -> None:
    """Raise FormatError when a header declares more bytes than the file really holds."""
    if declared > actual:
        raise FormatError(
            f"{what} declares {_size(declared)} of data but only {_size(actual)} are there "
            "(the file is truncated or its header is wrong)"
        )


def read_bounded(stream: IO[bytes], limit: int, what: str) -> bytes:
    """Read all of ``stream`` (e.g. a gzip or zip member) unless it exceeds ``limit`` bytes.

    Read in chunks: ``read(limit)`` would reserve the whole limit up front, whatever the
    stream really holds.
    """
    chunks, total = [], 0
    while chunk := stream.read(min(_CHUNK, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise FormatError(
                f"{what} decompresses to more than {_size(limit)}, more than mlplab allows "
                "(a damaged or hostile file; set MLPLAB_MAX_ALLOC_MB to raise the limit)"
            )
    return b"".join(chunks)


def read_into(stream: IO[bytes], buffer: memoryview, chunk: int = 1 << 20) -> int:
    """Fill ``buffer`` (bytes) from ``stream`` ``chunk`` bytes at a time; the bytes filled.

    For an array whose size was checked (:func:`check_alloc`): no read allocates more than
    ``chunk``, so a decompressing stream never holds a second copy of the data.
    """
    view, got = buffer.cast("B"), 0
    while got < len(view):
        n = stream.readinto(view[got : got + chunk])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 8, 8, 8
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def shown(value: object, limit: int = 80) -> str:
    """A short repr of a value from input, for a message: nested and long values are cut.

    ``repr`` of a YAML alias bomb (a list repeated by reference, level upon level) would be
    gigabytes; this stops at a few levels and items, and at ``limit`` characters.
    """
    text = printable(_SHORT.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def file_kind(mode: int, size: int | None = None) -> str:
    """What a file is, in words, from its ``st_mode`` ("a FIFO (named pipe)", "a folder"; a
    regular file: "a file of 1,234 bytes" when ``size`` is given)."""
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    if stat.S_ISREG(mode):
        return f"a file of {size:,} bytes" if size is not None else "a regular file"
    return "not a regular file"


def _not_regular(path: str | os.PathLike[str], mode: int) -> FormatError:
    if stat.S_ISDIR(mode):
        return FormatError(f"{printable(path)}: a folder, where a data file was expected")
    return FormatError(
        f"{printable(path)}: {file_kind(mode)}, not a regular file; mlplab reads data only from "
        "regular files (a pipe or device may block or never end): copy the data into a file"
    )


def _cannot_open(path: str | os.PathLike[str], exc: OSError) -> FormatError:
    if isinstance(exc, FileNotFoundError):
        return FormatError(f"{printable(path)}: no such file")
    return FormatError(f"{printable(path)}: cannot read: {exc.strerror or exc}")


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of ``path`` (links followed), refusing anything but a regular file.

    For readers that hand the path to a library that opens it itself (h5py, Pillow);
    readers that open the file should use :func:`open_regular`, which cannot be raced.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _cannot_open(path, exc) from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    return info


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` to read bytes, refusing anything that is not a regular file, unblocked.

    The file is opened with ``O_NONBLOCK`` (a FIFO's open would otherwise wait for a writer
    forever; on a regular file the flag does nothing) and checked with ``fstat`` on the
    open descriptor, so a file swapped for a FIFO after a check is refused too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(Path(path), flags)
    except OSError as exc:
        raise _cannot_open(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text_file(
    path: str | os.PathLike[str],
    max_bytes: int,
    what: str,
    *,
    hint: str = "",
    error: type[Exception] = FormatError,
) -> str:
    """The text of a small UTF-8 file ``what`` (e.g. "config file"), or one-line ``error``.

    Only a regular file is read (:func:`open_regular`: a FIFO would block, ``/dev/zero``
    never ends), and at most ``max_bytes`` + 1 bytes of it, so a huge or sparse file costs
    no more memory than the cap; ``hint`` (what the file should be) ends the size message.
    """
    try:
        with open_regular(path) as f:
            data = f.read(max_bytes + 1)
    except FormatError as exc:
        raise error(f"cannot read {what}: {exc}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {printable(path)}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        mib, rest = divmod(max_bytes, 1024**2)
        cap = f"{mib} MiB" if mib and not rest else _size(max_bytes)
        raise error(f"{what} {printable(path)} is over {cap}" + (f"; {hint}" if hint else ""))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {printable(path)} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
