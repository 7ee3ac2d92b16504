"""What every format reader returns, and the checks they share.

A reader turns a file or folder into :class:`RawSplits`: uint8 images ``(N, C, H, W)`` and
int64 labels per split, class names, and notes on what was detected. The helpers here
turn any array layout into that form and check pixels and labels, so that every format
rejects the same mistakes with the same kind of message: one line naming the file, the
row or key, the bad value and what is accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError, DataError, FormatError, did_you_mean
from ..files.limits import printable
from ..vocab import PIXEL_SCALES
from .dataset import Dataset, check_class_labels, check_two_classes

__all__ = [
    "MAX_LABEL",
    "PIXEL_SCALES",
    "RawSplits",
    "as_images",
    "as_labels",
    "class_names",
    "find_layout",
    "from_arrays",
    "hold_out_test",
    "image_layout",
    "parse_image_shape",
    "to_uint8",
    "with_test",
]

# The largest label read at all (before the class rules): beyond it a float label such as
# 1e20 would wrap around when cast to int64, and no dataset has two billion classes.
MAX_LABEL = 2**31 - 1

Locate = Callable[[tuple[int, ...]], str]  # index into the array as read -> "line 5, column 3"


@dataclass(frozen=True, eq=False)
class RawSplits:
    """A dataset as read from its files: train (and maybe test) images and labels, on the host.

    ``train`` and ``test`` are ``(images, labels)``: uint8 ``(N, C, H, W)`` and int64 ``(N,)``.
    ``notes`` records what the reader detected (pixel scale, layout, resized images).
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    classes: tuple[str, ...]
    origin: str  # the file or folder read
    format: str  # a key of mlplab.data.formats.FORMATS
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for images, labels in self.splits().values():
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
                )
            if labels.dtype != np.int64 or labels.shape != (len(images),):
                raise ValueError(
                    f"labels must be int64 ({len(images)},), got {labels.dtype} {labels.shape}"
                )
        if self.test is not None and self.test[0].shape[1:] != self.train[0].shape[1:]:
            raise FormatError(
                f"{self.origin}: test images are {_shape_text(self.test[0].shape[1:])} but training "
                f"images are {_shape_text(self.train[0].shape[1:])}; both splits need one image shape"
            )
        # labels 0..K-1, two classes at least: the rules of every format (dataset.py)
        labels = {name: split[1] for name, split in self.splits().items()}
        check_class_labels(printable(self.origin), self.classes, labels, error=FormatError)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(d) for d in self.train[0].shape[1:])  # type: ignore[return-value]

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The splits present, by name: ``train`` and, when the files have one, ``test``."""
        return {"train": self.train} | ({"test": self.test} if self.test is not None else {})

    def __repr__(self) -> str:
        test = len(self.test[1]) if self.test is not None else None
        return (
            f"RawSplits(format='{self.format}', train={len(self.train[1])}, test={test}, "
            f"image={_shape_text(self.image_shape)}, classes={len(self.classes)}, origin='{self.origin}')"
        )

    def to_dataset(self, name: str | None = None, reload: dict | None = None) -> Dataset:
        """The tensors the training code takes; a test split is required (see :func:`hold_out_test`)."""
        if self.test is None:
            raise DataError(
                f"{self.origin} has no test split: pass a test file (--test-dataset PATH) or hold "
                "one out of the training data (--test-size 0.2)"
            )
        return Dataset.from_numpy(
            name or self.origin, self.classes, self.origin, self.train, self.test, reload=reload
        )


def hold_out_test(raw: RawSplits, test_size: float = 0.2, seed: int = 0) -> RawSplits:
    """Move a seeded, class-stratified ``test_size`` (fraction < 1, or count) of train into a
    test split.

    For files that ship no test split. The same seed and size always pick the same samples.
    """
    if raw.test is not None:
        raise DataError(f"{raw.origin} already has a test split; holding out another is ambiguous")
    images, labels = raw.train
    n = len(labels)
    n_test = round(test_size * n) if test_size < 1 else int(test_size)
    if not 0 < n_test < n:
        raise ConfigError(
            f"test_size={test_size:g} holds out {n_test} of {n} samples; it must leave at least "
            f"one sample in each split: a fraction from {1 / n:.2g} to {(n - 1) / n:.2g}, or a "
            f"count from 1 to {n - 1}"
        )
    from .splits import stratified_pick  # torch-based; the readers themselves need none

    test = stratified_pick(torch.from_numpy(labels), n_test, seed).numpy()
    keep = np.ones(n, dtype=bool)
    keep[test] = False
    train = np.flatnonzero(keep)
    left = np.unique(labels[train])
    if len(left) < 2 <= len(np.unique(labels)):  # the file has classes the split took away
        fewer = "hold out fewer, or" if n_test > 1 else "the file is too small to split:"
        raise ConfigError(
            f"test_size={test_size:g} holds out {n_test} of {n} samples and leaves the training "
            f"split one class ({int(left[0])}); {fewer} pass a test file (--test-dataset PATH)"
        )
    notes = raw.notes | {
        "test split": f"{n_test} of {n} samples held out, stratified (seed {seed})"
    }
    return RawSplits(
        (images[train], labels[train]),
        (images[test], labels[test]),
        raw.classes,
        raw.origin,
        raw.format,
        notes,
    )


def with_test(raw: RawSplits, test_raw: RawSplits) -> RawSplits:
    """Use every sample of ``test_raw`` (read from a second path) as the test split of ``raw``.

    Labels are matched by class name; a test class missing from training is appended.
    """
    if raw.test is not None:
        raise DataError(
            f"{raw.origin} already has a test split; a second test set ({test_raw.origin}) is ambiguous"
        )
    parts = list(test_raw.splits().values())
    images = np.concatenate([p[0] for p in parts])
    classes = list(raw.classes)
    remap = np.empty(len(test_raw.classes), dtype=np.int64)
    for index, name in enumerate(test_raw.classes):
        if name not in classes:
            classes.append(name)
        remap[index] = classes.index(name)
    labels = remap[np.concatenate([p[1] for p in parts])]
    if images.shape[1:] != raw.image_shape:
        raise FormatError(
            f"{test_raw.origin}: test images are {_shape_text(images.shape[1:])} but the training "
            f"images of {raw.origin} are {_shape_text(raw.image_shape)}; pass image_shape to read both alike"
        )
    notes = raw.notes | {f"test {k}": v for k, v in test_raw.notes.items()}
    notes |= _pixel_scales(raw, raw.train[0], test_raw, images)
    notes["test split"] = f"all of {test_raw.origin}"
    return RawSplits(raw.train, (images, labels), tuple(classes), raw.origin, raw.format, notes)


def _pixel_scales(
    raw: RawSplits, train: np.ndarray, test_raw: RawSplits, test: np.ndarray
) -> dict[str, str]:
    """Two files whose pixels were detected on different scales: each keeps its own when its
    values decide it (a fraction cannot be 0-255, a value above 1 cannot be 0-1; one
    --pixel-scale would fit neither), noted; FormatError when the 0-1 one holds only 0s and
    1s, which either scale reads (white ink or near black), naming the flag that fits both.

    Under pixel_scale "auto" only a file whose largest value is <= 1 is read as 0-1, and a
    0-1 file with nothing but 0 and 1 became uint8 0 and 255 alone: that is the check.
    """
    said = [r.notes.get("pixel scale", "?") for r in (raw, test_raw)]
    scales = [s.split()[0] for s in said]
    if "?" in scales or scales[0] == scales[1]:
        return {}
    files = [(raw, train, said[0]), (test_raw, test, said[1])]
    (ones, pixels, how), (other, _, other_how) = sorted(files, key=lambda f: f[2][:3] != "0-1")
    if np.isin(pixels, (0, 255)).all():
        raise FormatError(
            f"{ones.origin}: every pixel is 0 or 1, read as {how}, but {other.origin} is "
            f"{other_how}: pass --pixel-scale 255 (pixel_scale='255') to read both as 0-255, or "
            f"save {ones.origin} on the other's scale"
        )
    return {
        "pixel scales": f"the files differ: {raw.origin} {scales[0]}, {test_raw.origin} "
        f"{scales[1]}; each is read on its own scale (a fraction cannot be 0-255, a value "
        "above 1 cannot be 0-1)"
    }


def parse_image_shape(value: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"1,28,28"`` or ``(1, 28, 28)`` -> ``(1, 28, 28)``; None stays None."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[0] not in (1, 3):
        raise ConfigError(
            f"image_shape must be C,H,W with C 1 (gray) or 3 (color) and H, W >= 1, e.g. 1,28,28; "
            f"got {value!r}"
        )
    return shape  # type: ignore[return-value]


def image_layout(
    shape: tuple[int, ...],
    source: str,
    image_shape: tuple[int, int, int] | None = None,
    width_name: str = "values per image",
) -> tuple[str, tuple[int, int, int]]:
    """How an array of ``shape`` holds images: ``("flat" | "chw" | "hw" | "hwc", (C, H, W))``.

    Accepted: ``(N, D)`` with D = H*H (gray) or 3*H*H (channel-first color) or D = C*H*W of
    ``image_shape``; ``(N, H, W)``; ``(N, C, H, W)`` and ``(N, H, W, C)`` with C 1 or 3.
    """
    accepted = "(N, D) flat, (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3"
    if len(shape) == 2:
        d = shape[1]
        if image_shape is not None:
            if math.prod(image_shape) != d:
                raise FormatError(
                    f"{source}: {d} {width_name} do not fit image_shape "
                    f"{_shape_text(image_shape)} ({math.prod(image_shape)} values)"
                )
            return "flat", image_shape
        for channels in (1, 3):
            side = math.isqrt(d // channels)
            if side > 1 and side * side * channels == d:
                return "flat", (channels, side, side)
        raise FormatError(
            f"{source}: {d} {width_name} do not make a square image (H*H gray or 3*H*H color); "
            "give the shape, e.g. image_shape=(1, 20, 30) (--image-shape 1,20,30)"
        )
    if len(shape) == 3:
        found = (1, shape[1], shape[2])
        layout = "hw"
    elif len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3):
        found, layout = (shape[1], shape[2], shape[3]), "chw"
    elif len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3):
        found, layout = (shape[3], shape[1], shape[2]), "hwc"
    elif len(shape) == 4 and shape[1] in (1, 3):  # both ends could be channels: ask the hint
        hwc = (shape[3], shape[1], shape[2])
        found, layout = (hwc, "hwc") if image_shape == hwc else (tuple(shape[1:]), "chw")
    else:
        raise FormatError(
            f"{source}: an array of shape {tuple(shape)} does not hold images; accepted: {accepted}"
        )
    if image_shape is not None and found != image_shape:
        raise FormatError(
            f"{source}: images of shape {tuple(shape[1:])} are {_shape_text(found)}, "
            f"not the image_shape {_shape_text(image_shape)} asked for"
        )
    return layout, found  # type: ignore[return-value]


def as_images(
    array: np.ndarray,
    source: str,
    *,
    image_shape: tuple[int, int, int] | None = None,
    pixel_scale: str = "auto",
    locate: Locate | None = None,
    notes: dict[str, str] | None = None,
    width_name: str = "values per image",
) -> np.ndarray:
    """Any accepted layout of 0-255 or 0-1 pixels -> uint8 ``(N, C, H, W)``.

    ``pixel_scale`` is ``"auto"`` (largest value <= 1 means 0-1), ``"255"`` or ``"1"``; 0-1
    values become ``rint(x * 255)``; 0-255 values must be whole numbers. ``locate`` names an
    index of ``array`` in messages (default ``source[i, j, ...]``); the decision on the
    scale is written into ``notes["pixel scale"]``.
    """
    array = np.asarray(array)
    layout, (c, h, w) = image_layout(array.shape, source, image_shape, width_name)
    pixels = to_uint8(array, source, pixel_scale, locate or _index_locator(source), notes)
    n = len(pixels)
    if layout == "hwc":
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
    return pixels.reshape(n, c, h, w)


_ACCEPTED_PIXELS = "pixels must be 0-255 whole numbers or 0-1 floats"


def to_uint8(
    values: np.ndarray,
    source: str,
    pixel_scale: str = "auto",
    locate: Locate | None = None,
    notes: dict[str, str] | None = None,
) -> np.ndarray:
    """Check pixel values and bring them to uint8 0-255, keeping the array's shape.

    ``pixel_scale`` "auto" reads the pixels as 0-1 floats when the largest is <= 1 (or, for
    a test split, on the scale ``notes`` recorded for the training split); the scale used is
    recorded in ``notes["pixel scale"]``.
    """
    scale = str(pixel_scale)
    if scale not in PIXEL_SCALES:
        raise ConfigError(
            f"pixel_scale must be one of {', '.join(PIXEL_SCALES)} (auto: largest value <= 1 "
            f"means 0-1 floats); got {pixel_scale!r}"
        )
    locate = locate or _index_locator(source)
    _check_numbers(values, source, locate)
    high = values.max()
    scale, how = _decide_scale(scale, high, notes)
    if scale == "1":
        if high > 1:
            where = _first(values > 1)
            raise FormatError(
                f"{source}: {locate(where)}: pixel {_num(values[where])} is above 1, but pixels "
                f"are read as 0-1 floats ({how}); for 0-255 pixels set pixel_scale 255 "
                "(--pixel-scale 255)"
            )
        return np.rint(values.astype(np.float32) * 255).astype(np.uint8)
    return _from_0_255(values, high, source, locate)


def _check_numbers(values: np.ndarray, source: str, locate: Locate) -> None:
    """Pixels are numbers, there is at least one, and each is finite and not negative."""
    if values.dtype.kind not in "uif":
        raise FormatError(
            f"{source}: pixels of type {values.dtype} are not numbers; {_ACCEPTED_PIXELS}"
        )
    if values.size == 0:
        raise FormatError(f"{source}: no images (shape {values.shape})")
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            where = _first(~finite)
            bad = values[where]
            what = (
                "is not a number"
                if np.isnan(bad)
                else f"is infinite (or beyond {np.finfo(values.dtype).max:.3g}, the largest "
                f"{values.dtype} value)"
            )
            raise FormatError(
                f"{source}: {locate(where)}: pixel {_num(bad)} {what}; {_ACCEPTED_PIXELS}"
            )
    if values.min() < 0:
        where = _first(values < 0)
        raise FormatError(
            f"{source}: {locate(where)}: pixel {_num(values[where])} is negative; "
            f"{_ACCEPTED_PIXELS}"
        )


def _decide_scale(scale: str, high: float, notes: dict[str, str] | None) -> tuple[str, str]:
    """("1" or "255", how it was decided); a decision made here is recorded in ``notes``."""
    earlier = (notes or {}).get("pixel scale")
    if scale == "auto" and earlier:  # a test split is read on the scale of the training split
        return ("1" if earlier.startswith("0-1") else "255"), "as detected in the training images"
    if scale == "auto":
        scale, how = ("1" if high <= 1 else "255"), f"detected: largest value {_num(high)}"
    else:
        how = f"pixel_scale={scale}"
    if notes is not None:
        notes["pixel scale"] = f"{'0-1' if scale == '1' else '0-255'} ({how})"
    return scale, how


def _from_0_255(values: np.ndarray, high: float, source: str, locate: Locate) -> np.ndarray:
    """Pixels read as 0-255: at most 255, and whole numbers when stored as floats."""
    if high > 255:
        where = _first(values > 255)
        raise FormatError(
            f"{source}: {locate(where)}: pixel {_num(values[where])} is above 255; "
            f"{_ACCEPTED_PIXELS}"
        )
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind == "f":
        off = np.abs(values - np.rint(values)) > 1e-3
        if off.any():
            where = _first(off)
            raise FormatError(
                f"{source}: {locate(where)}: pixel {_num(values[where])} is not a whole number; "
                f"with values above 1 the pixels are read as 0-255, which must be whole numbers "
                "(0-1 floats must all be <= 1)"
            )
        return np.rint(values).astype(np.uint8)
    return values.astype(np.uint8)


def as_labels(values: np.ndarray, source: str, locate: Locate | None = None) -> np.ndarray:
    """Check labels are non-negative whole numbers, one per image -> int64 ``(N,)``."""
    values = np.asarray(values)
    locate = locate or _index_locator(source)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        hint = (
            "; one-hot labels? store the class index (argmax) instead" if values.ndim == 2 else ""
        )
        raise FormatError(
            f"{source}: expected one label per image, shape (N,), got shape {values.shape}{hint}"
        )
    if values.dtype.kind not in "uif":
        raise FormatError(
            f"{source}: labels of type {values.dtype} are not numbers; labels must be class "
            "indices 0..K-1 (whole numbers)"
        )
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.rint(values))
        if bad.any():
            where = _first(bad)
            raise FormatError(
                f"{source}: {locate(where)}: label {_num(values[where])} is not a whole number; "
                "labels must be class indices 0..K-1"
            )
    if len(values) and values.min() < 0:
        where = _first(values < 0)
        raise FormatError(
            f"{source}: {locate(where)}: label {_num(values[where])} is negative; labels must be "
            "class indices 0..K-1"
        )
    if len(values) and values.max() > MAX_LABEL:  # before the cast: 1e20 would wrap around
        where = _first(values > MAX_LABEL)
        raise FormatError(
            f"{source}: {locate(where)}: label {_num(values[where])} is too large; labels must "
            f"be class indices 0..K-1 (at most {MAX_LABEL:,})"
        )
    return values.astype(np.int64)


def class_names(
    labels: Sequence[tuple[np.ndarray, str, Locate | None]],
    classes: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Class names for checked label arrays ``(labels, source, locate)`` of every split,
    the training split first.

    With ``classes`` given, every label must be below ``len(classes)`` (a class may have no
    samples). Without, the names are ``"0".."K-1"`` with K the largest label + 1, and every
    class 0..K-1 must have a training sample: a stray label (1,000,000 in a file of digits)
    would otherwise make a model of a million classes, and 1-based labels one whose class 0
    is never seen. The message names the largest label, where it is, and the fixes.
    """
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if len(set(classes)) != len(classes):
            duplicates = sorted(k for k, v in Counter(classes).items() if v > 1)
            raise ConfigError(f"classes must be distinct names; repeated: {', '.join(duplicates)}")
        for values, source, locate in labels:
            if len(values) and values.max() >= len(classes):
                where = _first(values >= len(classes))
                raise FormatError(
                    f"{source}: {(locate or _index_locator(source))(where)}: label "
                    f"{int(values[where])} is out of range: {len(classes)} class names were "
                    f"given, so labels must be in 0..{len(classes) - 1}"
                )
        return classes
    k = max((int(v.max()) + 1 for v, _, _ in labels if len(v)), default=0)
    if labels and k:
        train, train_source, _ = labels[0]
        check_two_classes(train_source, train, error=FormatError)  # before K names are made
        present = np.unique(train)  # sorted; never np.bincount: K may be huge
        if len(present) < k:
            values, source, locate = next(
                (v, s, f) for v, s, f in labels if len(v) and v.max() == k - 1
            )
            where = _first(values == k - 1)
            absent = np.setdiff1d(np.arange(min(k, len(present) + 3)), present)[:3]
            examples = ", ".join(str(int(c)) for c in absent)
            n_absent = k - len(present)
            some = (
                f"class {examples} has"
                if n_absent == 1
                else f"{n_absent:,} of them (e.g. {examples}) have"
            )
            hint = (
                " (labels counted from 1? subtract 1)"
                if list(absent) == [0] and n_absent == 1
                else ""
            )
            raise FormatError(
                f"{source}: {(locate or _index_locator(source))(where)}: label {k - 1:,} makes "
                f"{k:,} classes (0..{k - 1:,}), but {some} no training sample{hint}; labels must "
                "be class indices 0..K-1 with every class in the training data: fix the row, or "
                "declare the class names (classes) if some classes truly have no samples"
            )
    return tuple(str(i) for i in range(k))


