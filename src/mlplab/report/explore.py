"""A report about a dataset itself, before any training: ``explore.html`` in a folder.

Class balance, samples of each class, each class's mean image, the pixel-intensity
histogram and how alike two images of one class are (pairwise correlations)::

    from mlplab.report.explore import DatasetExploration, explore
    explore("mnist")                           # -> runs/explore-mnist/explore.html
    e = DatasetExploration(load_dataset("digits"))
    e.counts, e.means.shape, e.figure("means")
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import dataset as numbers
from ..analysis import figures as F
from ..data import Dataset, load_dataset
from ..errors import ConfigError, did_you_mean
from ..files.atomic import check_outputs, is_page, os_errors
from ..progress import progress_bar
from ..run.outputs import explore_folder
from .page import Figure, Page, Section, cards, paragraph, table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = ["EXPLORE_FIGURES", "DatasetExploration", "explore"]

EXPLORE = "explore.html"
MAX_SAMPLE_ROWS = 20  # classes shown in the samples grid (the first ones beyond that)
PIXELS_NOTE = (
    "Mean and standard deviation over all training pixels: the statistics 'standard' "
    "normalization uses (mlplab fits them on the training split that remains after the "
    "validation hold-out)."
)


class DatasetExploration:
    """The numbers of a dataset page, each computed when first asked for."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        per_class: int = 8,  # samples shown per class
        label: int | str = 0,  # the class whose pairwise correlations are shown
        correlation_samples: int = 300,  # images of that class correlated pairwise
        seed: int = 0,
    ) -> None:
        self.data = dataset
        k = len(dataset.classes)
        if isinstance(label, str):
            if label not in dataset.classes:
                raise ConfigError(
                    f"class '{label}' is not in dataset '{dataset.name}'; its classes are "
                    f"{', '.join(dataset.classes[:20])}{did_you_mean(label, dataset.classes)}"
                )
            label = dataset.classes.index(label)
        if not 0 <= label < k:
            raise ConfigError(f"class index must be 0..{k - 1} for '{dataset.name}'; got {label}")
        if per_class < 1 or correlation_samples < 2:
            raise ConfigError(
                "per_class must be >= 1 and correlation_samples >= 2; "
                f"got {per_class}, {correlation_samples}"
            )
        self.label, self.per_class, self.seed = label, per_class, seed
        self.correlation_samples = correlation_samples

    @property
    def classes(self) -> tuple[str, ...]:
        return self.data.classes

    @functools.cached_property
    def counts(self) -> np.ndarray:
        """int64 (K,): training samples per class."""
        return numbers.class_counts(self.data.train, len(self.classes))

    @functools.cached_property
    def test_counts(self) -> np.ndarray:
        return numbers.class_counts(self.data.test, len(self.classes))

    @functools.cached_property
    def samples(self) -> np.ndarray:
        """(K', per_class) indices into the training split (first 20 classes)."""
        table = numbers.samples_per_class(
            self.data.train, len(self.classes), self.per_class, self.seed
        )
        return table[:MAX_SAMPLE_ROWS]

    @functools.cached_property
    def means(self) -> np.ndarray:
        """(K, C, H, W): each class's mean training image, pixel units."""
        return numbers.class_means(self.data.train, len(self.classes))

    @functools.cached_property
    def histogram(self) -> np.ndarray:
        """(C, 256): training pixels per value and channel."""
        return numbers.intensity_histogram(self.data.train)

    @functools.cached_property
    def correlations(self) -> numbers.Correlations:
        return numbers.pairwise_correlations(
            self.data.train, self.label, self.correlation_samples, self.seed
        )

    def figure(self, name: str) -> MplFigure:
        """The page's figure ``name`` (one of :data:`EXPLORE_FIGURES`)."""
        if name not in EXPLORE_FIGURES:
            raise ConfigError(
                f"unknown figure '{name}'; choose one of {', '.join(EXPLORE_FIGURES)}"
                f"{did_you_mean(name, EXPLORE_FIGURES)}"
            )
        return EXPLORE_FIGURES[name][2](self)


