"""CPU threads for a training call: ``train.threads``, the ``MLPLAB_THREADS`` environment
variable, the count a resumed run recorded, or an automatic choice from one step's work.

More threads only pay when a step has enough work to share: below ``FLOPS_PER_THREAD`` per
thread OpenMP's hand-offs cost more than they gain, and a thread that has to share its core
with other work stalls the rest at every parallel region. The caller's own count is put
back afterwards by :func:`mlplab.training.device.isolated`.
"""

from __future__ import annotations

import itertools
import math
import os

import torch

from ..config import MAX_THREADS, Config
from ..data import Dataset
from ..errors import ConfigError
from ..files.limits import shown
from ..model.mlp import input_features
from .device import busy_cores

__all__ = ["FLOPS_PER_THREAD", "auto_threads", "env_threads", "set_threads", "step_flops"]

# A step's work (FLOPs) per thread: below it another thread costs more in OpenMP's
# hand-offs than it gains (benchmarks/threads.py, docs/config.md). At the tutorial's 60 MFLOP
# step two threads gain 1.3x on an idle 2-core machine; from ~1 GFLOP steps ~1.6x.
FLOPS_PER_THREAD = 25e6


def set_threads(
    config: Config, data: Dataset, device: torch.device, resumed: int | None = None
) -> None:
    """train.threads, or (0) the automatic choice, which a resumed run takes over from its
    checkpoint (another count could change the floating-point sums)."""
    tc, env = config.train, os.environ.get("MLPLAB_THREADS")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    elif env:
        torch.set_num_threads(env_threads(env))
    elif resumed and device.type == "cpu":
        torch.set_num_threads(resumed)
    elif device.type == "cpu":
        outputs = 1 if data.task == "regression" else len(data.classes)
        features = input_features(data.image_shape, config.model.crop)
        flops = step_flops(features, config.model.hidden, outputs, tc.batch_size)
        available = torch.get_num_threads()
        busy = busy_cores() if flops >= 2 * FLOPS_PER_THREAD and available > 1 else 0.0
        torch.set_num_threads(auto_threads(flops, available, busy))


def step_flops(input_size: int, hidden: list[int], outputs: int, batch_size: int) -> int:
    """Multiply-adds x 2 of one training step: forward, and backward (the first layer needs
    no input gradient)."""
    widths = [input_size, *hidden, outputs]
    layers = [a * b for a, b in itertools.pairwise(widths)]
    return 2 * batch_size * (sum(layers) * 2 + sum(layers[1:]))


def auto_threads(flops: float, available: int, busy: float = 0.0) -> int:
    """Threads for a step of ``flops``: one per FLOPS_PER_THREAD, at most the ``available``
    ones less the cores other work keeps ``busy``, at least 1. A thread that has to share
    its core stalls the others at every parallel region (3-5x slower beside one busy
    process at the tutorial's step), so busy cores are left alone."""
    free = available - math.floor(busy + 0.5)
    return max(1, min(free, int(flops // FLOPS_PER_THREAD)))


def env_threads(value: str) -> int:
    """MLPLAB_THREADS as a thread count, or one line saying what is allowed."""
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if not 1 <= threads <= MAX_THREADS:
        raise ConfigError(
            f"environment variable MLPLAB_THREADS must be a whole number in [1, {MAX_THREADS}]; "
            f"got {shown(value)} (unset it for the automatic choice)"
        )
    return threads
