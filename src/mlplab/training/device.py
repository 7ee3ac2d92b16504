"""Which device training and evaluation run on."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import ConfigError, TrainingError

__all__ = ["busy_cores", "isolated", "select_device"]


def select_device(
    name: str, option: str = "--device {}", setting: str = "train.device='{}'"
) -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device must exist. ``option`` spells the
    fix a message suggests and ``setting`` the value it names, ``{}`` standing for a value:
    ``--device {}`` and ``train.device='{}'`` for the command line and the config,
    ``device='{}'`` for both in the scikit-learn estimators."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    known = name in ("cpu", "cuda", "mps") or (
        isinstance(name, str) and name.startswith("cuda:") and name[5:].isdecimal()
    )
    if not known:  # torch.device("bogus") is a RuntimeError listing torch's own backends
        raise ConfigError(
            f"device must be one of auto, cpu, cuda, cuda:N, mps ({option.format('...')}); "
            f"got {name!r}"
        )
    instead = f"use {option.format('cpu')} or {option.format('auto')}"
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise TrainingError(
            f"{setting.format(name)} but this torch ({torch.__version__}) sees "
            f"{torch.cuda.device_count()} CUDA device(s); {instead}"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(f"{setting.format(name)} but MPS is not available here; {instead}")
    return device


@contextlib.contextmanager
def isolated(
    name: str, option: str = "--device {}", setting: str = "train.device='{}'"
) -> Iterator[torch.device]:
    """The device ``name`` selects, for one call that may change torch's thread count and
    draw from its global RNG: the caller's thread count and RNG state (CPU, and the
    device's on CUDA) are put back afterwards."""
    device = select_device(name, option, setting)
    threads = torch.get_num_threads()
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            yield device
    finally:
        torch.set_num_threads(threads)


def busy_cores(window: float = 0.1, stat: Path = Path("/proc/stat")) -> float:
    """How many of the CPUs this process may run on other work keeps busy right now: their
    busy share over ``window`` seconds (user, system, interrupts and a VM's stolen time)
    times their count, less this process's own use. 0.0 where the kernel does not say (not
    Linux)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def ticks() -> tuple[int, int, int]:
        busy = total = cpus = 0
        for line in stat.read_text().splitlines():
            name, *values = line.split()
            if not (name.startswith("cpu") and name[3:].isdecimal()):
                continue  # the machine-wide line, and the rest of the file
            if allowed is not None and int(name[3:]) not in allowed:
                continue  # a CPU this process may not use (a container, an affinity mask)
            fields = [int(v) for v in values[:8]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
            busy, total, cpus = busy + sum(fields) - idle, total + sum(fields), cpus + 1
        return busy, total, cpus

    try:
        own0, (busy0, total0, _), start = _cpu_seconds(), ticks(), time.monotonic()
        time.sleep(window)
        own1, (busy1, total1, cpus), end = _cpu_seconds(), ticks(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return 0.0
    if total1 <= total0 or end <= start or not cpus:
        return 0.0
    used = (busy1 - busy0) / (total1 - total0) * cpus
    return max(0.0, used - (own1 - own0) / (end - start))  # this process's threads aside


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
