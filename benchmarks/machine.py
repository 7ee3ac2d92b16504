"""What every benchmark prints about the machine it ran on."""

from __future__ import annotations

import os
from pathlib import Path


def describe() -> str:
    """'<cpu>, <n> cores, <ISA> (family F, model M)': the machine line of a benchmark's
    output. Hypervisors give one model name ("AMD EPYC") to several generations, so the
    instruction sets and the family/model numbers say which kind it was (AMD family 25
    model 1: Zen 3, AVX2 only; model 17: Zen 4, AVX-512)."""
    from mlplab.training.machine import cpu_field, cpu_model, describe_cpu

    line = f"{cpu_model()}, {os.cpu_count()} cores, {' '.join(describe_cpu()['isa']) or 'no AVX2'}"
    family, model = cpu_field("cpu family"), cpu_field("model")
    return line + (f" (family {family}, model {model})" if family and model else "")


def load() -> float | None:
    """The 1-minute load average (Linux), None elsewhere: on 2 cores anything above ~0.6
    means another process shares the cores and the timings are not an idle machine's."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
