"""Figures: one function per figure, each taking numbers from the analysis modules and
returning a :class:`matplotlib.figure.Figure`.

A figure function only draws: every number it shows was computed by a number function
(:mod:`.predictions`, :mod:`.confusion`, :mod:`.mistakes`, :mod:`.representations`,
:mod:`.weights`, :mod:`.imagine`, :mod:`.dataset`, :mod:`.curves`). Figures are built
without pyplot (no global state, no display needed: the Agg canvas renders them), so they
work the same in a script, a server and a notebook, where they show inline.

matplotlib is the ``report`` extra: ``pip install 'mlplab[report]'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..extras import require
from .confusion import Confusion
from .curves import Curves
from .dataset import Correlations
from .imagine import Imagined
from .mistakes import Picked
from .representations import Embedding
from .weights import FirstLayer, LayerWeights

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "class_counts_figure",
    "class_means_figure",
    "class_samples_figure",
    "compare_curves_figure",
    "compare_weights_figure",
    "confusion_figure",
    "correlations_figure",
    "curves_figure",
    "embedding_figure",
    "first_layer_figure",
    "imagine_figure",
    "intensity_figure",
    "mistakes_figure",
    "per_class_figure",
    "probabilities_figure",
    "samples_figure",
    "save_png",
    "weight_histograms_figure",
]

RIGHT, WRONG = "#1a7f37", "#cf222e"  # green and red that stay apart for most colour vision
TRAIN, VAL, TEST = "#0969da", "#bc4c00", "#8250df"
MAX_TICKS = 30  # class tick labels drawn at most (every k-th beyond that)
MAX_BARS = 20  # classes in a probability bar chart (the most likely, beyond that)
MAX_LEGEND = 20  # classes named in a scatter's legend


def _figure(width: float, height: float) -> Figure:
    """A new Figure (no pyplot), sized in inches, laid out by the constrained engine."""
    figure_module = require("matplotlib.figure", "report", "the report")
    return figure_module.Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_png(figure: Figure, path: Any, dpi: int = 100) -> bytes:
    """Render ``figure`` as PNG bytes (and write them to ``path`` unless it is None)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        from ..files.atomic import write_bytes_atomic

        write_bytes_atomic(path, data)
    return data


# ----- helpers ----------------------------------------------------------------------------
def _class_colors(k: int) -> list[Any]:
    import matplotlib

    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(k)]
    return [matplotlib.colormaps["turbo"](i / max(k - 1, 1)) for i in range(k)]


def _display(image: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """(array, imshow arguments) for one (C, H, W) image: uint8 pixels or floats in [0, 1].
    1 channel: gray; 3: RGB; any other count: the channels' mean, gray."""
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    if image.shape[0] == 3:
        return np.transpose(image / scale, (1, 2, 0)).clip(0, 1), {}
    gray = image.mean(0) / scale if image.shape[0] != 1 else image[0] / scale
    return gray, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}


