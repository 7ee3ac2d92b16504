"""The learning-rate range test (Smith 2015, fastai's ``lr_find``): train for a few hundred
steps while the rate grows exponentially, and read a good rate off the loss curve.

``lr_find(config)`` builds exactly what ``train(config)`` would (:func:`build_session`: the
same data split, normalization, model initialization and optimizer, from the same seeds)
and takes ``steps`` optimizer steps on augmented training batches, each the very step
training takes (:func:`mlplab.training.session.training_step`: the run's precision, loss,
label smoothing, L1 term and update), step ``i`` at rate
``start * (end / start) ** (i / (steps - 1))``. The loss is smoothed by a bias-corrected
exponential moving average (weight ``smoothing`` on the past); the test stops early once
the smoothed loss exceeds ``stop_factor`` times its lowest value (the rate is too high).

The suggestion is the rate of the **steepest descent of the smoothed loss** (most
negative slope against log rate) between the start and the loss's minimum: where the
loss falls fastest, training makes the quickest progress while still stable. The other
common rule, the rate at the minimum divided by 10, is reported beside it (and is the
suggestion when the curve is too short to have a slope before its minimum).

Nothing is written (the plot and its numbers are :mod:`mlplab.report.lr_find`'s), and the
caller's global RNG and thread count are left as they were (like ``train``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..data import Dataset, load_configured
from ..errors import ConfigError, TrainingError
from ..model.mlp import MLP
from .device import isolated
from .machine import resolve_precision
from .optim import set_step
from .session import Session, build_session, training_step
from .threads import set_threads

__all__ = ["LRFind", "lr_find"]

# Weight of the past in the moving average: about 10 steps, 0.4 of a decade at the default
# 200 steps over 8 decades. fastai's 0.98 (about 50 steps) lags the raw loss by two decades
# at this density and moved the suggestion 2x too high on digits (2.7e-2 against 1.4e-2).
SMOOTHING = 0.9
SKIP_START = 0.1  # the first tenth of the curve is warm-up noise: no suggestion from it
MIN_POINTS = 5  # points needed between the start and the minimum to trust a slope


@dataclass(frozen=True)
class LRFind:
    """The range test's curve and its reading."""

    lrs: list[float]  # the rate of each step taken
    losses: list[float]  # the training loss of each step (without the L1 term)
    smoothed: list[float]  # bias-corrected exponential moving average of the losses
    suggestion: float  # the suggested learning rate (see ``method``)
    method: str  # "steepest descent" or "minimum/10"
    steepest: float | None  # rate of the steepest descent of the smoothed loss
    minimum: float  # rate of the lowest smoothed loss
    stopped: str  # why the test ended
    setup: dict[str, Any]  # dataset, model, optimizer, batch size, seed, range asked for

    @property
    def minimum_over_10(self) -> float:
        return self.minimum / 10

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "minimum_over_10": self.minimum_over_10}

    def describe(self) -> str:
        """Two lines: how the test went and what it suggests."""
        other = (
            f"minimum/10: {self.minimum_over_10:.1e}"
            if self.method == "steepest descent"
            else "too few points before the minimum for a slope"
        )
        s = self.setup
        asked = f"{len(self.lrs)} of {s['steps']} steps, lr {self.lrs[0]:.0e} to {self.lrs[-1]:.1e}"
        built = f"{s['optimizer']}, batch {s['batch_size']}, {s['dataset']}, {s['model']}"
        return (
            f"lr-find  {asked} ({built}): {self.stopped}\n"
            f"suggested lr {self.suggestion:.1e} ({self.method} of the smoothed loss; {other})"
        )


