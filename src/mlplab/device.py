"""Which device training and evaluation run on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import TrainingError

__all__ = ["isolated", "select_device"]


def select_device(name: str) -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise TrainingError(
            f"train.device='{name}' but this torch ({torch.__version__}) sees "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cpu or --device auto"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(
            f"train.device='{name}' but MPS is not available here; use --device cpu or --device auto"
        )
    return device


@contextlib.contextmanager
def isolated(name: str) -> Iterator[torch.device]:
    """The device ``name`` selects, for one call that may change torch's thread count and
    draw from its global RNG: the caller's thread count and RNG state (CPU, and the
    device's on CUDA) are put back afterwards."""
    device = select_device(name)
    threads = torch.get_num_threads()
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            yield device
    finally:
        torch.set_num_threads(threads)
