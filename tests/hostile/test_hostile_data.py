"""Hostile and careless data files: every one ends in a result or one clear line, bounded.

Written as an attacker and as a tired user would try them: headers that lie about sizes,
decompression bombs, FIFOs and devices named like data files, stray labels, one-class
files, text that is not UTF-8, escape codes in names, zip members named to slip out. The
memory budget is pinned (``MLPLAB_MAX_ALLOC_MB=64``) so a refusal is a refusal, and peak
allocation is measured with tracemalloc where the old code allocated first.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mlplab.cli import main
from mlplab.data import csv as csv_module
from mlplab.data import load_dataset
from mlplab.data.csv import read_csv, read_csv_table
from mlplab.data.dataset import Dataset, Split
from mlplab.data.formats import detect_format, read_any
from mlplab.data.idx import read_idx, read_idx_dataset, write_idx
from mlplab.data.inspection import inspect_data
from mlplab.data.npz import read_npz
from mlplab.data.raw import RawSplits
from mlplab.errors import DataError, FormatError, MlplabError

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64 MiB budget per array: a hostile header is refused, not allocated."""
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "64")


@contextlib.contextmanager
def within(seconds: int = 5) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging the suite when a read blocks."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_mib(read: Callable[[], object]) -> tuple[BaseException | None, float]:
    """(what ``read`` raised, or None; its peak traced allocation in MiB)."""
    tracemalloc.start()
    try:
        read()
        raised = None
    except BaseException as exc:  # the caller checks what it was
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] / MIB
        tracemalloc.stop()
    return raised, peak


def one_line(exc: BaseException | None) -> str:
    assert isinstance(exc, MlplabError), repr(exc)
    assert "\n" not in str(exc) and "\x1b" not in str(exc)
    return str(exc)


