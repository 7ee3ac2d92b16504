"""The learning-rate range test's outputs: its plot (loss against rate, the suggestion
marked) and, beside it, its numbers as JSON (``lr_find.png``, ``lr_find.json``).

The test itself is :func:`mlplab.training.lr_find.lr_find`, which computes and writes
nothing; ``mlplab lr-find`` runs it, then :func:`save_lr_find`. Each file replaces only an
earlier one of its kind (:func:`check_out`). The plot needs matplotlib, the ``report``
extra: ``pip install 'mlplab[report]'``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..analysis.figures import TRAIN, VAL, new_figure, save_png
from ..errors import ConfigError
from ..files.atomic import check_folder, check_target, is_figure, os_errors, write_text_atomic
from ..training.lr_find import LRFind

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["check_out", "lr_find_figure", "save_lr_find"]


def lr_find_figure(result: LRFind) -> Figure:
    """Loss against learning rate (log x), raw and smoothed, with the suggestion marked."""
    figure = new_figure(7, 4.2)
    ax = figure.subplots()
    ax.plot(result.lrs, result.losses, color=TRAIN, alpha=0.3, linewidth=1, label="loss per step")
    ax.plot(result.lrs, result.smoothed, color=TRAIN, linewidth=2, label="smoothed")
    suggested = f"suggested {result.suggestion:.1e} ({result.method})"
    ax.axvline(result.suggestion, color=VAL, linestyle="--", label=suggested)
    if result.method == "steepest descent":
        other = f"minimum/10 {result.minimum_over_10:.1e}"
        ax.axvline(result.minimum_over_10, color="0.5", linestyle=":", label=other)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:  # the blow-up at the end must not flatten the interesting part
        low, first = min(finite), finite[0]
        spread = abs(first - low)
        ax.set_ylim(low - 0.1 * spread - 1e-3, max(first, low) + 0.6 * spread + 1e-3)
    ax.set_title(f"learning-rate range test: {result.setup['dataset']}, {result.setup['model']}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return figure


def save_lr_find(result: LRFind, path: str | Path) -> tuple[Path, Path]:
    """Write the plot (PNG) to ``path`` and, next to it, the numbers (same name, ``.json``);
    each replaces only an earlier one (see :func:`check_out`)."""
    png, data = check_out(path)
    with os_errors(png, "choose another --out"):  # a full disk, a read-only folder: one line
        png.parent.mkdir(parents=True, exist_ok=True)
        save_png(lr_find_figure(result), png)
        write_text_atomic(data, json.dumps(result.to_dict(), indent=2) + "\n")
    return png, data


def check_out(path: str | Path) -> tuple[Path, Path]:
    """The plot's path and its numbers' (``.json`` beside it), if both may be written: the plot
    may replace a figure mlplab wrote, the numbers an earlier lr-find record; nothing else,
    nothing but a regular file, never a run's own files (WriteError). Cheap: call it before
    the test."""
    png = Path(path)
    data = png.with_suffix(".json")
    if data == png:
        raise ConfigError(
            f"--out {png}: the plot and its numbers (the same name, .json) would be one file; "
            "give the plot a .png name"
        )
    check_folder(png.parent)
    check_target(png, replaceable=is_figure, ours_is="a figure mlplab wrote", force_flag=None)
    earlier = "the numbers of an earlier lr-find"
    check_target(data, replaceable=_is_record, ours_is=earlier, force_flag=None)
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
