"""CSV files: one image per row (label column + pixels), or a numeric table for regression.

Two image layouts are recognised: no header with the label in the first column (the
``mnist_train_small.csv`` of Colab: 785 columns), or a header row with a ``label`` column
anywhere (Kaggle's layout). The delimiter (comma, tab, semicolon or spaces) is taken from
the first line; ``.csv.gz`` files are read as they are. Parsing is numpy's C reader:
integers first (0-255 files, ~1 s for 60,000 x 785 on one core), decimals when a cell
needs them (~7 s). Only when the fast parse fails is the file read again line by line, to
name the first bad line and column.

Bounded by what is real: only a regular file is opened (a FIFO or device is refused before
any read); the text a file holds (decompressed, for ``.gz``) may be at most the memory
budget / :data:`MEMORY_PER_BYTE` (parsing takes up to that many bytes per byte of text);
a line may hold at most :data:`MAX_LINE` characters and :data:`MAX_COLUMNS` cells; text
must be UTF-8 (the message names the first line that is not).
"""

from __future__ import annotations

import codecs
import csv as _csv
import gzip
import io
import os
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple, TextIO

import numpy as np

from ..errors import FormatError, did_you_mean
from ..files.limits import check_alloc, memory_budget, open_regular, printable
from .raw import RawSplits, as_images, as_labels, class_names, parse_image_shape

__all__ = ["MAX_COLUMNS", "MAX_LINE", "MEMORY_PER_BYTE", "Table", "read_csv", "read_csv_table"]

_ENCODING = "utf-8-sig"  # spreadsheets start their CSVs with a byte-order mark
_ERRORS = "mlplab-latin1"  # bytes that are not UTF-8 (see _latin1)