def gzip_of(head: bytes, zeros: int, tail: bytes = b"") -> bytes:
    """``head`` + ``zeros`` zero bytes + ``tail``, gzip-compressed a MiB at a time (a bomb:
    100 MiB of zeros take about 100 KB)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = [packer.compress(head)]
    chunk = bytes(MIB)
    for _ in range(zeros // MIB):
        parts.append(packer.compress(chunk))
    parts += [packer.compress(bytes(zeros % MIB) + tail), packer.flush()]
    return b"".join(parts)


def idx_header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


# ---------------------------------------------------------------- IDX


def test_idx_header_claiming_huge_dimensions_is_checked_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(idx_header(8, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
    with pytest.raises(
        FormatError,
        match=r"truncated: dimensions 4294967295x4294967295x4294967295 need "
        r"79,228,162,458,924,105,385,300,197,391 bytes, file has 16$",
    ):
        read_idx(path)  # the old reader's int64 product wrapped around: a wrong size


def test_idx_dimensions_whose_product_overflows_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "o-images-idx3-ubyte"
    path.write_bytes(idx_header(8, 2**31, 2**31, 2**31, 2**31) + bytes(64))
    with pytest.raises(
        FormatError, match=r"o-images-idx3-ubyte: truncated: dimensions 2147483648x"
    ):
        read_idx(path)  # was: ValueError "cannot reshape array" -> internal error
    path.write_bytes(idx_header(8, 0, 2**31, 2**31, 2**31))
    with pytest.raises(FormatError, match=r"dimensions 0x2147483648x2147483648x2147483648 hold no"):
        read_idx(path)


def test_gzip_idx_declaring_more_than_the_budget_is_refused_before_inflating(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    path.write_bytes(gzip_of(idx_header(8, 100, 1024, 1024), 100 * MIB))  # ~100 KB on disk
    assert path.stat().st_size < 200_000
    raised, peak = peak_mib(lambda: read_idx(path))
    assert "an IDX array of dimensions 100x1024x1024 would need 100.0 MiB of memory, more " in (
        one_line(raised)
    )
    assert peak < 5  # the old reader inflated all 100 MiB, then copied it


def test_gzip_idx_inflating_past_its_header_stops_at_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "b-images-idx3-ubyte.gz"
    path.write_bytes(gzip_of(idx_header(8, 2, 2, 2), 100 * MIB))
    raised, peak = peak_mib(lambda: read_idx(path))
    assert one_line(raised).endswith(
        "more than 1048576 unexpected bytes after the data of dimensions 2x2x2"
    )
    assert peak < 8  # was: the whole 100 MiB in memory before the check


def test_idx_pixels_nan_negative_and_counts(tmp_path: Path) -> None:
    floats = np.zeros((2, 2, 2), np.float32)
    floats[1, 0, 1] = np.nan
    write_idx(tmp_path / "train-images-idx3-ubyte", floats)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    with pytest.raises(FormatError, match=r"train-images-idx3-ubyte: index \[1, 0, 1\]: pixel nan"):
        read_idx_dataset(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.array([[[0, -3]], [[1, 2]]], np.int8))
    with pytest.raises(FormatError, match=r"index \[0, 0, 1\]: pixel -3 is negative"):
        read_idx_dataset(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(FormatError, match=r"2 labels for 3 images in train-images-idx3-ubyte"):
        read_idx_dataset(tmp_path)  # labels shorter than images


def test_idx_empty_and_header_only_files(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(FormatError, match=r"e: too short to be an IDX file \(0 bytes\)$"):
        read_idx(tmp_path / "e")
    (tmp_path / "h").write_bytes(idx_header(8, 2, 2))
    with pytest.raises(
        FormatError, match=r"h: truncated: dimensions 2x2 need 16 bytes, file has 12"
    ):
        read_idx(tmp_path / "h")
    (tmp_path / "t.gz").write_bytes(gzip.compress(idx_header(8, 2, 2) + bytes(2)))
    with pytest.raises(FormatError, match=r"t.gz: truncated: dimensions 2x2 need 16 bytes, the "):
        read_idx(tmp_path / "t.gz")


def test_a_fifo_named_like_an_idx_file_is_refused_without_blocking(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    with within(), pytest.raises(FormatError, match=r"a FIFO \(named pipe\), not a regular file"):
        read_idx_dataset(tmp_path)  # was: blocked forever waiting for a writer
    with within(), pytest.raises(FormatError, match=r"a FIFO \(named pipe\), not a regular file"):
        read_idx_dataset(tmp_path / "train-images-idx3-ubyte")


# ---------------------------------------------------------------- npz


def npy_bytes(shape: tuple[int, ...], descr: str = "|u1", data: bytes = b"") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_npy_header_claiming_a_huge_array_is_checked_against_the_member(tmp_path: Path) -> None:
    npy = npy_bytes((100_000_000_000, 28, 28))
    path = write_zip(tmp_path / "h.npz", {"x.npy": npy, "y.npy": npy})
    with pytest.raises(
        FormatError,
        match=r"h.npz: array 'x': shape \(100000000000, 28, 28\) of uint8 declares 73,015.7 GiB "
        r"of data but only \d+ bytes are there",
    ):
        read_npz(path)  # was: MemoryError -> internal error


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (40, 8, 8)",  # no closing brace
        b"\xff\xfe{'descr': '|u1', 'fortran_order': False, 'shape': (40, 8, 8), }",
    ],
)
def test_npy_headers_numpy_cannot_tokenize_are_one_line(tmp_path: Path, header: bytes) -> None:
    """numpy's parser raised tokenize.TokenError on these: 'internal error' before."""
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(2560)
    path = write_zip(tmp_path / "t.npz", {"x.npy": member, "y.npy": npy_bytes((40,))})
    with pytest.raises(
        FormatError,
        match=r"^.*t\.npz: array 'x' cannot be read \(.+\); the archive is damaged or not "
        r"written by numpy$",
    ):
        read_npz(path)


