"""Loss and accuracy curves and a confusion matrix as inline SVG/HTML, drawn by hand.

No matplotlib: a notebook card renders in milliseconds, needs nothing installed, opens no
window and leaves no figure behind. Every text that comes from a run (its name, class
names) is HTML-escaped here.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["COLOURS", "Curves", "confusion_html", "curves_html", "from_history"]

# matplotlib's tab10, so a run has the colour it has in the report's figures
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
WIDTH, HEIGHT = 340, 210  # one chart, px
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 24, 30  # margins, px


@dataclass(frozen=True)
class Curves:
    """One run's per-epoch figures (None where not recorded: no validation, a regression)."""

    name: str
    epochs: Sequence[int]
    train_loss: Sequence[float | None]
    val_loss: Sequence[float | None]
    train_accuracy: Sequence[float | None]
    val_accuracy: Sequence[float | None]
    best_epoch: int | None = None  # the kept epoch, marked with a ring

    def ringed(self) -> str | None:
        """The split whose curves carry the kept epoch's ring: "val", or "train" for a run
        without validation figures there (train.select then watched the training ones)."""
        for split, ys in (("val", self.val_loss), ("train", self.train_loss)):
            pairs = zip(self.epochs, ys, strict=False)
            if any(e == self.best_epoch and _finite(v) for e, v in pairs):
                return split
        return None


def from_history(
    name: str, history: Sequence[Mapping[str, Any]], best_epoch: int | None = None
) -> Curves:
    """The curves of ``metrics.jsonl``'s records (``run.metrics()``, ``result.history``); a
    record without a whole ``epoch`` (a damaged or foreign file) is left out, not an error."""
    history = [r for r in history if _whole(r.get("epoch"))]

    def column(key: str) -> list[float | None]:
        return [_number(r.get(key)) for r in history]

    return Curves(
        name,
        [int(r["epoch"]) for r in history],
        column("train_loss"),
        column("val_loss"),
        column("train_accuracy"),
        column("val_accuracy"),
        best_epoch,
    )


def curves_html(runs: Sequence[Curves], epochs: int | None = None) -> str:
    """Two charts side by side, loss and accuracy (the accuracy chart only when a run has
    accuracies): validation solid, training dashed, one colour per run, the kept epoch
    ringed. ``epochs``: the x axis's end (a live run's planned epochs), else the last one.
    Empty when there is nothing finite to draw; the key names only what is drawn."""
    last = max([epochs or 0, *(max(r.epochs, default=0) for r in runs)])
    charts = [_chart("loss", runs, "loss", last, percent=False)]
    if any(_finite(v) for r in runs for v in (*r.train_accuracy, *r.val_accuracy)):
        charts.append(_chart("accuracy", runs, "accuracy", last, percent=True))
    if not any(charts):
        return ""
    legend = " ".join(
        f'<span style="color:{COLOURS[i % len(COLOURS)]}">&#9632;</span>&nbsp;{html.escape(r.name)}'
        for i, r in enumerate(runs)
    )
    shown = [
        words
        for split, words in (("val", "solid: validation"), ("train", "dashed: training"))
        if any(_finite(v) for r in runs for v in getattr(r, f"{split}_loss"))
    ]
    if any(r.ringed() for r in runs):
        shown.append("ring: kept epoch")
    key = " &middot; ".join(shown)
    head = f"{legend} &middot; {key}" if len(runs) > 1 else key
    return (
        '<div style="display:flex;flex-wrap:wrap;gap:8px">'
        + "".join(charts)
        + f'</div><div style="color:#59636e;font-size:12px">{head}</div>'
    )


def confusion_html(counts: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as an HTML table, rows true classes and columns predicted: the
    diagonal green by its share of its row, mistakes red by their share of their row against
    the worst mistake's (so the few that matter stand out)."""
    names = [html.escape(str(c)) for c in classes]
    cell = "padding:2px 6px;text-align:right;font-variant-numeric:tabular-nums;"
    head = "".join(f'<th style="{cell}">{n}</th>' for n in names)
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    worst = max([v for i, r in enumerate(shares) for j, v in enumerate(r) if i != j], default=0)
    rows = []
    for i, row in enumerate(counts):
        cells = []
        for j, count in enumerate(row):
            share = shares[i][j]
            red = 0.7 * share / worst if worst else 0.0
            colour = f"rgba(46,160,67,{share:.2f})" if i == j else f"rgba(207,34,46,{red:.2f})"
            cells.append(f'<td style="{cell}background:{colour}">{int(count)}</td>')
        rows.append(f'<tr><th style="{cell}">{names[i]}</th>{"".join(cells)}</tr>')
    return (
        '<table style="border-collapse:collapse;font-size:12px">'
        f'<tr><th style="{cell}">true \\ predicted</th>{head}</tr>{"".join(rows)}</table>'
    )


# ----- one chart ------------------------------------------------------------------------
def _chart(title: str, runs: Sequence[Curves], kind: str, last: int, percent: bool) -> str:
    series = [
        (i, dashed, r, getattr(r, f"{split}_{kind}"))
        for i, r in enumerate(runs)
        for split, dashed in (("train", True), ("val", False))
    ]
    values = [v for *_, ys in series for v in ys if _finite(v)]
    if not values:
        return ""
    low, high = min(values), max(values)
    if percent:
        low, high = max(0.0, low - 0.02), min(1.0, high + 0.02)
    if high - low < 1e-12:
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    if not math.isfinite(high - low):  # figures near a float's limit: no axis to draw them on
        return ""
    first, last = 1, max(last, 2)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(epoch: float) -> float:
        return LEFT + (epoch - first) / (last - first) * plot_w

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" style="background:#fff;font:11px sans-serif">',
        f'<text x="{LEFT}" y="15" font-weight="bold">{title}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#d0d7de"/>',
    ]
    for tick in _ticks(low, high):
        label = f"{tick:.0%}" if percent else f"{tick:.3g}"
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#eaeef2"/><text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end" fill="#59636e">{label}</text>'
        )
    for tick in _ticks(first, last, whole=True):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'fill="#59636e">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 3}" text-anchor="middle" '
        'fill="#59636e">epoch</text>'
    )
    for i, dashed, run, ys in series:
        colour = COLOURS[i % len(COLOURS)]
        points = [(e, v) for e, v in zip(run.epochs, ys, strict=False) if _finite(v)]
        if not points:
            continue
        path = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in points)
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>'
        )
        split = "train" if dashed else "val"
        ringed = split == run.ringed()
        who = f"{html.escape(run.name)} " if run.name else ""
        for e, v in points:  # a dot per epoch, its figure as a tooltip
            shown = f"{v:.2%}" if percent else f"{v:.4f}"
            ring = ringed and e == run.best_epoch
            parts.append(
                f'<circle cx="{x(e):.1f}" cy="{y(v):.1f}" r="{4.5 if ring else 2}" '
                f'fill="{"#fff" if ring else colour}" stroke="{colour}" stroke-width="1.5">'
                f"<title>{who}epoch {e}: {split} {kind} {shown}</title>"
                "</circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float, whole: bool = False) -> list[float]:
    """About five round numbers between ``low`` and ``high``."""
    span = high - low
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if span / (step * factor) <= 5:
            step *= factor
            break
    if whole:
        step = max(1.0, round(step))
    start = math.ceil(low / step) * step
    return [start + k * step for k in range(int((high - start) / step + 1e-9) + 1)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