def _latin1(exc: UnicodeError) -> tuple[str, int]:
    """Read bytes that are not UTF-8 as Latin-1: a spreadsheet's Windows-1252 header
    ('größe') keeps its names, and such bytes in a pixel cell are 'not a number' there,
    named by line and column."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_ERRORS, _latin1)
# Peak memory of a read per byte of text: measured 5.9x for the densest file ("0,0,0,..."
# 94 MB, 60,000 x 785: numpy's growing int32 table plus the uint8 images), 2.1x for
# MNIST-like integers, 4.3x for 0-1 decimals (the integer parse fails first).
MEMORY_PER_BYTE = 6
MAX_LINE = 16 * 1024 * 1024  # characters in one line (16 MiB; a 3x512x512 image takes ~3)
MAX_COLUMNS = 1_000_000  # cells in one row: a 3x577x577 image, far past any CSV of images
_CELL = re.compile(r"\S+")


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
            f"{printable(path)}: {n_columns} column per row; expected a label column and pixel columns"
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
            f"{printable(path)}: no header row; a table needs column names to find the target column '{target}'"
        )
    if target not in layout.header:
        raise FormatError(
            f"{printable(path)}: no column '{target}'{did_you_mean(target, layout.header)}; columns: "
            f"{_names(layout.header)}"
        )
    if len(layout.header) < 2:
        raise FormatError(
            f"{printable(path)}: only the target column '{target}'; no feature columns"
        )
    table = _parse(path, layout)
    _check_header(path, layout, table.shape[1])
    if not np.isfinite(table).all():
        lines = _LineNumbers(path, layout.skip)
        row, col = (int(i) for i in np.argwhere(~np.isfinite(table))[0])
        raise FormatError(
            f"{printable(path)}: line {lines[row]}, column {_column_name(layout, col)}: missing or "
            f"infinite value ({table[row, col]}); fill or drop such rows first"
        )
    index = layout.header.index(target)
    features = np.delete(table, index, axis=1).astype(np.float32)
    names = layout.header[:index] + layout.header[index + 1 :]
    return Table(features, table[:, index].astype(np.float32), names)


def _sniff(path: Path) -> _Layout:
    """The delimiter, the header (if the first line has names) and the lines to skip."""
    skip, first = 0, ""
    with _reading(path), _open_text(path) as stream:
        for number, line in _lines(stream, path):
            if line.strip():
                first = line.rstrip("\r\n")
                _check_width(path, number, first, next((d for d in ",\t;" if d in first), None))
                break
            skip += 1
    if not first:
        raise FormatError(
            f"{printable(path)}: empty file; expected one row per image: a label, then pixels"
        )
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)
    with _reading(path, skip + 1):
        cells = _split(first, delimiter)
    if all(_is_number(c) for c in cells if c.strip()):  # a trailing comma is no header
        return _Layout(delimiter, None, skip)
    return _Layout(delimiter, tuple(c.strip().strip('"').strip() for c in cells), skip + 1)


def _parse(path: Path, layout: _Layout) -> np.ndarray:
    """Every data cell as int32 when all are whole numbers, else as float32."""
    for dtype in (np.int32, np.float32):  # numpy parses integers ~5x faster than decimals
        try:
            # Lines as text: numpy decodes a binary stream line by line in Python (5x slower
            # for short rows); a path it would open itself, unchecked and unbounded.
            text = io.TextIOWrapper(_open_bytes(path), encoding=_ENCODING, errors=_ERRORS)
            with warnings.catch_warnings(), _reading(path), text as stream:
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                table = np.loadtxt(
                    stream,
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
            raise FormatError(f"{printable(path)}: no data rows after the header line")
        return table
    _diagnose(path, layout)
    message = " ".join(str(error).split())
    raise FormatError(f"{printable(path)}: cannot read the cells as numbers: {printable(message)}")


def _diagnose(path: Path, layout: _Layout) -> None:
    """Find the first line with a wrong number of cells or a cell that is not a number."""
    expected = len(layout.header) if layout.header else None
    reference = f"the header (line {layout.skip})" if layout.header else None
    name = printable(path)
    with _reading(path), _open_text(path) as stream:
        lines = _lines(stream, path, layout.delimiter, count_cells=True)
        if layout.delimiter is None:
            rows: Iterator[tuple[int, list[str]]] = ((n, line.split()) for n, line in lines)
        else:
            reader = _csv.reader(
                (line for _, line in lines), delimiter=layout.delimiter, quotechar='"'
            )
            rows = ((reader.line_num, row) for row in _csv_rows(reader, path))
        for line, row in rows:
            if line <= layout.skip or not row:
                continue
            if expected is None:
                expected, reference = len(row), f"line {line}"
            if len(row) != expected:
                raise FormatError(
                    f"{name}: line {line} has {len(row)} columns, expected {expected} as in "
                    f"{reference}"
                )
            for col, cell in enumerate(row):
                where = f"{name}: line {line}, column {_column_name(layout, col)}"
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
        with _reading(self.path), _open_text(self.path) as stream:
            for number, line in _lines(stream, self.path):
                if number > self.skip and line.strip("\r\n"):
                    seen += 1
                    if seen == row:
                        return number
        return self.skip + row + 1


def _label_column(path: Path, layout: _Layout, labels_key: str | None, n_columns: int) -> int:
    if layout.header is None:
        if labels_key is None:
            return 0
        key = str(labels_key).strip()
        if key.lstrip("-").isdecimal():
            if 0 <= int(key) < n_columns:
                return int(key)
            raise FormatError(
                f"{printable(path)}: label column index {key} is out of range: the file has "
                f"{n_columns} columns, 0..{n_columns - 1} (labels_key, --labels-key)"
            )
        raise FormatError(
            f"{printable(path)}: no header row, so the label column '{labels_key}' cannot be found by name; "
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
        f"{printable(path)}: no label column '{wanted}' in the header{hint}; columns: {_names(layout.header)}{how}"
    )


def _check_header(path: Path, layout: _Layout, n_columns: int) -> None:
    """The header names every column once: a second 'price' beside the target would be
    read as a feature (the answer leaking into the inputs), a second 'label' ignored."""
    names = [name for name in layout.header or () if name]
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        where = ", ".join(
            str(i + 1) for i, name in enumerate(layout.header or ()) if name == twice[0]
        )
        raise FormatError(
            f"{printable(path)}: the header (line {layout.skip}) names column "
            f"'{printable(twice[0])}' more than once (columns {where}); give each column its "
            "own name"
        )
    if layout.header is not None and len(layout.header) != n_columns:
        raise FormatError(
            f"{printable(path)}: the header (line {layout.skip}) names {len(layout.header)} columns but the "
            f"rows have {n_columns}"
        )


def _column_name(layout: _Layout, index: int) -> str:
    if layout.header and index < len(layout.header):
        return f"{index + 1} ('{layout.header[index]}')"
    return str(index + 1)


def _names(header: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(header[:limit])
    return shown + (f", … ({len(header)} in all)" if len(header) > limit else "")


class _Bounded(io.RawIOBase):
    """A decompressing stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, inner: IO[bytes], file: IO[bytes], limit: int, name: str) -> None:
        self._inner, self._file, self._limit, self._name, self._seen = inner, file, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        self._seen += n
        if self._seen > self._limit:
            raise FormatError(
                f"{self._name} decompresses to more than {self._limit // 2**20:,} MiB of text, "
                f"more than mlplab reads (parsing takes {MEMORY_PER_BYTE}x that in memory); a "
                "damaged or hostile file, or set MLPLAB_MAX_ALLOC_MB to raise the limit"
            )
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._file.close()
            super().close()


