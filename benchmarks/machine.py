"""What every benchmark prints about the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """'<cpu>, <n> cores': the machine line of a benchmark's output."""
    return f"{cpu_name()}, {os.cpu_count()} cores"


def load() -> float | None:
    """The 1-minute load average (Linux), None elsewhere: on 2 cores anything above ~0.6
    means another process shares the cores and the timings are not an idle machine's."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
