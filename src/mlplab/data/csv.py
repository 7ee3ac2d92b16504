"""CSV files: one image per row (label column + pixels), or a numeric table for regression.

Two image layouts are recognised: no header with the label in the first column (the
``mnist_train_small.csv`` of Colab: 785 columns), or a header row with a ``label`` column
anywhere (Kaggle's layout). The delimiter (comma, tab, semicolon or spaces) is taken from
the first line; ``.csv.gz`` files are read as they are. Parsing is numpy's C reader: integers first (0-255 files, ~1 s for
60,000 x 785 on one core), decimals when a cell needs them (~7 s). Only when the fast
parse fails is the file read again line by line, to name the first bad line and column.
"""

from __future__ import annotations

import csv as _csv
import gzip
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np

from ..errors import FormatError, did_you_mean
from .raw import RawSplits, as_images, as_labels, class_names, parse_image_shape

__all__ = ["Table", "read_csv", "read_csv_table"]

_ENCODING = "utf-8-sig"  # spreadsheets start their CSVs with a byte-order mark


class Table(NamedTuple):
    """A numeric table: float32 features ``(N, F)``, float32 targets ``(N,)``, feature names."""

    features: np.ndarray
    targets: np.ndarray
    feature_names: tuple[str, ...]


class _Layout(NamedTuple):
    delimiter: str | None  # None: runs of spaces or tabs
    header: tuple[str, ...] | None  # column names, when the first line has them
    skip: int  # lines before the first data row (the header and blank lines above it)


def read_csv(
    path: str | Path,
    *,
    image_shape: str | Sequence[int] | None = None,
    pixel_scale: str = "auto",
    classes: Sequence[str] | None = None,
    labels_key: str | None = None,
) -> RawSplits:
    """Read images from a CSV file: one row per image, a label column and pixel columns.

    The label column is the first one in a file without a header, the ``label`` column
    (or ``labels_key``) in a file with one. Images are square, inferred from the number of
    pixel columns (784 -> 1x28x28, 256 -> 1x16x16, 3072 -> 3x32x32 channel-first), or
    ``image_shape`` (C, H, W). Pixels are 0-255 or 0-1 (see ``pixel_scale``). Class names
    are "0".."K-1" for labels up to K-1, or ``classes``. The file has no test split.
    """
    path = Path(path)
    shape = parse_image_shape(image_shape)
    layout = _sniff(path)
    table = _parse(path, layout)
    n_columns = table.shape[1]
    if n_columns < 2:
        raise FormatError(
            f"{path}: {n_columns} column per row; expected a label column and pixel columns"
        )
    label_index = _label_column(path, layout, labels_key, n_columns)
    lines = _LineNumbers(path, layout.skip)

    def locate_pixel(index: tuple[int, ...]) -> str:
        row, col = index
        return f"line {lines[row]}, column {_column_name(layout, col + (col >= label_index))}"

    def locate_label(index: tuple[int, ...]) -> str:
        return f"line {lines[index[0]]}, column {_column_name(layout, label_index)}"

    notes = {
        "layout": (
            f"header row, labels in column {_column_name(layout, label_index)}"
            if layout.header
            else f"no header, labels in column {label_index + 1}"
        ),
        "cells": "whole numbers" if table.dtype.kind == "i" else "decimals",
    }
    labels = as_labels(table[:, label_index], str(path), locate_label)
    # the usual first-column label needs no copy: a view, made contiguous by the uint8 cast
    pixels = table[:, 1:] if label_index == 0 else np.delete(table, label_index, axis=1)
    images = as_images(
        pixels,
        str(path),
        image_shape=shape,
        pixel_scale=pixel_scale,
        locate=locate_pixel,
        notes=notes,
        width_name="pixel columns (besides the label)",
    )
    names = class_names([(labels, str(path), locate_label)], classes)
    return RawSplits((images, labels), None, names, str(path), "csv", notes)


def read_csv_table(path: str | Path, target: str) -> Table:
    """Read a numeric table with a header row: the ``target`` column, and every other as a feature.

    Every cell must be a finite number (no missing values); the result is float32.
    """
    path = Path(path)
    layout = _sniff(path)
    if layout.header is None:
        raise FormatError(
            f"{path}: no header row; a table needs column names to find the target column '{target}'"
        )
    if target not in layout.header:
        raise FormatError(
            f"{path}: no column '{target}'{did_you_mean(target, layout.header)}; columns: "
            f"{_names(layout.header)}"
        )
    if len(layout.header) < 2:
        raise FormatError(f"{path}: only the target column '{target}'; no feature columns")
    table = _parse(path, layout)
    _check_header(path, layout, table.shape[1])
    if not np.isfinite(table).all():
        lines = _LineNumbers(path, layout.skip)
        row, col = (int(i) for i in np.argwhere(~np.isfinite(table))[0])
        raise FormatError(
            f"{path}: line {lines[row]}, column {_column_name(layout, col)}: missing or "
            f"infinite value ({table[row, col]}); fill or drop such rows first"
        )
    index = layout.header.index(target)
    features = np.delete(table, index, axis=1).astype(np.float32)
    names = layout.header[:index] + layout.header[index + 1 :]
    return Table(features, table[:, index].astype(np.float32), names)


