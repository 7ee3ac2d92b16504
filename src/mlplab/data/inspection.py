"""What a dataset holds and what is wrong with it, before any training: ``mlplab data inspect``.

:func:`inspect_data` reads a path (any format of :mod:`.formats`) or takes
:class:`RawSplits`, and returns a :class:`DataReport`: samples per split, image shape,
pixel range, class counts, notes (what was detected or will be done: a file without a
test split gets one held out by training) and every problem found. Problems are things
that make a score misleading or training pointless: classes missing from a split,
strong class imbalance, test images identical to training images (hashed pixels),
duplicates and conflicting labels within a split, blank images, very dark data.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError
from ..files.limits import printable
from .formats import read_any
from .raw import RawSplits

__all__ = ["IMBALANCE_RATIO", "DataReport", "SplitSummary", "inspect_data", "inspect_source"]

IMBALANCE_RATIO = 3.0  # largest / smallest class count from which imbalance is reported
DARK_MAX = 32  # a largest pixel value below this (of 255) is reported as suspiciously dark


@dataclass(frozen=True)
class SplitSummary:
    """One split: its size, class counts and pixel statistics (uint8 units)."""

    samples: int
    class_counts: tuple[int, ...]
    pixel_min: int
    pixel_max: int
    pixel_mean: float  # in [0, 1]: mean pixel / 255
    blank: int  # images whose pixels all have one value
    duplicates: int  # images identical to an earlier image of the same split
    conflicting: int  # of those, copies that carry another label


@dataclass(frozen=True)
class DataReport:
    """What :func:`inspect_data` found; :meth:`to_text` is what the CLI prints."""

    format: str
    origin: str
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    splits: dict[str, SplitSummary]
    shared: int  # test images identical to a training image
    notes: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        """The report as the CLI prints it; names from the files (the origin, class folders,
        notes) are echoed with control characters escaped, one line each."""
        c, h, w = self.image_shape
        classes = [printable(n) for n in self.classes]
        lines = [
            f"format    {self.format} ({printable(self.origin)})",
            f"images    {c}x{h}x{w} uint8 ({'gray' if c == 1 else 'RGB'})",
            f"classes   {len(self.classes)}: {_clip(' '.join(classes))}",
        ]
        for name, s in self.splits.items():
            lines.append(
                f"{name:<9} {_count(s.samples, 'image')}, pixels {s.pixel_min}..{s.pixel_max}, "
                f"mean {s.pixel_mean:.4f}"
            )
        if "test" not in self.splits:
            lines.append("test      none")
        width = max([len("per class") - 2, *(len(n) for n in classes)])
        lines.append(f"{'per class':<{width + 2}}" + "".join(f"{n:>9}" for n in self.splits))
        for index, name in enumerate(classes):
            counts = "".join(f"{s.class_counts[index]:>9,}" for s in self.splits.values())
            lines.append(f"  {name:<{width}}{counts}")
        for key, value in self.notes.items():
            lines.append(f"note      {printable(key)}: {printable(value)}")
        if not self.problems:
            lines.append("problems  none found")
        else:
            lines.append(f"problems  {len(self.problems)}")
            lines += [f"  - {printable(p)}" for p in self.problems]
        return "\n".join(lines)


def inspect_data(
    source: str | Path | RawSplits, format: str | None = None, **options: Any
) -> DataReport:
    """Read ``source`` (unless it is already :class:`RawSplits`) and report on it."""
    raw = source if isinstance(source, RawSplits) else read_any(source, format, **options)
    k = len(raw.classes)
    summaries, hashes = {}, {}
    for name, (images, labels) in raw.splits().items():
        digests = [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]
        hashes[name] = digests
        flat = images.reshape(len(images), -1)
        first_label: dict[bytes, int] = {}
        duplicates = conflicting = 0
        for digest, label in zip(digests, labels.tolist(), strict=True):
            if digest in first_label:
                duplicates += 1
                conflicting += first_label[digest] != label
            else:
                first_label[digest] = label
        summaries[name] = SplitSummary(
            samples=len(labels),
            class_counts=tuple(int(n) for n in np.bincount(labels, minlength=k)[:k]),
            pixel_min=int(flat.min()),
            pixel_max=int(flat.max()),
            pixel_mean=float(flat.mean(dtype=np.float64) / 255),
            blank=int((flat.min(axis=1) == flat.max(axis=1)).sum()),
            duplicates=duplicates,
            conflicting=conflicting,
        )
    shared = 0
    if "test" in hashes:
        train_set = set(hashes["train"])
        shared = sum(d in train_set for d in hashes["test"])
    return DataReport(
        format=raw.format,
        origin=raw.origin,
        image_shape=raw.image_shape,
        classes=raw.classes,
        splits=summaries,
        shared=shared,
        notes=dict(raw.notes) | _held_out_note(raw),
        problems=tuple(_problems(raw.classes, summaries, shared)),
    )


def inspect_source(
    source: str | Path,
    data_dir: str | Path | None = None,
    format: str | None = None,
    **options: Any,
) -> DataReport:
    """:func:`inspect_data` of a registered dataset's official splits, or of a file or folder.

    ``data_dir``: where to look for a registered dataset first; ``format`` ("auto" or None:
    detected) and ``options`` are for a file or folder. ConfigError for a registered dataset
    that is not a classification: the report is about image classes.
    """
    from . import load_dataset
    from .sources import DATASETS

    if str(source) not in DATASETS:
        return inspect_data(source, None if format in (None, "auto") else format, **options)
    data = load_dataset(str(source), data_dir)
    if data.task != "classification":
        raise ConfigError(f"'{source}' is a {data.task} dataset; inspect reports on image classes")
    train, test = ((s.images.numpy(), s.labels.numpy()) for s in (data.train, data.test))
    return inspect_data(RawSplits(train, test, data.classes, data.origin, str(source)))


def _held_out_note(raw: RawSplits) -> dict[str, str]:
    """A file without a test split is no problem: load_dataset holds one out of train (the
    config's data.test_size, from the one default in DataConfig), so say so as a note."""
    if raw.test is not None:
        return {}
    size = DataConfig().test_size
    return {
        "test split": f"none in the file: training holds out {size:.0%} of train as the test "
        f"split, stratified (data.test_size {size:g}, seeded by data.split_seed; --test-size "
        "to change it), or give one with --test-dataset PATH"
    }


def _problems(classes: tuple[str, ...], splits: dict[str, SplitSummary], shared: int) -> list[str]:
    problems = []
    for name, s in splits.items():
        empty = [c for c, n in zip(classes, s.class_counts, strict=True) if n == 0]
        if empty:
            problems.append(f"{name}: no images of class {_names(empty)}")
        present = [(n, c) for c, n in zip(classes, s.class_counts, strict=True) if n > 0]
        if name == "train" and len(present) > 1:
            (small, small_name), (large, large_name) = min(present), max(present)
            if large >= IMBALANCE_RATIO * small:
                problems.append(
                    f"train: class imbalance: '{large_name}' has {large:,} images, "
                    f"'{small_name}' {small:,} ({large / small:.1f}x); accuracy will favour "
                    "the large classes: look at the per-class accuracy"
                )
        if s.duplicates:
            conflicting = f" ({s.conflicting:,} with a different label)" if s.conflicting else ""
            problems.append(f"{name}: {_count(s.duplicates, 'exact duplicate image')}{conflicting}")
        if s.blank:
            problems.append(
                f"{name}: {_count(s.blank, 'blank image')} (every pixel the same value)"
            )
    if shared:
        test = splits["test"].samples
        problems.append(
            f"test: identical to a training image: {shared:,} of {test:,} images "
            f"({100 * shared / test:.1f}%); the test score overstates accuracy on new images"
        )
    darkest = max(s.pixel_max for s in splits.values())
    if darkest < DARK_MAX:
        problems.append(
            f"the brightest pixel is {darkest} of 255: were the pixels saved on another "
            "scale? (see pixel_scale / --pixel-scale)"
        )
    return problems


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _clip(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