def test_npz_member_inflating_to_more_than_the_budget_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(npy_bytes((100, 1024, 1024)))
            for _ in range(100):
                member.write(bytes(MIB))
        archive.writestr("y.npy", npy_bytes((100,), data=bytes(100)))
    assert path.stat().st_size < 300_000
    raised, peak = peak_mib(lambda: read_npz(path))
    assert "array 'x': shape (100, 1024, 1024) of uint8 would need 100.0 MiB of memory" in (
        one_line(raised)
    )
    assert peak < 5  # was: np.load inflated and allocated all 100 MiB


def test_npz_member_holding_more_than_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "more.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(npy_bytes((2, 2, 2), data=bytes(8)))
            for _ in range(50):
                member.write(bytes(MIB))
        archive.writestr("y.npy", npy_bytes((2,), data=bytes([0, 1])))
    raised, peak = peak_mib(lambda: read_npz(path))
    assert one_line(raised).endswith(
        "array 'x': the member holds more bytes than its header's shape (2, 2, 2) needs; a "
        "damaged or crafted archive"
    )
    assert peak < 8


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "crc",
            r"array 'x' cannot be read \(Bad CRC-32 for file 'x.npy'\); the archive is damaged",
        ),
        ("truncated", r"(not a readable .npz archive|array 'x' cannot be read)"),
        (
            "header",
            r"array 'x' cannot be read \(Header info length \(\d+\) is large and may not be",
        ),
        ("dict", r"array 'x' cannot be read \(Header does not contain the correct keys"),
        ("method", r"array 'x' cannot be read \(.*compression method.*\)"),
        ("encrypted", r"array 'x' is encrypted; mlplab reads only unencrypted archives$"),
        ("twice", r"member 'x.npy' is stored twice; a damaged or crafted archive"),
        ("negative", r"array 'x': its header declares a negative dimension in \(-1, 2\)$"),
        ("compound", r"array 'x' has the compound type .*; images and labels must be plain"),
    ],
)
def test_damaged_npz_members_are_one_line(tmp_path: Path, damage: str, message: str) -> None:
    x = npy_bytes((2, 2, 2), data=bytes(8))
    y = npy_bytes((2,), data=bytes([0, 1]))
    path = tmp_path / "d.npz"
    if damage == "header":
        x = b"\x93NUMPY\x01\x00" + struct.pack("<H", 20000) + b"{" + b" " * 19998 + b"\n"
    elif damage == "dict":
        x = npy_bytes((2, 2, 2)).replace(b"'descr'", b"'desc' ")
    elif damage == "negative":
        x = npy_bytes((-1, 2))
    elif damage == "compound":
        x = npy_bytes((2,), descr="|V3", data=bytes(6))  # raw records, not numbers
    write_zip(path, {"x.npy": x, "y.npy": y})
    raw = bytearray(path.read_bytes())
    offset = raw.find(b"x.npy")  # the local header's name; its fields sit just before it
    if damage == "crc":
        raw[raw.find(b"\x93NUMPY") + 80] ^= 0xFF  # a data byte: the stored CRC no longer fits
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "method":
        for at in (offset - 30 + 8, raw.rfind(b"x.npy") - 46 + 10):  # local + central headers
            raw[at : at + 2] = struct.pack("<H", 99)
    elif damage == "encrypted":
        for at in (offset - 30 + 6, raw.rfind(b"x.npy") - 46 + 8):
            raw[at] |= 0x1
    elif damage == "twice":
        write_zip(path, {"x.npy": x, "y.npy": y})
        with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning):
            archive.writestr("x.npy", x)
        raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"d.npz: " + message) as err:
        read_npz(path)
    one_line(err.value)


def test_zip_slip_and_escape_codes_in_member_names_are_never_extracted_nor_echoed(
    tmp_path: Path,
) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    path = write_zip(
        inside / "s.npz",
        {"../../evil.npy": npy_bytes((1,), data=b"\0"), "\x1b[2Jname.npy": npy_bytes((1,))},
    )
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(FormatError, match=r"keys: \\x1b\[2Jname, \.\./\.\./evil;") as err:
        read_npz(path)
    one_line(err.value)  # was: the escape code echoed raw
    assert sorted(tmp_path.rglob("*")) == before