def find_layout(
    keys: Collection[str],
    source: str,
    images_key: str | None = None,
    labels_key: str | None = None,
) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """Which keys of a container (HDF5, npz) hold the images and labels of train and test.

    With ``images_key``/``labels_key`` given: those keys (one split), or the same names in
    groups ``train/`` and ``test/``. Otherwise the first complete layout of
    ``train/{data,images,x}`` + ``train/{target,labels,y}`` (and ``test/...``),
    ``x_train, y_train, x_test, y_test``, ``images, labels``, ``x, y``.
    """
    keys = set(keys)
    if images_key or labels_key:
        ik, lk = images_key or "images", labels_key or "labels"
        candidates = [
            ((ik, lk), None),
            ((f"train/{ik}", f"train/{lk}"), (f"test/{ik}", f"test/{lk}")),
        ]
    else:
        candidates = [
            ((f"train/{i}", f"train/{t}"), (f"test/{i}", f"test/{t}"))
            for i, t in (("data", "target"), ("images", "labels"), ("x", "y"), ("X", "y"))
        ]
        candidates += [
            (("x_train", "y_train"), ("x_test", "y_test")),
            (("X_train", "y_train"), ("X_test", "y_test")),
            (("images", "labels"), None),
            (("x", "y"), None),
            (("X", "y"), None),
        ]
    for train, test in candidates:
        if train[0] in keys and train[1] in keys:
            if test is not None and (test[0] in keys) != (test[1] in keys):
                have, missing = (test[0], test[1]) if test[0] in keys else (test[1], test[0])
                raise FormatError(
                    f"{source}: has '{printable(have)}' but no '{printable(missing)}'; a test "
                    f"split needs both images and labels (keys: {_key_list(keys)})"
                )
            return train, (test if test is not None and test[0] in keys else None)
    if images_key or labels_key:
        missing = next(k for k in candidates[0][0] if k not in keys)
        raise FormatError(
            f"{source}: no key '{printable(missing)}'{printable(did_you_mean(missing, keys))}; "
            f"keys: {_key_list(keys)}"
        )
    raise FormatError(
        f"{source}: no images and labels found under the usual keys (train/data + train/target, "
        f"x_train + y_train, images + labels, x + y); keys: {_key_list(keys)}; name them with "
        "images_key and labels_key (--images-key, --labels-key)"
    )


