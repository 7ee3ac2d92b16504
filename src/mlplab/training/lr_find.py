"""The learning-rate range test (Smith 2015, fastai's ``lr_find``): train for a few hundred
steps while the rate grows exponentially, and read a good rate off the loss curve.

``lr_find(config)`` builds exactly what ``train(config)`` would (the same data split,
normalization, model initialization and optimizer, from the same seeds) and takes
``steps`` optimizer steps on augmented training batches, each the very step training takes
(:func:`mlplab.training.loop.training_step`: the run's precision, loss, label smoothing, L1 term and
update), step ``i`` at rate
``start * (end / start) ** (i / (steps - 1))``. The loss is smoothed by a bias-corrected
exponential moving average (weight ``smoothing`` on the past); the test stops early once
the smoothed loss exceeds ``stop_factor`` times its lowest value (the rate is too high).

The suggestion is the rate of the **steepest descent of the smoothed loss** (most
negative slope against log rate) between the start and the loss's minimum: where the
loss falls fastest, training makes the quickest progress while still stable. The other
common rule, the rate at the minimum divided by 10, is reported beside it (and is the
suggestion when the curve is too short to have a slope before its minimum).

Nothing is written to a run directory, and the caller's global RNG and thread count are
left as they were (like ``train``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..config import Config
from ..data import Dataset, Normalization, load_configured
from ..data.splits import run_splits
from ..errors import ConfigError, TrainingError
from ..files.atomic import check_folder, check_target, is_png, os_errors, write_text_atomic
from ..model.mlp import MLP
from .batches import Augmentation, iterate_batches
from .device import isolated
from .loop import seed_streams, set_threads, training_step
from .optim import make_optimizer, set_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
        return (
            f"lr-find  {len(self.lrs)} of {s['steps']} steps, lr {self.lrs[0]:.0e} to {self.lrs[-1]:.1e} "
            f"({s['optimizer']}, batch {s['batch_size']}, {s['dataset']}, {s['model']}): {self.stopped}\n"
            f"suggested lr {self.suggestion:.1e} ({self.method} of the smoothed loss; {other})"
        )

    def figure(self) -> Figure:
        """Loss against learning rate (log x), raw and smoothed, with the suggestion marked."""
        from ..analysis.figures import TRAIN, VAL, _figure

        figure = _figure(7, 4.2)
        ax = figure.subplots()
        ax.plot(self.lrs, self.losses, color=TRAIN, alpha=0.3, linewidth=1, label="loss per step")
        ax.plot(self.lrs, self.smoothed, color=TRAIN, linewidth=2, label="smoothed")
        ax.axvline(self.suggestion, color=VAL, linestyle="--",
                   label=f"suggested {self.suggestion:.1e} ({self.method})")  # fmt: skip
        if self.method == "steepest descent":
            ax.axvline(self.minimum_over_10, color="0.5", linestyle=":",
                       label=f"minimum/10 {self.minimum_over_10:.1e}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:  # the blow-up at the end must not flatten the interesting part
            low, first = min(finite), finite[0]
            ax.set_ylim(
                low - 0.1 * abs(first - low) - 1e-3, max(first, low) + 0.6 * abs(first - low) + 1e-3
            )
        ax.set_title(f"learning-rate range test: {self.setup['dataset']}, {self.setup['model']}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        return figure

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the plot (PNG) and, next to it, the numbers (same name, ``.json``); each
        replaces only an earlier one (see :func:`check_out`)."""
        from ..analysis.figures import save_png

        png, data = check_out(path)
        with os_errors(png, "choose another --out"):  # a full disk, a read-only folder: one line
            png.parent.mkdir(parents=True, exist_ok=True)
            save_png(self.figure(), png)
            write_text_atomic(data, json.dumps(self.to_dict(), indent=2) + "\n")
        return png, data


def check_out(path: str | Path) -> tuple[Path, Path]:
    """The plot's path and its numbers' (``.json`` beside it), if both may be written: the plot
    may replace a PNG image, the numbers an earlier lr-find record; nothing else, nothing but
    a regular file, never a run's own files (WriteError). Cheap: call it before the test."""
    png = Path(path)
    data = png.with_suffix(".json")
    if data == png:
        raise ConfigError(
            f"--out {png}: the plot and its numbers (the same name, .json) would be one file; "
            "give the plot a .png name"
        )
    check_folder(png.parent)
    check_target(png, replaceable=is_png, ours_is="a PNG image", force_flag=None)
    check_target(data, replaceable=_is_record, ours_is="the numbers of an earlier lr-find",
                 force_flag=None)  # fmt: skip
    return png, data


def _is_record(path: Path) -> bool:
    """``path`` holds the numbers of an lr-find (a JSON object with its curve and suggestion)."""
    try:
        if path.stat().st_size > 64 << 20:
            return False
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and {"lrs", "losses", "suggestion"} <= record.keys()


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
        regression = tc.loss if data.task == "regression" else None
        model_seed, data_seed = seed_streams(tc.seed)
        train_split, _, _ = run_splits(
            data, config.data.limit, config.data.val_size, config.data.split_seed
        )
        normalization = Normalization.fit(train_split.images, config.data.normalize)
        split = train_split.to(device)
        torch.manual_seed(model_seed)  # inside the forked RNG: the caller's is untouched
        outputs = 1 if regression else len(data.classes)
        model = MLP.from_config(config.model, data.image_shape, outputs).to(device)
        optimizer = make_optimizer(model.parameters(), tc, device)
        step = training_step(model, optimizer, tc, device, regression)  # train's very step
        scale, offset = normalization.affine(device)
        generator = torch.Generator(device).manual_seed(data_seed)
        lrs, losses, smoothed = [], [], []
        average, best, stopped = 0.0, math.inf, f"reached {end:g} after {steps} steps"
        model.train()
        while len(lrs) < steps and not stopped.startswith("stopped"):
            batches = iterate_batches(split, tc.batch_size, scale, offset, generator=generator,
                                      augmentation=Augmentation.of(config.augment))  # fmt: skip
            for x, y in batches:
                lr = start * (end / start) ** (len(lrs) / (steps - 1))
                set_step(optimizer, lr, None)
                loss, _ = step(x, y, len(y))
                value = float(loss.detach())
                average = smoothing * average + (1 - smoothing) * value
                smooth = average / (1 - smoothing ** (len(lrs) + 1))
                lrs.append(lr)
                losses.append(value)
                smoothed.append(smooth)
                best = min(best, smooth)
                if not math.isfinite(value) or smooth > stop_factor * best:
                    stopped = (f"stopped at step {len(lrs)}, lr {lr:.1e}: "
                               + (f"the loss became {value}" if not math.isfinite(value) else
                                  f"smoothed loss {smooth:.3g} > {stop_factor:g} × best {best:.3g}"))  # fmt: skip
                    break
                if len(lrs) == steps:
                    break
            if not lrs:
                raise TrainingError("lr-find: the training split is empty")
    steepest, minimum = _reading(lrs, smoothed)
    setup = {"dataset": data.name, "model": _architecture(model), "optimizer": tc.optimizer,
             "batch_size": tc.batch_size, "seed": tc.seed, "start": start, "end": end,
             "steps": steps, "stop_factor": stop_factor, "smoothing": smoothing}  # fmt: skip
    method = "steepest descent" if steepest is not None else "minimum/10"
    return LRFind(lrs, losses, smoothed, steepest if steepest is not None else minimum / 10,
                  method, steepest, minimum, stopped, setup)  # fmt: skip


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