def test_npz_empty_file_and_wrong_extension(tmp_path: Path) -> None:
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(
        FormatError, match=r"e.npz: not a readable .npz archive \(File is not a zip"
    ):
        read_npz(tmp_path / "e.npz")
    (tmp_path / "c.npz").write_text("1,0,0,0,0\n")  # a CSV named .npz
    with pytest.raises(FormatError, match=r"c.npz: not a readable .npz archive"):
        read_any(tmp_path / "c.npz")


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1e20,0,0,0,0\n0,1,2,3,4\n",  # was: cast to int64 garbage, a "1 classes" model
            r"line 1, column 1: label 1e\+20 is too large; labels must be class indices 0..K-1 "
            r"\(at most 2,147,483,647\)$",
        ),
        (
            "0,0,0,0,0\n1,1,1,1,1\n1000000,2,2,2,2\n",  # was: a 1,000,001-class model
            r"line 3, column 1: label 1,000,000 makes 1,000,001 classes \(0..1,000,000\), but "
            r"999,998 of them \(e.g. 2, 3, 4\) have no training sample; labels must be class "
            r"indices 0..K-1 with every class in the training data: fix the row, or declare the "
            r"class names \(classes\) if some classes truly have no samples$",
        ),
        (
            "1,0,0,0,0\n2,0,0,0,0\n",
            r"line 2, column 1: label 2 makes 3 classes \(0..2\), but class 0 has no training "
            r"sample \(labels counted from 1\? subtract 1\)",
        ),
        (
            "3,0,0,0,0\n3,9,9,9,9\n",  # was: a "1 classes" model with a constant output
            r"every training label is class 3, the only class found; classification needs at "
            r"least two classes: add images of another class \(or, to predict a number, use a "
            r"CSV table with --target COLUMN\)$",
        ),
        (
            "2000000000,0,0,0,0\n2000000000,1,1,1,1\n",  # found by fuzzing: 2e9 names were made
            r"every training label is class 2000000000, the only class found",
        ),
        (
            "label,a,b,c,d\n",
            r"no data rows after the header line$",
        ),
    ],
)
def test_csv_label_rules(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "f.csv").write_text(text)
    with pytest.raises(FormatError, match=r"f\.csv: " + message) as err:
        read_csv(tmp_path / "f.csv")
    one_line(err.value)


