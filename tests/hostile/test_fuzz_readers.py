"""Fuzzing the IDX, npz and CSV readers and format detection (Hypothesis).

The property, for random bytes, truncations of valid files at random points, mutated
header fields (type codes, dimension counts, dimensions, .npy shapes and dtypes) and
random zip members: reading ends in a result or in a :class:`MlplabError` whose message is
one line, never in another exception; and memory stays bounded (the budget is pinned at
64 MiB and tracemalloc's peak over all examples stays under twice that).

Bounded for CI by the "ci" profile of conftest.py; ``make fuzz`` runs the long one.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mlplab.data.csv import read_csv, read_csv_table
from mlplab.data.formats import detect_format, read_any
from mlplab.data.idx import read_idx, read_idx_dataset
from mlplab.data.npz import read_npz
from mlplab.errors import MlplabError

pytestmark = pytest.mark.fuzz

BUDGET_MB = 64


@pytest.fixture(autouse=True)
def bounded_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pin the budget; fail when any example made the process allocate past twice it."""
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", str(BUDGET_MB))
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < 2 * BUDGET_MB, f"peak allocation {peak:.0f} MiB"


def outcome(read: Callable[[], Any]) -> Any:
    """The result of ``read``, or None when it raised a one-line MlplabError (any other
    exception fails the example)."""
    try:
        return read()
    except MlplabError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None


def put(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- IDX

EXTREMES = [0, 1, 2**16, 2**31, 2**32 - 1]  # dimensions whose products wrap int64 or are empty
IDX_CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_files(draw: st.DrawFn) -> bytes:
    """A valid IDX file: a type, 1-3 small dimensions, values of that type."""
    code = draw(st.sampled_from(sorted(IDX_CODES)))
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    count = int(np.prod(shape)) * np.dtype(IDX_CODES[code]).itemsize
    data = draw(st.binary(min_size=count, max_size=count))
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


def maybe_gzip(data: bytes, compress: bool) -> bytes:
    return gzip.compress(data, mtime=0) if compress else data


@given(data=st.binary(max_size=300), compress=st.booleans())
def test_idx_random_bytes(tmp_path: Path, data: bytes, compress: bool) -> None:
    outcome(lambda: read_idx(put(tmp_path, "f-images-idx3-ubyte", maybe_gzip(data, compress))))


@given(data=idx_files(), compress=st.booleans(), cut=st.floats(0, 1))
def test_idx_truncated_anywhere(tmp_path: Path, data: bytes, compress: bool, cut: float) -> None:
    whole = maybe_gzip(data, compress)
    path = put(tmp_path, "f-images-idx3-ubyte", whole[: int(len(whole) * cut)])
    outcome(lambda: read_idx(path))


@given(
    data=idx_files(),
    code=st.integers(0, 255),
    ndim=st.integers(0, 255),
    dims=st.lists(st.one_of(st.integers(0, 2**32 - 1), st.sampled_from(EXTREMES)), max_size=4),
    compress=st.booleans(),
)
def test_idx_mutated_header(
    tmp_path: Path, data: bytes, code: int, ndim: int, dims: list[int], compress: bool
) -> None:
    mutated = bytearray(data)
    mutated[2], mutated[3] = code, ndim
    for index, dim in enumerate(dims):  # overwrite dimension fields (and maybe data after them)
        at = 4 + 4 * index
        mutated[at : at + 4] = struct.pack(">I", dim)
    path = put(tmp_path, "f-images-idx3-ubyte", maybe_gzip(bytes(mutated), compress))
    array = outcome(lambda: read_idx(path))
    if array is not None:
        assert array.size * array.itemsize <= BUDGET_MB * 2**20


@given(images=idx_files(), labels=idx_files(), compress=st.booleans())
def test_idx_pairs_as_a_dataset(
    tmp_path: Path, images: bytes, labels: bytes, compress: bool
) -> None:
    ext = ".gz" if compress else ""
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        for old in tmp_path.glob(name + "*"):
            old.unlink()
    put(tmp_path, "train-images-idx3-ubyte" + ext, maybe_gzip(images, compress))
    put(tmp_path, "train-labels-idx1-ubyte" + ext, maybe_gzip(labels, compress))
    outcome(lambda: read_idx_dataset(tmp_path))


# ---------------------------------------------------------------- npz

KEYS = ["x.npy", "y.npy", "x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy", "images"]
DESCRS = ["|u1", "<f4", ">f8", "<i8", "|b1", "<U2", "|O", "|V3", "<c8", "bogus", "<u2"]


@st.composite
def npy_members(draw: st.DrawFn) -> bytes:
    """A .npy member whose header may lie: any shape (negative, huge, empty), any dtype
    text, fortran order or not, a version numpy may not know, any amount of data after."""
    shape = tuple(draw(st.lists(st.integers(-2, 2**40), max_size=4)))
    descr = draw(st.sampled_from(DESCRS))
    fortran = draw(st.booleans())
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    length = struct.pack("<H" if version == b"\x01\x00" else "<I", len(header))
    return b"\x93NUMPY" + version + length + header.encode() + draw(st.binary(max_size=200))


@st.composite
def valid_npz(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 6))
    side = draw(st.integers(2, 4))
    stream = io.BytesIO()
    saver = draw(st.sampled_from([np.savez, np.savez_compressed]))
    pixels = draw(st.binary(min_size=n * side * side, max_size=n * side * side))
    saver(stream, x=np.frombuffer(pixels, np.uint8).reshape(n, side, side), y=np.arange(n) % 2)
    return stream.getvalue()