Draw = Callable[[DatasetExploration], "MplFigure"]
EXPLORE_FIGURES: dict[str, tuple[str, str, Draw]] = {  # name: (title, caption, draw)
    "counts": (
        "Samples per class",
        "Training (blue) and test (orange) samples of each class: unequal bars mean an "
        "imbalanced dataset, where accuracy alone can mislead (read per-class recall too).",
        lambda e: F.class_counts_figure(e.counts, e.test_counts, e.classes),
    ),
    "samples": (
        "Random samples of each class",
        "One row per class (seeded random training images): how varied each class is, and "
        "which classes look alike.",
        lambda e: F.class_samples_figure(e.data.train.images.numpy(), e.samples, e.classes),
    ),
    "means": (
        "Each class's mean image",
        "The pixel-wise average of every training image of the class: sharp means are classes "
        "drawn in one consistent way, blurry ones vary in position or shape.",
        lambda e: F.class_means_figure(e.means, e.classes),
    ),
    "intensity": (
        "Pixel intensity histogram",
        "How many training pixels take each value 0..255 (log scale): a spike at 0 is "
        "background, and a spread of values is what normalization rescales.",
        lambda e: F.intensity_figure(e.histogram),
    ),
    "correlations": (
        "How alike two images are",
        "Correlation between the pixels of two images of one class (blue) against two images "
        "of any class (orange): the further right blue sits, the more a class is one template.",
        lambda e: F.correlations_figure(e.correlations, e.classes),
    ),
}


def explore(
    dataset: Dataset | str,
    out: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    **settings: Any,
) -> Path:
    """Write ``explore.html`` (+ ``figures/``) about ``dataset`` (a :class:`Dataset` or a
    name for :func:`load_dataset`) into ``out`` (default ``runs/explore-<name>``: the one
    output root, :mod:`mlplab.run.outputs`); return its path.
    ``settings`` are :class:`DatasetExploration`'s.

    Replaces only an earlier explore page there (and its figures): any other file with those
    names, or anything but a regular file, is refused before any work (WriteError).
    """
    data = load_dataset(dataset, data_dir) if isinstance(dataset, str) else dataset
    folder = Path(out) if out is not None else explore_folder(data.name)
    _check_out(folder)
    e = DatasetExploration(data, **settings)
    page = Page(f"Dataset: {data.name}", f"from {data.origin}")
    c, h, w = data.image_shape
    sizes = [
        ("training images", f"{len(data.train):,}"),
        ("test images", f"{len(data.test):,}"),
        ("image shape", f"{c}x{h}x{w}"),
        ("classes", f"{len(data.classes)}"),
    ]
    page.header = [cards(sizes)]
    page.sections = _sections(e, _figures(e))
    _check_out(folder)  # again: minutes may have passed
    with os_errors(folder / EXPLORE, "choose another --out"):  # a full disk: one line
        return page.write(folder / EXPLORE)


def _figures(e: DatasetExploration) -> dict[str, Figure]:
    """Every figure of the page, drawn and encoded, with its caption for this dataset."""
    classes = e.classes
    figures: dict[str, Figure] = {}
    bar = progress_bar(total=len(EXPLORE_FIGURES), desc="explore", unit="figure")
    try:
        for name, (title, caption, draw) in EXPLORE_FIGURES.items():
            if name == "samples" and len(classes) > MAX_SAMPLE_ROWS:
                caption += f" The first {MAX_SAMPLE_ROWS} of {len(classes)} classes are shown."
            if name == "correlations":
                caption += f" Class {classes[e.label]}, {e.correlations.samples} images."
            png = F.save_png(draw(e), None)
            figures[name] = Figure(f"explore-{name}", title, caption, png)
            bar.update()
    finally:
        bar.close()
    return figures


def _sections(e: DatasetExploration, figures: dict[str, Figure]) -> list[Section]:
    """The page's sections: the figures with the tables of class counts and pixel statistics."""
    total, test_total = max(int(e.counts.sum()), 1), max(int(e.test_counts.sum()), 1)
    count_rows = [
        (name, f"{n:,}", f"{n / total:.1%}", f"{m:,}", f"{m / test_total:.1%}")
        for name, n, m in zip(e.classes, e.counts, e.test_counts, strict=True)
    ]
    header = ["class", "train", "share", "test", "share"]
    counts = table(header, count_rows, scroll=len(count_rows) > 16)
    channels = len(e.histogram)
    names = ["red", "green", "blue"] if channels == 3 else [f"channel {i}" for i in range(channels)]
    statistics = numbers.channel_statistics(e.histogram)
    stat_rows = [
        (n, f"{s['mean']:.4f}", f"{s['std']:.4f}") for n, s in zip(names, statistics, strict=True)
    ]
    pixels = table(["channel", "mean (0..1)", "std (0..1)"], stat_rows)
    return [
        Section("Classes", [figures["counts"], counts]),
        Section("Samples", [figures["samples"]]),
        Section("Mean images", [figures["means"]]),
        Section("Pixels", [figures["intensity"], pixels, paragraph(PIXELS_NOTE)]),
        Section("Similarity", [figures["correlations"]]),
    ]


def _check_out(folder: Path) -> None:
    """``folder`` may take explore.html and its figures (see
    :func:`mlplab.files.atomic.check_outputs`)."""
    figures = [folder / "figures" / f"explore-{name}.png" for name in EXPLORE_FIGURES]
    check_outputs(folder / EXPLORE, figures, ours=is_page, ours_is="an earlier mlplab page")