def _sniff(path: Path) -> _Layout:
    """The delimiter, the header (if the first line has names) and the lines to skip."""
    try:
        with _open_text(path) as stream:
            skip, first = 0, ""
            for line in stream:
                if line.strip():
                    first = line.rstrip("\r\n")
                    break
                skip += 1
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not first:
        raise FormatError(f"{path}: empty file; expected one row per image: a label, then pixels")
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)
    cells = _split(first, delimiter)
    if all(_is_number(c) for c in cells if c.strip()):  # a trailing comma is no header
        return _Layout(delimiter, None, skip)
    return _Layout(delimiter, tuple(c.strip().strip('"').strip() for c in cells), skip + 1)


def _parse(path: Path, layout: _Layout) -> np.ndarray:
    """Every data cell as int32 when all are whole numbers, else as float32."""
    for dtype in (np.int32, np.float32):  # numpy parses integers ~5x faster than decimals
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                table = np.loadtxt(
                    path,
                    delimiter=layout.delimiter,
                    dtype=dtype,
                    skiprows=layout.skip,
                    ndmin=2,
                    quotechar='"',
                    encoding=_ENCODING,
                )
        except ValueError as exc:
            error = exc
            continue
        if table.size == 0:
            raise FormatError(f"{path}: no data rows after the header line")
        return table
    _diagnose(path, layout)
    raise FormatError(f"{path}: cannot read the cells as numbers: {error}")


def _diagnose(path: Path, layout: _Layout) -> None:
    """Find the first line with a wrong number of cells or a cell that is not a number."""
    expected = len(layout.header) if layout.header else None
    reference = f"the header (line {layout.skip})" if layout.header else None
    with _open_text(path) as stream:
        if layout.delimiter is None:
            rows = ((n, line.split()) for n, line in enumerate(stream, 1))
        else:
            reader = _csv.reader(stream, delimiter=layout.delimiter, quotechar='"')
            rows = ((reader.line_num, row) for row in reader)
        for line, row in rows:
            if line <= layout.skip or not row:
                continue
            if expected is None:
                expected, reference = len(row), f"line {line}"
            if len(row) != expected:
                raise FormatError(
                    f"{path}: line {line} has {len(row)} columns, expected {expected} as in {reference}"
                )
            for col, cell in enumerate(row):
                where = f"{path}: line {line}, column {_column_name(layout, col)}"
                if not cell.strip():
                    trailing = " (a trailing delimiter?)" if col == len(row) - 1 else ""
                    raise FormatError(f"{where}: empty cell{trailing}; every cell must be a number")
                if not _is_number(cell):
                    raise FormatError(f"{where}: {cell.strip()!r} is not a number")


class _LineNumbers:
    """Data row index -> 1-based line number in the file (blank lines are skipped rows)."""

    def __init__(self, path: Path, skip: int) -> None:
        self.path, self.skip = path, skip

    def __getitem__(self, row: int) -> int:
        # Only used for an error message: reading the file again costs nothing that matters.
        seen = -1
        with _open_text(self.path) as stream:
            for number, line in enumerate(stream, 1):
                if number > self.skip and line.strip("\r\n"):
                    seen += 1
                    if seen == row:
                        return number
        return self.skip + row + 1


def _label_column(path: Path, layout: _Layout, labels_key: str | None, n_columns: int) -> int:
    if layout.header is None:
        if labels_key is None:
            return 0
        if str(labels_key).isdigit() and int(labels_key) < n_columns:
            return int(labels_key)
        raise FormatError(
            f"{path}: no header row, so the label column '{labels_key}' cannot be found by name; "
            f"give its 0-based index (0..{n_columns - 1}), or leave it out for the first column"
        )
    _check_header(path, layout, n_columns)
    wanted = labels_key or "label"
    if wanted in layout.header:
        return layout.header.index(wanted)
    lowered = [name.lower() for name in layout.header]
    if labels_key is None and "label" in lowered:
        return lowered.index("label")
    hint = did_you_mean(wanted, layout.header)
    how = "" if labels_key else "; name the label column with labels_key (--labels-key)"
    raise FormatError(
        f"{path}: no label column '{wanted}' in the header{hint}; columns: {_names(layout.header)}{how}"
    )


def _check_header(path: Path, layout: _Layout, n_columns: int) -> None:
    if layout.header is not None and len(layout.header) != n_columns:
        raise FormatError(
            f"{path}: the header (line {layout.skip}) names {len(layout.header)} columns but the "
            f"rows have {n_columns}"
        )


def _column_name(layout: _Layout, index: int) -> str:
    if layout.header and index < len(layout.header):
        return f"{index + 1} ('{layout.header[index]}')"
    return str(index + 1)


def _names(header: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(header[:limit])
    return shown + (f", … ({len(header)} in all)" if len(header) > limit else "")


def _open_text(path: Path) -> TextIO:
    """The file as text; ``.gz`` files decompressed (numpy's parser does the same by name)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding=_ENCODING, errors="replace", newline="")
    return path.open(encoding=_ENCODING, errors="replace", newline="")


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return next(_csv.reader([line], delimiter=delimiter, quotechar='"'))


def _is_number(cell: str) -> bool:
    try:
        float(cell.strip().strip('"'))
    except ValueError:
        return False
    return True