def _open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes (``.gz`` decompressed): a regular file only, its size bounded.

    The text a file holds must fit the memory budget / :data:`MEMORY_PER_BYTE`: checked
    from the file's size before reading, and while decompressing for ``.gz`` (whose real
    size only the decompression tells).
    """
    file = open_regular(path)
    try:
        limit = memory_budget() // MEMORY_PER_BYTE
        if path.suffix == ".gz":
            inner = gzip.GzipFile(fileobj=file, mode="rb")
            return io.BufferedReader(_Bounded(inner, file, limit, printable(path)))
        size = os.fstat(file.fileno()).st_size
        check_alloc(size * MEMORY_PER_BYTE, f"{printable(path)}: reading {size:,} bytes of CSV")
        return file
    except BaseException:
        file.close()
        raise


def _open_text(path: Path) -> TextIO:
    """The file as UTF-8 text (see :func:`_open_bytes`); bytes that are not UTF-8 are read
    as Latin-1 (:func:`_latin1`)."""
    return io.TextIOWrapper(_open_bytes(path), encoding=_ENCODING, errors=_ERRORS, newline="")


def _lines(
    stream: TextIO, path: Path, delimiter: str | None = None, *, count_cells: bool = False
) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text stream, refusing a line over :data:`MAX_LINE`
    characters before holding it whole; with ``delimiter`` given (None: spaces) a line of
    more than :data:`MAX_COLUMNS` cells too, before it is split."""
    number = 0
    while line := stream.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise FormatError(
                f"{printable(path)}: line {number} is longer than {MAX_LINE:,} characters; "
                "one row is one image's label and pixels: is this a CSV file of images?"
            )
        if count_cells:
            _check_width(path, number, line, delimiter)
        yield number, line


def _check_width(path: Path, number: int, line: str, delimiter: str | None) -> None:
    cells = (
        line.count(delimiter) + 1
        if delimiter
        else sum(1 for _ in zip(_CELL.finditer(line), range(MAX_COLUMNS + 1), strict=False))
    )
    if cells > MAX_COLUMNS:
        raise FormatError(
            f"{printable(path)}: line {number} has {cells:,} cells, more than the "
            f"{MAX_COLUMNS:,} mlplab reads in one row (an image of 3x577x577); is this a CSV "
            "file of images?"
        )


def _csv_rows(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """The rows of a csv.reader, its errors (a field over the size limit, NUL) one line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except _csv.Error as exc:
            line = getattr(reader, "line_num", "?")
            raise FormatError(
                f"{printable(path)}: line {line}: cannot split the line into cells "
                f"({printable(exc)})"
            ) from None
        yield row


@contextmanager
def _reading(path: Path, line: int | None = None) -> Iterator[None]:
    """Turn what reading a CSV can raise (gzip damage, an I/O error, the csv module's
    errors) into one FormatError naming the file (and line)."""
    name = printable(path)
    try:
        yield
    except _csv.Error as exc:
        where = f"line {line}: " if line else ""
        raise FormatError(
            f"{name}: {where}cannot split the line into cells ({printable(exc)})"
        ) from None
    except EOFError:
        raise FormatError(
            f"{name}: truncated gzip stream (the file ends early); the file is damaged"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise FormatError(f"{name}: corrupt gzip data ({printable(exc)})") from None
    except OSError as exc:
        raise FormatError(f"{name}: cannot read: {printable(exc.strerror or exc)}") from None


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return next(_csv.reader([line], delimiter=delimiter, quotechar='"'))


def _is_number(cell: str) -> bool:
    """What numpy reads as a number: Python's float() also takes '1_49', numpy does not."""
    if "_" in cell:
        return False
    try:
        float(cell.strip().strip('"'))
    except ValueError:
        return False
    return True