def test_declared_classes_may_be_absent_but_two_must_be_present(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("0,0,0,0,0\n2,1,1,1,1\n")
    assert read_csv(tmp_path / "f.csv", classes=["a", "b", "c"]).classes == ("a", "b", "c")
    (tmp_path / "g.csv").write_text("1,0,0,0,0\n1,1,1,1,1\n")
    with pytest.raises(FormatError, match=r"g.csv: every training label is class 1 \('b'\)"):
        read_csv(tmp_path / "g.csv", classes=["a", "b"])


def test_regression_targets_are_not_classes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,y\n1,1e20\n2,1e20\n3,0.5\n")
    table = read_csv_table(tmp_path / "t.csv", "y")  # one value everywhere is fine here
    assert table.targets.tolist() == pytest.approx([1e20, 1e20, 0.5])


def test_csv_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """A spreadsheet's Windows-1252 header loads (it did before the hardening); such a byte
    in a pixel cell is named by line and column."""
    (tmp_path / "l.csv").write_bytes(b"label,a,b,c,d\n0,0,0,0,0\n1,0,\xff,0,0\n")
    with pytest.raises(FormatError, match=r"l.csv: line 3, column 3 \('b'\): 'ÿ' is not a number"):
        read_csv(tmp_path / "l.csv")
    header = "label,gr\xf6\xdfe,b,c,d\n0,0,0,0,0\n1,9,9,9,9\n".encode("cp1252")
    (tmp_path / "h.csv").write_bytes(header)
    raw = read_csv(tmp_path / "h.csv")
    assert raw.train[0].shape[0] == 2


def test_csv_absurd_lines_and_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w.csv").write_text("a" * 200_000 + ",b\n0,0\n")
    with pytest.raises(FormatError, match=r"w.csv: line 1: cannot split the line into cells "):
        read_csv(tmp_path / "w.csv")  # was: _csv.Error (field larger than field limit)
    monkeypatch.setattr(csv_module, "MAX_COLUMNS", 100)
    (tmp_path / "c.csv").write_text("0" + ",0" * 200 + "\n")
    with pytest.raises(FormatError, match=r"c.csv: line 1 has 201 cells, more than the 100 "):
        read_csv(tmp_path / "c.csv")
    (tmp_path / "s.csv").write_text("0 0 0 0 0\n1" + " 1" * 300 + "\n")
    with pytest.raises(FormatError, match=r"s.csv: line 2 has 101 cells, more than the 100 "):
        read_csv(tmp_path / "s.csv")  # the wide line is the second: found while diagnosing
    monkeypatch.setattr(csv_module, "MAX_LINE", 1000)
    (tmp_path / "l.csv").write_text("0,0,0,0,0\n1," + "1" * 5000 + ",0,0,0\n")
    with pytest.raises(FormatError, match=r"l.csv: line 2 is longer than 1,000 characters"):
        read_csv(tmp_path / "l.csv")


def test_csv_gzip_bomb_is_refused_with_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "12")  # 2 MiB of text: parsed in a second
    path = tmp_path / "bomb.csv.gz"
    row = b"0,0,0,0,0\n"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(row * (MIB // len(row))) for _ in range(100)]
    path.write_bytes(b"".join(parts) + packer.flush())  # ~100 MiB of text, a few hundred KB
    raised, peak = peak_mib(lambda: read_csv(path))
    assert one_line(raised).endswith(
        "bomb.csv.gz decompresses to more than 2 MiB of text, more than mlplab reads (parsing "
        "takes 6x that in memory); a damaged or hostile file, or set MLPLAB_MAX_ALLOC_MB to "
        "raise the limit"
    )
    assert peak < 20  # was: all 100 MiB parsed into a table of several hundred MiB


def test_csv_larger_than_the_budget_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "1")
    (tmp_path / "big.csv").write_text(("0,0,0,0,0\n1,1,1,1,1\n") * 20_000)
    with pytest.raises(
        FormatError, match=r"big.csv: reading 400,000 bytes of CSV would need 2.3 MiB of memory"
    ):
        read_csv(tmp_path / "big.csv")


def test_csv_truncated_and_fake_gzip(tmp_path: Path) -> None:
    data = gzip.compress(b"label,a,b,c,d\n" + b"0,1,2,3,4\n1,1,2,3,4\n" * 1000)
    (tmp_path / "t.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"t.csv.gz: truncated gzip stream \(the file ends"):
        read_csv(tmp_path / "t.csv.gz")  # was: EOFError -> internal error
    (tmp_path / "p.csv.gz").write_text("0,1,2,3,4\n1,1,2,3,4\n")
    with pytest.raises(FormatError, match=r"p.csv.gz: corrupt gzip data \(Not a gzipped file"):
        read_csv(tmp_path / "p.csv.gz")


def test_csv_nan_inf_negative_and_fractional_pixels_name_the_row(tmp_path: Path) -> None:
    for cell, message in [
        ("nan", "pixel nan is not a number"),
        ("-inf", "pixel -inf is infinite"),
        ("-1", "pixel -1 is negative"),
        ("7.5", "pixel 7.5 is not a whole number"),
    ]:
        (tmp_path / "p.csv").write_text(f"0,0,0,0,0\n1,0,{cell},0,0\n")
        with pytest.raises(FormatError, match=rf"p.csv: line 2, column 3: {message}"):
            read_csv(tmp_path / "p.csv")


# ---------------------------------------------------------------- not regular files


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_readers_and_detection_refuse_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    expected = {
        "fifo": r"a FIFO \(named pipe\), not a regular file; mlplab reads data only from regular",
        "dev-zero": r"a character device, not a regular file",
        "folder": r"a folder, where a data file was expected",
    }[kind]
    for name, reader in [
        ("x.csv", read_csv),
        ("x.npz", read_npz),
        ("x-images-idx3-ubyte", read_idx),
        ("t.csv", lambda p: read_csv_table(p, "y")),
        ("f.csv", lambda p: read_any(p, "csv")),
    ]:
        path = tmp_path / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        else:
            path.mkdir()
        with within(), pytest.raises(FormatError, match=expected) as err:
            reader(path)  # was: a FIFO blocked forever, /dev/zero never ended
        assert str(err.value).startswith(str(path))
        if kind != "folder":
            with within(), pytest.raises(FormatError, match=expected):
                detect_format(path)  # was: "no such file or folder"


def test_cli_data_inspect_on_a_fifo_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "train.csv")
    for extra in ([], ["--format", "csv"]):
        with within():
            assert main(["data", "inspect", str(tmp_path / "train.csv"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a FIFO (named pipe), not a regular file" in err


def test_escape_codes_in_file_names_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b[31m\nname.csv"
    path.write_text("")
    with pytest.raises(FormatError, match=r"evil\\x1b\[31m\\nname.csv: empty file") as err:
        read_csv(path)
    one_line(err.value)
    idx = tmp_path / "e\x1b]0;t\x07-images-idx3-ubyte"
    idx.write_bytes(b"\x00")
    with pytest.raises(FormatError, match=r"e\\x1b\]0;t\\x07-images-idx3-ubyte: too short") as err:
        read_idx(idx)
    one_line(err.value)


def test_inspect_report_escapes_names_from_the_files() -> None:
    images = np.zeros((2, 1, 2, 2), np.uint8)
    raw = RawSplits((images, np.array([0, 1])), None, ("ok", "bad\x1b[2J\n"), "d\x1b", "folders")
    text = inspect_data(raw).to_text()
    assert "\x1b" not in text and "bad\\x1b[2J\\n" in text and "format    folders (d\\x1b)" in text


# ---------------------------------------------------------------- one rule for every format


def test_one_class_is_refused_for_every_dataset() -> None:
    images = np.zeros((3, 1, 2, 2), np.uint8)
    with pytest.raises(
        FormatError, match=r"^photos: every training label is class 0 \('cat'\), the only class"
    ):
        RawSplits((images, np.zeros(3, np.int64)), None, ("cat", "dog"), "photos", "folders")
    with pytest.raises(FormatError, match=r"photos: test label 5 at index 1 is outside 0..1"):
        RawSplits(
            (images, np.array([0, 1, 0])), (images, np.array([1, 5, 0])), ("a", "b"), "photos",
            "folders",
        )  # fmt: skip
    split = Split(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(DataError, match=r"dataset 'mine' \(memory\): every training label is"):
        Dataset("mine", split, split, ("a", "b"), "memory")


def test_a_loop_of_links_as_the_dataset_says_so(tmp_path: Path) -> None:
    """It said 'must be one of mnist, ...', as if the name were a typo."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    os.chdir(tmp_path)
    with pytest.raises(
        DataError, match=r"^dataset 'a' is a symbolic link that leads nowhere \(dangling, or a loop"
    ):
        load_dataset("a")
    assert main(["train", "--dataset", "a", "--epochs", "1"]) == 2


def test_a_pixel_too_large_for_float32_is_not_called_not_a_number(tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_text("label,p1,p2,p3,p4\n0,1e300,0,0,0\n1,0,0,0,0\n")
    with pytest.raises(FormatError, match=r"line 2, column 2 \('p1'\): pixel inf is infinite \(or "
                       r"beyond 3.4e\+38, the largest float32 value\)"):  # fmt: skip
        read_csv(tmp_path / "big.csv")