def from_arrays(
    source: str,
    format: str,
    get: Callable[[str], np.ndarray],
    layout: tuple[tuple[str, str], tuple[str, str] | None],
    *,
    image_shape: str | Sequence[int] | None = None,
    pixel_scale: str = "auto",
    classes: Sequence[str] | None = None,
) -> RawSplits:
    """Read and check the arrays that :func:`find_layout` picked, via ``get(key)``."""
    shape = parse_image_shape(image_shape)
    source = printable(source)  # names in messages are echoed with control characters escaped
    notes: dict[str, str] = {}
    splits, checked = [], []
    for images_key, labels_key in filter(None, layout):
        shown_images, shown_labels = printable(images_key), printable(labels_key)
        images = as_images(
            get(images_key),
            f"{source}: {shown_images}",
            image_shape=shape,
            pixel_scale=pixel_scale,
            notes=notes,
        )
        labels = as_labels(get(labels_key), f"{source}: {shown_labels}")
        if len(images) != len(labels):
            raise FormatError(
                f"{source}: {len(images)} images in '{shown_images}' but {len(labels)} labels "
                f"in '{shown_labels}'; they must pair one to one"
            )
        splits.append((images, labels))
        checked.append((labels, f"{source}: {shown_labels}", None))
        shape = shape or images.shape[1:]  # the test split must match the training images
    notes["keys"] = printable(", ".join(k for pair in filter(None, layout) for k in pair))
    names = class_names(checked, classes)
    return RawSplits(
        splits[0], splits[1] if len(splits) > 1 else None, names, source, format, notes
    )


def _key_list(keys: Collection[str], limit: int = 20) -> str:
    ordered = sorted(keys)
    shown = printable(", ".join(ordered[:limit]) or "none")  # keys come from the file
    return shown + (f", … ({len(ordered)} in all)" if len(ordered) > limit else "")


def _index_locator(source: str) -> Locate:
    del source  # the message already starts with the source
    return lambda index: f"index [{', '.join(str(int(i)) for i in index)}]"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """The first True index of a mask, in row-major order."""
    flat = int(np.argmax(mask.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _num(value: object) -> str:
    """A value as a user wrote it: 3 not 3.0, 0.5 not 0.5000000001."""
    number = float(value)  # type: ignore[arg-type]
    if number.is_integer() and abs(number) < 1e15:  # 1e20 stays 1e+20, not its float digits
        return str(int(number))
    return f"{number:g}"


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)