def zip_of(members: list[tuple[str, bytes]], method: int) -> bytes:
    stream = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(stream, "w", method) as archive:
        warnings.simplefilter("ignore", UserWarning)  # a name twice: wanted, it is hostile
        for name, data in members:
            archive.writestr(name, data)
    return stream.getvalue()


@given(data=st.binary(max_size=400))
def test_npz_random_bytes(tmp_path: Path, data: bytes) -> None:
    outcome(lambda: read_npz(put(tmp_path, "f.npz", data)))


@given(data=valid_npz(), cut=st.floats(0, 1))
def test_npz_truncated_anywhere(tmp_path: Path, data: bytes, cut: float) -> None:
    outcome(lambda: read_npz(put(tmp_path, "f.npz", data[: int(len(data) * cut)])))


@given(
    data=valid_npz(), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6)
)
def test_npz_bytes_flipped(tmp_path: Path, data: bytes, flips: list[tuple[float, int]]) -> None:
    mutated = bytearray(data)
    for where, value in flips:
        mutated[min(int(where * len(mutated)), len(mutated) - 1)] = value
    outcome(lambda: read_npz(put(tmp_path, "f.npz", bytes(mutated))))


@given(
    members=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12)),
            st.one_of(npy_members(), st.binary(max_size=100)),
        ),
        max_size=5,
    ),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]),
)
def test_npz_random_members(tmp_path: Path, members: list[tuple[str, bytes]], method: int) -> None:
    try:
        data = zip_of(members, method)
    except (ValueError, IndexError):  # a name zipfile itself will not write ("\x00": empty)
        assume(False)
        return
    result = outcome(lambda: read_npz(put(tmp_path, "f.npz", data)))
    if result is not None:
        assert result.train[0].nbytes <= BUDGET_MB * 2**20


# ---------------------------------------------------------------- CSV

CSV_ALPHABET = [*'0123456789,;\t .-+eE\n\r"', "nan", "inf", "label", "\x00", "é", "\ufeff"]


@given(
    cells=st.lists(st.sampled_from(CSV_ALPHABET), max_size=200),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    compress=st.booleans(),
)
def test_csv_random_text(tmp_path: Path, cells: list[str], encoding: str, compress: bool) -> None:
    data = maybe_gzip("".join(cells).encode(encoding, errors="replace"), compress)
    path = put(tmp_path, "f.csv.gz" if compress else "f.csv", data)
    outcome(lambda: read_csv(path))
    outcome(lambda: read_csv_table(path, "label"))


@given(
    n=st.integers(1, 6),
    width=st.sampled_from([4, 9, 12]),
    header=st.booleans(),
    edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(CSV_ALPHABET)), max_size=5),
    cut=st.floats(0.5, 1),
    compress=st.booleans(),
)
def test_csv_mutated_valid_file(
    tmp_path: Path,
    n: int,
    width: int,
    header: bool,
    edits: list[tuple[float, str]],
    cut: float,
    compress: bool,
) -> None:
    rng = np.random.default_rng(n * width)
    lines = ["label," + ",".join(f"p{i}" for i in range(width))] if header else []
    lines += [",".join(map(str, [i % 2, *rng.integers(0, 256, width)])) for i in range(n)]
    text = list("\n".join(lines) + "\n")
    for where, piece in edits:
        text[min(int(where * len(text)), len(text) - 1)] = piece
    data = maybe_gzip("".join(text).encode(), compress)
    data = data[: max(1, int(len(data) * cut))]  # truncated gzip streams too
    path = put(tmp_path, "f.csv.gz" if compress else "f.csv", data)
    outcome(lambda: read_csv(path))


# ---------------------------------------------------------------- detection

NAMES = [
    "d.csv", "d.txt", "d.csv.gz", "d.npz", "d.bin", "train-images-idx3-ubyte", "d.gz",
    "d", "d.h5",
]  # fmt: skip
PREFIXES = [b"", b"PK\x03\x04", b"\x1f\x8b", b"\x00\x00\x08\x03", b"\x00\x00\x0d\x01", b"\x93NUMPY"]


@given(name=st.sampled_from(NAMES), prefix=st.sampled_from(PREFIXES), data=st.binary(max_size=200))
def test_detect_and_read_any(tmp_path: Path, name: str, prefix: bytes, data: bytes) -> None:
    for old in tmp_path.iterdir():
        old.unlink()
    path = put(tmp_path, name, prefix + data)
    found = outcome(lambda: detect_format(path))
    if found in ("csv", "npz", "idx"):  # the readers of this suite; hdf5, cifar: their own
        outcome(lambda: read_any(path))