@dataclass
class _Curve:
    """The test as it goes: each step's rate, loss and smoothed loss, and why it ended."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stopped: str = ""


def lr_find(
    config: Config | None = None,
    *,
    dataset: Dataset | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 200,
    stop_factor: float = 4.0,
    smoothing: float = SMOOTHING,
) -> LRFind:
    """Run the range test for ``config`` (its ``train.lr`` is ignored): see the module's
    docstring. ``dataset`` skips loading, as in :func:`mlplab.train`."""
    config = (config or Config()).validate()
    _check_range(start, end, steps, stop_factor, smoothing)
    tc = config.train
    with isolated(tc.device) as device:
        data = dataset or load_configured(config.data)
        set_threads(config, data, device)
        config, _ = resolve_precision(config, data, device)  # auto: as train would choose
        session = build_session(config, data, device)  # what train would build
        curve = _range_test(session, start, end, steps, stop_factor, smoothing)
    steepest, minimum = _reading(curve.lrs, curve.smoothed)
    setup = {
        "dataset": data.name,
        "model": _architecture(session.model),
        "optimizer": tc.optimizer,
        "batch_size": tc.batch_size,
        "seed": tc.seed,
        "start": start,
        "end": end,
        "steps": steps,
        "stop_factor": stop_factor,
        "smoothing": smoothing,
    }
    return LRFind(
        lrs=curve.lrs,
        losses=curve.losses,
        smoothed=curve.smoothed,
        suggestion=steepest if steepest is not None else minimum / 10,
        method="steepest descent" if steepest is not None else "minimum/10",
        steepest=steepest,
        minimum=minimum,
        stopped=curve.stopped,
        setup=setup,
    )


def _range_test(
    s: Session, start: float, end: float, steps: int, stop_factor: float, smoothing: float
) -> _Curve:
    """Train's step on the session's augmented batches, at an exponentially growing rate,
    until ``steps`` steps or the smoothed loss's blow-up."""
    step = training_step(s)  # train's very step
    s.model.train()
    curve = _Curve()
    average, best = 0.0, math.inf
    for x, y in _passes(s):
        lr = start * (end / start) ** (len(curve.lrs) / (steps - 1))
        set_step(s.optimizer, lr, None)
        loss, _ = step(x, y, len(y))
        value = float(loss.detach())
        average = smoothing * average + (1 - smoothing) * value
        smooth = average / (1 - smoothing ** (len(curve.lrs) + 1))
        curve.lrs.append(lr)
        curve.losses.append(value)
        curve.smoothed.append(smooth)
        best = min(best, smooth)
        if not math.isfinite(value) or smooth > stop_factor * best:
            why = (
                f"the loss became {value}"
                if not math.isfinite(value)
                else f"smoothed loss {smooth:.3g} > {stop_factor:g} × best {best:.3g}"
            )
            curve.stopped = f"stopped at step {len(curve.lrs)}, lr {lr:.1e}: {why}"
            break
        if len(curve.lrs) == steps:
            curve.stopped = f"reached {end:g} after {steps} steps"
            break
    return curve


def _passes(s: Session) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Augmented training batches, pass after pass, each pass in a fresh seeded order."""
    while True:
        taken = 0
        for batch in s.batches():
            taken += 1
            yield batch
        if not taken:
            raise TrainingError("lr-find: the training split is empty")


def _reading(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float]:
    """(rate of the steepest descent before the minimum, or None; rate of the minimum)."""
    values = np.array(smoothed, dtype=np.float64)
    finite = np.isfinite(values)
    low = int(np.argmin(np.where(finite, values, np.inf)))
    first = int(len(values) * SKIP_START)
    if low - first + 1 < MIN_POINTS:
        return None, lrs[low]
    slope = np.gradient(values[: low + 1], np.log10(np.array(lrs[: low + 1])))
    steepest = first + int(np.argmin(slope[first : low + 1]))
    return lrs[steepest], lrs[low]


def _architecture(model: MLP) -> str:
    return f"{'-'.join(map(str, model.widths))} {model.activation}"


def _check_range(
    start: float, end: float, steps: int, stop_factor: float, smoothing: float
) -> None:
    if not (0 < start < end and math.isfinite(end)):
        raise ConfigError(
            f"lr-find needs 0 < --start < --end (learning rates); got start={start:g}, end={end:g}"
        )
    if not isinstance(steps, int) or steps < 10:
        raise ConfigError(f"lr-find --steps must be a whole number >= 10; got {steps!r}")
    if not stop_factor > 1:
        raise ConfigError(f"lr-find --stop-factor must be > 1; got {stop_factor:g}")
    if not 0 <= smoothing < 1:
        raise ConfigError(f"lr-find smoothing must be in [0, 1); got {smoothing:g}")