def _show(ax: Axes, image: np.ndarray) -> None:
    array, kwargs = _display(image)
    ax.imshow(array, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(
    n: int, image_shape: Sequence[int], cols: int | None = None, cell: float = 1.25,
    title_lines: int = 1,
) -> tuple[Figure, list[Axes]]:  # fmt: skip
    """A figure of ``n`` image panels in rows of ``cols``, each ``cell`` inches wide,
    tall enough for the image's aspect and ``title_lines`` lines of title."""
    n = max(n, 1)
    cols = cols or min(n, max(1, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    _, h, w = image_shape
    height = cell * h / w + 0.17 * title_lines
    figure = _figure(cols * cell, rows * height + 0.3)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return figure, axes[:n]


def _class_ticks(ax: Axes, classes: Sequence[str], axis: str) -> None:
    k = len(classes)
    step = max(1, math.ceil(k / MAX_TICKS))
    ticks = list(range(0, k, step))
    labels = [classes[i] for i in ticks]
    if axis == "x":
        ax.set_xticks(ticks, labels, rotation=90 if max(map(len, labels), default=0) > 2 else 0)
    else:
        ax.set_yticks(ticks, labels)


def _empty(figure: Figure, text: str) -> Figure:
    figure.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)
    return figure


# ----- training curves --------------------------------------------------------------------
def curves_figure(curves: Curves) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training and validation; the kept (best)
    epoch is marked and the kept weights' test score is drawn at it."""
    figure = _figure(10, 3.8)
    if len(curves.epochs) == 0:
        return _empty(figure, "no epochs recorded (metrics.jsonl is empty)")
    loss_ax, acc_ax = figure.subplots(1, 2)
    marker = "o" if len(curves.epochs) <= 20 else None
    for ax, train, val, test, what in (
        (loss_ax, curves.train_loss, curves.val_loss, curves.test_loss, "loss"),
        (acc_ax, curves.train_accuracy * 100, curves.val_accuracy * 100,
         None if curves.test_accuracy is None else curves.test_accuracy * 100, "accuracy (%)"),
    ):  # fmt: skip
        ax.plot(curves.epochs, train, color=TRAIN, marker=marker, ms=3, label="train")
        if curves.has_validation:
            ax.plot(curves.epochs, val, color=VAL, marker=marker, ms=3, label="validation")
        if curves.best_epoch is not None:
            ax.axvline(curves.best_epoch, color="0.5", ls=":", lw=1,
                       label=f"kept: epoch {curves.best_epoch}")  # fmt: skip
            if test is not None:
                text = f"{test:.2f}%" if "accuracy" in what else f"{test:.4f}"
                ax.plot([curves.best_epoch], [test], marker="*", ms=13, color=TEST, ls="none",
                        label=f"test {text}")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if len(curves.epochs) <= 20:
            ax.set_xticks(curves.epochs)
        else:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_title("loss (lower is better)")
    acc_ax.set_title("accuracy (higher is better)")
    if curves.name:
        figure.suptitle(curves.name)
    return figure


def compare_curves_figure(runs: Sequence[Curves]) -> Figure:
    """Validation (solid) and training (dashed) loss and accuracy of several runs, overlaid."""
    figure = _figure(11, 4.2)
    loss_ax, acc_ax = figure.subplots(1, 2)
    colors = _class_colors(max(len(runs), 1))
    for curves, color in zip(runs, colors, strict=False):
        for ax, train, val in ((loss_ax, curves.train_loss, curves.val_loss),
                               (acc_ax, curves.train_accuracy * 100, curves.val_accuracy * 100)):  # fmt: skip
            ax.plot(curves.epochs, train, color=color, ls="--", lw=1, alpha=0.8)
            label = curves.name
            if curves.test_accuracy is not None:
                label += f" (test {curves.test_accuracy:.2%})"
            if curves.has_validation:
                ax.plot(curves.epochs, val, color=color, lw=2, label=label)
            else:
                ax.plot([], [], color=color, lw=2, label=label)
            if curves.best_epoch is not None and curves.has_validation:
                i = int(np.searchsorted(curves.epochs, curves.best_epoch))
                if i < len(val):
                    ax.plot([curves.best_epoch], [val[i]], marker="o", color=color, ms=6)
    from matplotlib.ticker import MaxNLocator

    loss_ax.set_title("loss: validation solid, training dashed")
    acc_ax.set_title("accuracy (%): validation solid, training dashed")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.legend(fontsize=8)
    return figure


# ----- confusion and per-class scores --------------------------------------------------------
def confusion_figure(confusion: Confusion) -> Figure:
    """Row-normalized confusion matrix (colour: fraction of the true class) with the counts
    written in each non-empty cell (up to 20 classes)."""
    k = len(confusion.classes)
    side = min(max(4.5, 0.45 * k + 2), 11)
    figure = _figure(side + 1.2, side)
    ax = figure.subplots()
    normalized = confusion.normalized
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                count = confusion.counts[i, j]
                if count:
                    ax.text(j, i, f"{count}", ha="center", va="center", fontsize=8 if k <= 12 else 6,
                            color="white" if normalized[i, j] > 0.5 else "black")  # fmt: skip
    _class_ticks(ax, confusion.classes, "x")
    _class_ticks(ax, confusion.classes, "y")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{confusion.samples:,} samples, accuracy {confusion.accuracy:.2%}")
    return figure


def per_class_figure(confusion: Confusion) -> Figure:
    """Precision, recall and F1 of each class, side by side."""
    k = len(confusion.classes)
    figure = _figure(min(max(6, 0.45 * k + 2), 16), 3.6)
    ax = figure.subplots()
    x = np.arange(k)
    if k <= 40:
        width = 0.27
        for shift, values, name, color in ((-width, confusion.precision, "precision", TRAIN),
                                           (0, confusion.recall, "recall", VAL),
                                           (width, confusion.f1, "F1", TEST)):  # fmt: skip
            ax.bar(x + shift, values, width, label=name, color=color)
    else:
        for values, name, color in ((confusion.precision, "precision", TRAIN),
                                    (confusion.recall, "recall", VAL), (confusion.f1, "F1", TEST)):  # fmt: skip
            ax.plot(x, values, marker=".", ls="none", label=name, color=color)
    low = float(min(confusion.precision.min(), confusion.recall.min(), confusion.f1.min()))
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    _class_ticks(ax, confusion.classes, "x")
    ax.set_xlabel("class")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure


# ----- samples and mistakes --------------------------------------------------------------------
def mistakes_figure(picked: Picked) -> Figure:
    """A grid of wrong predictions, each titled with the true class (its probability) and the
    predicted class (its probability)."""
    if len(picked) == 0:
        return _empty(_figure(6, 1.5), "no mistakes: every sample was predicted right")
    figure, axes = _grid(len(picked), picked.images.shape[1:], title_lines=2, cell=1.35)
    for ax, i in zip(axes, range(len(picked)), strict=True):
        _show(ax, picked.images[i])
        t, p = picked.labels[i], picked.predicted[i]
        ax.set_title(
            f"true {picked.classes[t]} ({picked.true_probability[i]:.2f})\n"
            f"pred {picked.classes[p]} ({picked.predicted_probability[i]:.2f})",
            fontsize=7, color=WRONG,
        )  # fmt: skip
    return figure


def samples_figure(picked: Picked) -> Figure:
    """A grid of predictions, green when right and red when wrong (wrong ones also name the
    true class)."""
    figure, axes = _grid(len(picked), picked.images.shape[1:], cols=min(len(picked), 9),
                         title_lines=2, cell=1.15)  # fmt: skip
    for ax, i in zip(axes, range(len(picked)), strict=True):
        _show(ax, picked.images[i])
        ok = bool(picked.correct[i])
        p = picked.predicted[i]
        title = f"{picked.classes[p]} ({picked.predicted_probability[i]:.2f})"
        title += "\n" if ok else f"\ntrue {picked.classes[picked.labels[i]]}"
        ax.set_title(title, fontsize=7, color=RIGHT if ok else WRONG)
        for spine in ax.spines.values():
            spine.set_edgecolor(RIGHT if ok else WRONG)
            spine.set_linewidth(2)
    return figure


def probabilities_figure(
    picked: Picked, top: int = MAX_BARS, empty: str = "no samples to show"
) -> Figure:
    """For each sample: the image, the model's probability for each class, and the
    log-probabilities (which show how far the true class was from winning). Beyond ``top``
    classes only the ``top`` most likely are drawn."""
    n = len(picked)
    if n == 0:
        return _empty(_figure(6, 1.5), empty)
    k = len(picked.classes)
    figure = _figure(11, 1.9 * n + 0.3)
    axes = figure.subplots(n, 3, squeeze=False, width_ratios=[1, 3, 3])
    for row, i in enumerate(range(n)):
        image_ax, p_ax, logp_ax = axes[row]
        _show(image_ax, picked.images[i])
        t, p = int(picked.labels[i]), int(picked.predicted[i])
        image_ax.set_title(f"true {picked.classes[t]}\npred {picked.classes[p]}", fontsize=8)
        shown = np.arange(k)
        if k > top:  # the most likely classes, always with the true one
            shown = np.argsort(-picked.probabilities[i], kind="stable")[:top]
            if t not in shown:
                shown[-1] = t
            shown = np.sort(shown)
        colors = [RIGHT if c == t else WRONG if c == p else "0.6" for c in shown]
        names = [picked.classes[c] for c in shown]
        x = np.arange(len(shown))
        p_ax.bar(x, picked.probabilities[i, shown], color=colors)
        p_ax.set_ylim(0, 1)
        p_ax.set_ylabel("probability", fontsize=8)
        logp = picked.log_probabilities[i, shown]
        logp_ax.bar(x, logp, color=colors)
        logp_ax.set_ylabel("log-probability", fontsize=8)
        floor = float(np.min(logp[np.isfinite(logp)], initial=-1.0))
        logp_ax.set_ylim(min(floor * 1.05, -1.0), 0)
        for ax in (p_ax, logp_ax):
            ax.set_xticks(x, names, fontsize=7, rotation=90 if max(map(len, names)) > 2 else 0)
            ax.grid(axis="y", alpha=0.3)
            ax.tick_params(axis="y", labelsize=7)
    axes[0][1].set_title("probabilities (green: true class, red: predicted)", fontsize=9)
    axes[0][2].set_title("log-probabilities (0 = certain)", fontsize=9)
    return figure


# ----- representations -------------------------------------------------------------------------
def embedding_figure(embeddings: dict[str, Embedding] | Sequence[Embedding]) -> Figure:
    """Scatter plots of 2-D maps (e.g. logits and last hidden layer), one point per sample,
    coloured by true class; an empty map shows its note instead."""
    maps = list(embeddings.values()) if isinstance(embeddings, dict) else list(embeddings)
    figure = _figure(6 * len(maps), 5.6)
    axes = figure.subplots(1, len(maps), squeeze=False)[0]
    classes = maps[0].classes if maps else ()
    colors = _class_colors(len(classes))
    handles = []
    for ax, m in zip(axes, maps, strict=True):
        what = {"logits": "output logits", "hidden": "last hidden layer"}.get(m.layer, m.layer)
        title = f"{'t-SNE' if m.method == 'tsne' else 'PCA'} of the {what}"
        if m.empty:
            ax.set_axis_off()
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, m.note, ha="center", va="center", wrap=True, fontsize=10,
                    transform=ax.transAxes)  # fmt: skip
            continue
        point_size = max(1.5, min(12.0, 6000 / len(m.points)))
        order = np.random.default_rng(0).permutation(len(m.points))  # no class drawn on top
        ax.scatter(m.points[order, 0], m.points[order, 1], s=point_size, linewidths=0,
                   c=[colors[c] for c in m.labels[order]], alpha=0.8, rasterized=True)  # fmt: skip
        if m.explained_variance:
            ax.set_xlabel(f"PC1 ({m.explained_variance[0]:.0%} of variance)")
            ax.set_ylabel(f"PC2 ({m.explained_variance[1]:.0%} of variance)")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(title + (f"\n{m.note}" if m.note else ""), fontsize=10)
        if not handles and len(classes) <= MAX_LEGEND:
            handles = [ax.scatter([], [], color=colors[c], s=25, label=classes[c])
                       for c in range(len(classes))]  # fmt: skip
    if handles:
        figure.legend(handles=handles, loc="outside right center", fontsize=8, title="class")
    elif classes and len(classes) > MAX_LEGEND:
        figure.suptitle(f"{len(classes)} classes: colours run through the class order (no legend)",
                        fontsize=9)  # fmt: skip
    return figure


# ----- weights ---------------------------------------------------------------------------------------
def first_layer_figure(first: FirstLayer, mode: str = "auto") -> Figure:
    """The first layer's units as input-shaped images.

    One channel: a diverging map per unit, symmetric about 0 (red positive, blue negative).
    Three channels: ``mode="rgb"`` (the ``auto`` choice) shows each unit as a colour image,
    min-max normalized per unit; ``"channels"`` shows each channel of each unit as its own
    diverging map.
    """
    if mode not in ("auto", "rgb", "channels"):
        from ..errors import ConfigError

        raise ConfigError(f"first-layer mode must be one of auto, rgb, channels; got '{mode}'")
    n, c = len(first.units), first.weights.shape[1]
    channels = mode == "channels" or c not in (1, 3)  # rgb needs 3 channels; 1 is always one map
    if n == 0:
        return _empty(_figure(6, 1.5), "no units")
    if channels:
        figure, axes = _grid(n * c, first.weights.shape[1:], cols=c * min(n, max(1, 8 // c)))
    else:
        figure, axes = _grid(n, first.weights.shape[1:])
    for u in range(n):
        w = first.weights[u]
        if channels:
            for ch in range(c):
                ax = axes[u * c + ch]
                limit = float(np.abs(w[ch]).max()) or 1.0
                ax.imshow(w[ch], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{first.names[u]} ch{ch}", fontsize=7)
            continue
        ax = axes[u]
        if c == 3:
            low, high = float(w.min()), float(w.max())
            ax.imshow(np.transpose((w - low) / ((high - low) or 1.0), (1, 2, 0)),
                      interpolation="nearest")  # fmt: skip
        else:
            limit = float(np.abs(w).max()) or 1.0
            ax.imshow(w[0], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(first.names[u], fontsize=7)
    return figure


def weight_histograms_figure(layers: Sequence[LayerWeights]) -> Figure:
    """A histogram of each layer's weights with its mean, std, min, max and L2 norm."""
    n = len(layers)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    figure = _figure(4.2 * cols, 3.2 * rows)
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    for ax, layer in zip(axes, layers, strict=False):
        ax.stairs(layer.counts, layer.edges, fill=True, color=TRAIN, alpha=0.8)
        ax.axvline(layer.mean, color="black", lw=1, ls=":")
        ax.set_title(f"{layer.name}  {layer.shape[0]}x{layer.shape[1]}", fontsize=10)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
        ax.text(0.98, 0.97,
                f"mean {layer.mean:+.4f}\nstd {layer.std:.4f}\nmin {layer.min:+.3f}\n"
                f"max {layer.max:+.3f}\nL2 {layer.l2:.2f}",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, family="monospace",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})  # fmt: skip
        ax.grid(alpha=0.3)
    return figure


def compare_weights_figure(runs: dict[str, Sequence[LayerWeights]]) -> Figure:
    """Each layer's weight histogram (as a density) for several runs, overlaid by layer
    position; each panel's legend gives every run's layer, shape, std and L2 norm."""
    depth = max((len(v) for v in runs.values()), default=0)
    cols = min(max(depth, 1), 3)
    rows = math.ceil(max(depth, 1) / cols)
    figure = _figure(4.4 * cols, 3.3 * rows + 0.5)
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[depth:]:
        ax.set_axis_off()
    colors = _class_colors(max(len(runs), 1))
    for layers, color in zip(runs.values(), colors, strict=False):
        for ax, layer in zip(axes, layers, strict=False):
            density = layer.counts / max(layer.counts.sum(), 1) / np.diff(layer.edges)
            ax.stairs(density, layer.edges, color=color, lw=1.5,
                      label=f"{layer.name} {layer.shape[0]}x{layer.shape[1]}: std {layer.std:.3f}, L2 {layer.l2:.1f}")  # fmt: skip
    for i, ax in enumerate(axes[:depth]):
        ax.set_title(f"layer {i + 1}", fontsize=10)
        ax.set_xlabel("weight")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    handles = [
        axes[0].plot([], [], color=c, lw=2, label=n)[0] for n, c in zip(runs, colors, strict=False)
    ]
    figure.legend(handles=handles, loc="outside upper center", fontsize=8, ncols=min(len(runs), 3))
    return figure


# ----- imagining a class --------------------------------------------------------------------------
def imagine_figure(*imagined: Imagined) -> Figure:
    """One row per method (random-noise search, gradient ascent), one column per class; each
    image titled with the model's probability for its class."""
    rows = [m for m in imagined if len(m.targets)]
    if not rows:
        return _empty(_figure(6, 1.5), "nothing imagined")
    n = max(len(m.targets) for m in rows)
    cols = min(n, 10)
    lines_per_method = math.ceil(n / cols)
    figure, axes = _grid(cols * lines_per_method * len(rows), rows[0].images.shape[1:], cols=cols,
                         cell=1.15, title_lines=1)  # fmt: skip
    labels = {"random": "random noise search", "ascent": "gradient ascent"}
    for r, m in enumerate(rows):
        base = r * cols * lines_per_method
        for i in range(len(m.targets)):
            ax = axes[base + i]
            _show(ax, m.images[i])
            ax.set_title(f"{m.classes[m.targets[i]]} ({m.target_probability[i]:.2f})", fontsize=7)
            if i % cols == 0:
                ax.set_ylabel(labels.get(m.method, m.method), fontsize=8)
        for j in range(len(m.targets), cols * lines_per_method):
            axes[base + j].set_axis_off()
    return figure


# ----- a dataset on its own --------------------------------------------------------------------------
def class_counts_figure(
    train: np.ndarray, test: np.ndarray | None, classes: Sequence[str]
) -> Figure:
    """Samples per class in the training and test splits."""
    k = len(classes)
    figure = _figure(min(max(6, 0.4 * k + 2), 16), 3.4)
    ax = figure.subplots()
    x = np.arange(k)
    width = 0.4 if test is not None else 0.8
    ax.bar(x - (width / 2 if test is not None else 0), train, width, label=f"train ({int(train.sum()):,})",
           color=TRAIN)  # fmt: skip
    if test is not None:
        ax.bar(x + width / 2, test, width, label=f"test ({int(test.sum()):,})", color=VAL)
    _class_ticks(ax, classes, "x")
    ax.set_ylabel("samples")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def class_samples_figure(images: np.ndarray, table: np.ndarray, classes: Sequence[str]) -> Figure:
    """Rows of samples, one row per class (``table[k]`` indexes ``images``; -1 is a gap)."""
    k, per = table.shape
    shape = images.shape[1:]
    _, h, w = shape
    cell = 0.9
    figure = _figure(per * cell + 1.2, k * cell * h / w + 0.3)
    axes = figure.subplots(k, per, squeeze=False)
    for c in range(k):
        for j in range(per):
            ax = axes[c][j]
            if table[c, j] >= 0:
                _show(ax, images[table[c, j]])
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(classes[c], fontsize=8, rotation=0, ha="right", va="center")
    return figure


def class_means_figure(means: np.ndarray, classes: Sequence[str]) -> Figure:
    """Each class's mean image (pixel units 0..255 shown on one shared scale)."""
    figure, axes = _grid(len(means), means.shape[1:], cols=min(len(means), 10))
    for ax, mean, name in zip(axes, means, classes, strict=False):
        _show(ax, (mean / 255.0).astype(np.float32))
        ax.set_title(name, fontsize=8)
    return figure


def intensity_figure(histogram: np.ndarray) -> Figure:
    """How many pixels take each value 0..255 (log count axis), per channel."""
    figure = _figure(7, 3.4)
    ax = figure.subplots()
    names = (
        ["red", "green", "blue"]
        if len(histogram) == 3
        else [f"channel {c}" for c in range(len(histogram))]
    )
    colors = ["#cf222e", "#1a7f37", "#0969da"] if len(histogram) == 3 else ["0.3"] * len(histogram)
    for counts, name, color in zip(histogram, names, colors, strict=True):
        ax.stairs(counts, np.arange(257) - 0.5, label=name, color=color,
                  fill=len(histogram) == 1, alpha=0.8 if len(histogram) == 1 else 1.0)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlim(-1, 256)
    ax.set_xlabel("pixel value")
    ax.set_ylabel("pixels (log scale)")
    ax.grid(alpha=0.3)
    if len(histogram) > 1:
        ax.legend(fontsize=8)
    return figure


def correlations_figure(correlations: Correlations, classes: Sequence[str]) -> Figure:
    """Distribution of the correlation between two images of the same class, against two
    images drawn from any class."""
    figure = _figure(7, 3.4)
    ax = figure.subplots()
    bins = np.linspace(-1, 1, 81)
    name = classes[correlations.label]
    for values, median, label, color in (
        (correlations.within, correlations.median_within, f"two images of class {name}", TRAIN),
        (correlations.across, correlations.median_across, "two images of any class", VAL),
    ):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.6, color=color,
                    label=f"{label} (median {median:.2f})")  # fmt: skip
    ax.set_xlabel("Pearson correlation of the pixels")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure
