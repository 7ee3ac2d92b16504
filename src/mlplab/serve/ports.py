"""Who holds a TCP port, and a free port near it: what `mlplab serve` says when it cannot listen.

Both are best effort and cheap, asked only once binding has failed. :func:`holder` reads
Linux's ``/proc`` (the socket's inode in ``/proc/net/tcp*``, then the process whose open
files include it); elsewhere, or for another user's process without root, it finds nothing
and the message says "another server?" instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

PROC = Path("/proc")
HOLDING = {"0A", "07"}  # /proc/net/tcp states: LISTEN, and CLOSE (bound, not yet listening)
MAX_PROCESSES = 4096  # processes looked through at most: the lookup stays a few ms
SHOWN = 60  # characters of the holder's command line shown


def holder(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process bound to TCP ``port``, or None when unknown."""
    inodes = _socket_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = (p for p in PROC.iterdir() if p.name.isdigit())
    for count, pid_dir in enumerate(pids):
        if count >= MAX_PROCESSES:
            break
        with contextlib.suppress(OSError):  # gone, or another user's: not ours to read
            for fd in (pid_dir / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(pid_dir.name), _command_line(pid_dir)
    return None


def free_port_near(host: str, port: int, tries: int = 20) -> int | None:
    """The first port after ``port`` (from 1024 up) that ``host`` can bind now, or None."""
    start = max(port + 1, 1024)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(start, min(start + tries, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host.strip("[]"), candidate))
            except OSError:
                continue
            return candidate
    return None


def _socket_inodes(port: int) -> set[str]:
    """The inodes of the sockets bound to ``port`` (listening or about to), from /proc/net."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            if len(fields) <= 9 or fields[3] not in HOLDING or fields[9] == "0":
                continue  # a connection, TIME_WAIT (no inode) or a short line
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _command_line(pid_dir: Path) -> str:
    """The process's command line, its program by name, in SHOWN characters ('?': unreadable)."""
    try:
        words = (pid_dir / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    words[0] = os.path.basename(words[0])  # python3, not /root/.pyenv/versions/.../python3
    text = " ".join(w.decode(errors="replace") for w in words) or "?"
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."
