"""CIFAR-10, in its binary and its Python version, as folders or as the published ``.tar.gz``.

Binary (``cifar-10-batches-bin/``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
``test_batch.bin``, each a run of 3,073-byte records (1 label byte, then 3,072 pixel
bytes: the red, green and blue 32x32 planes), with class names in ``batches.meta.txt``.

Python (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta`` are pickles written by Python 2: dicts with bytes keys (``b"data"``: uint8
N x 3072, ``b"labels"``: a list of ints). They are never unpickled: unpickling runs any
code a file names, and even a restricted unpickler lets a few bytes allocate gigabytes
(``numpy.ndarray((10**9,), object)``). :func:`read_pickle` is a reader of the pickle
format that builds only plain values (dicts, lists, tuples, bytes, text, numbers) and
numpy arrays from the bytes the file holds; it calls nothing a file names, and checks
every array's declared shape against its bytes.

An archive (``cifar-10-binary.tar.gz``, ``cifar-10-python.tar.gz``) is read as a stream,
in memory: nothing is extracted or written anywhere. The archive may hold only regular
files and folders with relative names (a link, device, sparse file, absolute name or
``..`` is refused), at most :data:`_MAX_MEMBERS` members, batches of at most
:data:`_MEMBER_LIMIT` bytes, and at most :data:`_ARCHIVE_LIMIT` bytes decompressed in all,
so a decompression bomb or a header that claims gigabytes stops with one line.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import math
import os
import re
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import FormatError
from ..files.limits import check_alloc, memory_budget, open_regular, printable
from .raw import RawSplits, as_labels

__all__ = [
    "CIFAR10_ARCHIVE",
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "read_cifar",
    "read_pickle",
]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # of the archive as published, not its content

RECORD_BYTES = 1 + 3 * 32 * 32
_MEMBER_LIMIT = 256 << 20  # bytes; a real batch is ~31 MB: anything far larger is no batch
_ARCHIVE_LIMIT = 1 << 30  # bytes decompressed in all; the real archives hold ~180 MB
_MAX_MEMBERS = 1000  # the real archives hold 9 or 10
_FOLDERS = ("cifar-10-batches-bin", "cifar-10-batches-py")
_ARCHIVES = ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz")
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def read_cifar(path: str | Path) -> RawSplits:
    """Read CIFAR-10 from a batches folder, a folder holding one, a batch file, or an archive."""
    path = Path(path)
    files, version, origin = _locate(path)
    if version == "bin":
        names = [f"{n}.bin" for n in (*_TRAIN, "test_batch")]
        _require(files, names, origin)
        parts = [_read_records(files[n](), f"{origin}/{n}") for n in names]
        classes, where = _meta_txt(files, origin)
    else:
        names = [*_TRAIN, "test_batch"]
        _require(files, names, origin)
        parts = [_read_pickled_batch(files[n](), f"{origin}/{n}") for n in names]
        classes, where = _meta_pickle(files, origin)
    for labels_part, name in zip([p[1] for p in parts], names, strict=True):
        if len(labels_part) and labels_part.max() >= len(classes):
            index = int(np.argmax(labels_part >= len(classes)))
            raise FormatError(
                f"{origin}/{name}: record {index + 1}: label {int(labels_part[index])} is out of "
                f"range: CIFAR-10 labels are 0..{len(classes) - 1}"
            )
    check_alloc(sum(p[0].nbytes for p in parts[:5]), f"{origin}: the training batches")
    train = (np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]]))
    kind = "binary records" if version == "bin" else "Python batches (read without unpickling)"
    notes = {"version": kind, "classes": where}
    return RawSplits(train, parts[5], classes, str(path), "cifar", notes)


def _locate(path: Path) -> tuple[dict[str, Callable[[], bytes]], str, str]:
    """The member files by name (readers of their bytes), "bin" or "py", and their origin."""
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _archive_members(path)
    if path.is_file() and path.name.endswith((".bz2", ".zip", ".xz", ".7z", ".rar", ".zst")):
        raise FormatError(  # else taken for a batch file and its folder searched: misleading
            f"{printable(path)}: an archive mlplab does not open for CIFAR-10; CIFAR-10 is a "
            ".tar.gz (or .tgz, .tar) archive or a folder of batch files: repack it, or extract "
            "it and pass the folder"
        )
    if path.is_file():  # a batch file: read the folder it lies in
        path = path.parent
    if not path.is_dir():
        if path.exists():
            raise FormatError(
                f"{printable(path)}: neither a regular file nor a folder (a FIFO or device?); "
                "CIFAR-10 is a folder of batch files or a .tar.gz archive"
            )
        raise FormatError(f"{printable(path)}: no such file or folder")
    for name in _FOLDERS:
        if (path / name).is_dir():
            path = path / name
            break
    else:
        for name in _ARCHIVES:
            if (path / name).is_file():
                return _archive_members(path / name)
    # is_file: a FIFO or device named like a batch is never opened (it could block forever)
    files = {p.name: _file_reader(p) for p in path.iterdir() if p.is_file()}
    origin = printable(path)
    if "data_batch_1.bin" in files or "test_batch.bin" in files:
        return files, "bin", origin
    if "data_batch_1" in files or "test_batch" in files:
        return files, "py", origin
    raise FormatError(
        f"{origin}: no CIFAR-10 batches: expected {', '.join(_FOLDERS)} (or the files inside one: "
        f"data_batch_1.bin .. data_batch_5.bin, test_batch.bin, or their Python versions "
        f"without .bin), or {' / '.join(_ARCHIVES)}"
    )


def _file_reader(path: Path) -> Callable[[], bytes]:
    """Read a batch file, refusing non-regular files and anything larger than a batch can be."""

    def read() -> bytes:
        with open_regular(path) as stream:
            size = _fstat_size(stream)
            what = f"{printable(path)}: {size:,} bytes"
            if size > _MEMBER_LIMIT:
                raise FormatError(f"{what}; a CIFAR-10 batch is about 31 MB: not a batch")
            check_alloc(size, what)
            data = stream.read(size + 1)  # not read_bounded: read(limit) allocates the limit
            if len(data) != size:
                raise FormatError(f"{what} when opened, {len(data):,} when read: it is changing")
            return data

    return read


def _fstat_size(stream: IO[bytes]) -> int:
    return os.fstat(stream.fileno()).st_size


class _Bounded(io.RawIOBase):
    """A read-only stream that refuses to deliver more than ``limit`` bytes in all."""

    def __init__(self, stream: IO[bytes], limit: int, what: str) -> None:
        self.stream, self.left, self.what, self.limit = stream, limit, what, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.stream.read(min(len(view), self.left + 1))
        if len(data) > self.left:
            raise FormatError(
                f"{self.what} decompresses to more than {self.limit:,} bytes, more than mlplab "
                "reads from a CIFAR-10 archive (the real ones hold about 180 MB; the bound is "
                "1 GiB, less with little memory: MLPLAB_MAX_ALLOC_MB): a decompression bomb, or "
                "not CIFAR-10"
            )
        self.left -= len(data)
        view[: len(data)] = data
        return len(data)


def _decompressed(raw: IO[bytes], what: str) -> IO[bytes]:
    """``raw`` decompressed by its magic number (gzip, bzip2, xz) or as it is (a plain tar)."""
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")
    elif head.startswith(b"BZh"):
        stream = bz2.BZ2File(raw, "rb")
    elif head.startswith(b"\xfd7zXZ\x00"):
        stream = lzma.LZMAFile(raw, "rb")  # noqa: SIM115 - closed with raw, by the caller
    else:
        stream = raw
    limit = min(_ARCHIVE_LIMIT, memory_budget())
    return io.BufferedReader(_Bounded(stream, limit, what), 1 << 16)


def _archive_members(archive: Path) -> tuple[dict[str, Callable[[], bytes]], str, str]:
    wanted = {f"{n}{ext}" for n in (*_TRAIN, "test_batch") for ext in ("", ".bin")}
    wanted |= {"batches.meta", "batches.meta.txt"}
    origin = printable(archive)
    files: dict[str, bytes] = {}
    try:
        with open_regular(archive) as raw:
            stream = _decompressed(raw, origin)
            # a stream ("r|"): read once, front to back; no member is ever extracted
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for count, member in enumerate(tar, 1):
                    tar.members.clear()  # a stream keeps every header read; none is needed
                    if count > _MAX_MEMBERS:
                        raise FormatError(
                            f"{origin}: more than {_MAX_MEMBERS:,} members; a CIFAR-10 archive "
                            "holds about ten"
                        )
                    name = _checked_member(member, origin)
                    if not member.isfile() or name not in wanted:
                        continue  # folders and other files are read past, never opened
                    files[name] = _member_bytes(tar, member, name, files, origin)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise FormatError(
            f"{origin}: not a readable .tar.gz archive ({printable(exc)}); delete it and "
            "download it again"
        ) from None
    version = "bin" if any(n.endswith(".bin") for n in files) else "py"
    readers = {name: (lambda data=data: data) for name, data in files.items()}
    return readers, version, origin


def _checked_member(member: tarfile.TarInfo, origin: str) -> str:
    """The base name of a member, once it is known to be a plain file or folder, by a plain name."""
    shown = f"{origin}: member '{printable(member.name)}'"
    parts = member.name.replace("\\", "/").split("/")
    if member.name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", member.name):
        raise FormatError(
            f"{shown} has an absolute path or '..'; a CIFAR-10 archive holds relative names only "
            "(nothing is extracted)"
        )
    if member.issparse() or not (member.isfile() or member.isdir()):
        kind = (
            "a symbolic link"
            if member.issym()
            else "a hard link"
            if member.islnk()
            else "a sparse file"
            if member.issparse()
            else "a device or FIFO"
            if member.isdev()
            else "not a plain file"
        )
        raise FormatError(
            f"{shown} is {kind}; a CIFAR-10 archive holds only files and folders (nothing is "
            "extracted)"
        )
    return parts[-1]


def _member_bytes(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, files: dict[str, bytes], origin: str
) -> bytes:
    shown = f"{origin}: member '{printable(member.name)}'"
    if name in files:
        raise FormatError(f"{shown}: a second {name} in the archive; which one is meant?")
    if member.size > _MEMBER_LIMIT:
        raise FormatError(
            f"{shown} is {member.size:,} bytes; a CIFAR-10 batch is about 31 MB: not a batch"
        )
    check_alloc(member.size, shown)
    stream = tar.extractfile(member)
    data = stream.read(member.size) if stream is not None else b""
    if len(data) != member.size:
        raise FormatError(
            f"{shown} declares {member.size:,} bytes but the archive holds {len(data):,} "
            "(truncated)"
        )
    return data


def _require(files: dict[str, Any], names: list[str], origin: str) -> None:
    missing = [n for n in names if n not in files]
    if missing:
        raise FormatError(
            f"{origin}: missing {', '.join(missing)}; CIFAR-10 has {', '.join(names)}"
        )


def _read_records(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) % RECORD_BYTES or not data:
        raise FormatError(
            f"{source}: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records "
            "(1 label byte + 3072 pixel bytes); the file is truncated or not a CIFAR-10 batch"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()  # planes R, G, B: already C, H, W
    return images, records[:, 0].astype(np.int64)


def _read_pickled_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _as_dict(read_pickle(data, source), source, ("data", "labels"))
    pixels, labels = batch["data"], batch["labels"]
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 2
        or (pixels.shape[1] != RECORD_BYTES - 1)
    ):
        described = (
            f"{pixels.dtype} {pixels.shape}"
            if isinstance(pixels, np.ndarray)
            else type(pixels).__name__
        )
        raise FormatError(f"{source}: 'data' must be a uint8 array of N x 3072, got {described}")
    labels = as_labels(_label_array(labels, source), f"{source}: 'labels'")
    if len(labels) != len(pixels):
        raise FormatError(f"{source}: {len(pixels)} images but {len(labels)} labels")
    return pixels.reshape(-1, 3, 32, 32).copy(), labels


def _label_array(labels: object, source: str) -> np.ndarray:
    """A pickle's labels (a list of ints, or an integer array) as an array, checked by type."""
    if isinstance(labels, np.ndarray):
        return labels
    if isinstance(labels, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels
    ):
        try:
            return np.asarray(
                labels, dtype=np.float64 if any(isinstance(v, float) for v in labels) else np.int64
            )
        except OverflowError:
            return np.asarray([float(v) for v in labels])  # as_labels names the huge one
    raise FormatError(
        f"{source}: 'labels' must be a list of class indices (whole numbers), got "
        f"{type(labels).__name__}"
        + (" holding other values" if isinstance(labels, (list, tuple)) else "")
    )


def _meta_txt(files: dict[str, Callable[[], bytes]], origin: str) -> tuple[tuple[str, ...], str]:
    if "batches.meta.txt" not in files:
        return CIFAR10_CLASSES, "official names (no batches.meta.txt)"
    text = files["batches.meta.txt"]().decode("utf-8", errors="replace")
    names = tuple(printable(line.strip()) for line in text.splitlines() if line.strip())
    if len(names) != len(CIFAR10_CLASSES):
        raise FormatError(
            f"{origin}/batches.meta.txt: {len(names)} class names, CIFAR-10 has {len(CIFAR10_CLASSES)}"
        )
    return names, "batches.meta.txt"


def _meta_pickle(files: dict[str, Callable[[], bytes]], origin: str) -> tuple[tuple[str, ...], str]:
    if "batches.meta" not in files:
        return CIFAR10_CLASSES, "official names (no batches.meta)"
    source = f"{origin}/batches.meta"
    meta = _as_dict(read_pickle(files["batches.meta"](), source), source, ("label_names",))
    raw = meta["label_names"]
    if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
        raise FormatError(f"{source}: 'label_names' must be a list of names")
    names = tuple(
        printable(n.decode("utf-8", errors="replace") if isinstance(n, bytes) else n) for n in raw
    )
    if len(names) != len(CIFAR10_CLASSES):
        raise FormatError(
            f"{source}: {len(names)} class names, CIFAR-10 has {len(CIFAR10_CLASSES)}"
        )
    return names, "batches.meta"


def _as_dict(obj: object, source: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError(f"{source}: holds a {type(obj).__name__}, expected a dict of arrays")
    batch = {
        printable(k.decode("latin1") if isinstance(k, bytes) else k): v
        for k, v in obj.items()
        if isinstance(k, (bytes, str))
    }
    missing = [k for k in required if k not in batch]
    if missing:
        keys = sorted(batch)
        shown = ", ".join(keys[:20]) + (f", … ({len(keys)} in all)" if len(keys) > 20 else "")
        raise FormatError(f"{source}: no key '{missing[0]}'; keys: {shown or 'none'}")
    return {k: _value(v) for k, v in batch.items()}


# --- A reader of the pickle format that never unpickles -------------------------------------
#
# Python's pickle format is a little stack machine. Only the opcodes that describe data are
# read here; the ones that call things (REDUCE, BUILD, NEWOBJ, INST, OBJ, EXT*) are read only
# in the shapes numpy's arrays and dtypes take, and turned into arrays by this code from the
# bytes in the file. Any name outside that short list is refused before anything else is
# read, and nothing a file names is ever imported or called.


class _Refused(Exception):
    """A malformed or hostile pickle: the message says what and where."""


class _Global:
    """A name the pickle refers to (only the few numpy ones arrays need get this far)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class _Array:
    """numpy's ``_reconstruct(ndarray, ...)``: an array whose shape and bytes BUILD sets."""

    array: np.ndarray | None = None


class _Dtype:
    """numpy's ``dtype(code, ...)``: a plain numeric dtype, whose byte order BUILD may set."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",  # numpy 1.x (the real files)
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",  # numpy 2.x
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",  # bytes in pickles Python 3 writes with protocol 2
}
_DTYPE_CODE = re.compile(r"[<>|=]?(b1|u[1248]|i[1248]|f[248])")  # plain numbers only
_MAX_DIMS = 32
_MAX_LONG = 64  # bytes of one integer: no CIFAR value is near this long
_MAX_OPS = 200_000  # opcodes in one pickle: a real batch has ~35,000; bounds the time taken


def read_pickle(data: bytes, source: str) -> object:
    """The dicts, lists, numbers, text and numpy arrays a pickle describes, without unpickling.

    Raises :class:`FormatError` for anything else: a name other than numpy's array and
    dtype helpers, an array whose declared shape disagrees with its bytes, a truncated or
    malformed stream.
    """
    try:
        return _Machine(data, source).run()
    except FormatError:
        raise
    except _Refused as exc:
        raise FormatError(f"{source}: not a readable pickle ({exc})") from None
    except (IndexError, KeyError, TypeError, ValueError, OverflowError, struct.error) as exc:
        # a malformed stream: an empty stack, an unknown memo key, a bad value
        raise FormatError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {printable(exc)[:200]})"
        ) from None


class _Machine:
    """One pass over a pickle's opcodes, with the stack, the marks and the memo of pickle."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.source, self.pos = bytes(data), source, 0  # slices: small copies
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Refused(
                f"a value of {n:,} bytes at byte {self.pos:,}, but the pickle ends at byte "
                f"{len(self.data):,} (truncated, or a wrong length)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def line(self) -> bytes:
        end = self.data.find(b"\n", self.pos, self.pos + 4096)
        if end < 0:
            raise _Refused(f"a text value at byte {self.pos:,} does not end (no newline)")
        return self.take(end + 1 - self.pos)[:-1]

    def uint(self, n: int) -> int:
        end = self.pos + n
        if end > len(self.data):
            self.take(n)  # raises: the pickle ends first
        value = int.from_bytes(self.data[self.pos : end], "little")
        self.pos = end
        return value

    def pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def refuse(self, module: str, name: str) -> None:
        raise FormatError(
            f"refusing to unpickle {printable(module)}.{printable(name)} from {self.source}: "
            "only plain containers and numpy arrays are allowed"
        )

    def run(self) -> object:
        ops = _OPS
        # a batch's opcodes grow with its samples (~3.5 a sample): the cap grows with the file
        max_ops = max(_MAX_OPS, len(self.data) // 64)
        for _ in range(max_ops):
            if self.pos >= len(self.data):
                raise _Refused("the pickle ends before its STOP opcode (truncated)")
            code = self.data[self.pos]
            self.pos += 1
            if code == 0x2E:  # STOP
                return _value(self.stack.pop())
            op = ops.get(code)
            if op is None:
                raise _Refused(
                    f"opcode 0x{code:02x} at byte {self.pos - 1:,} is not one that describes data"
                )
            op(self)
        raise _Refused(
            f"more than {max_ops:,} opcodes; a CIFAR-10 batch has about 35,000 (10,000 labels "
            "and file names)"
        )

    # -- opcodes ---------------------------------------------------------------------------

    def global_(self, module: str, name: str) -> None:
        if (module, name) not in _ALLOWED:
            self.refuse(module, name)
        self.stack.append(_Global(module, name))

    def reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack.pop()
        if not isinstance(func, _Global) or not isinstance(args, tuple):
            raise _Refused(f"a call of a {type(func).__name__} at byte {self.pos - 1:,}")
        self.stack.append(_call(func, args, self.source))

    def build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, _Array) and target.array is None:
            target.array = _array_state(state, self.source)
        elif isinstance(target, _Dtype):
            target.dtype = _dtype_state(target.dtype, state)
        else:
            raise _Refused(f"a state set on a {type(target).__name__} at byte {self.pos - 1:,}")


def _int_text(text: bytes) -> int | bool:
    text = text.rstrip(b"L")
    if text in (b"00", b"01"):  # protocol 0's False and True
        return text == b"01"
    if len(text) > _MAX_LONG * 3:
        raise _Refused("an integer of more digits than any CIFAR value")
    return int(text)


def _string_text(text: bytes) -> bytes:
    if len(text) < 2 or text[:1] not in (b"'", b'"') or text[-1:] != text[:1]:
        raise _Refused("a quoted string without its quotes")
    return codecs.escape_decode(text[1:-1])[0]


def _long(raw: bytes) -> int:
    if len(raw) > _MAX_LONG:
        raise _Refused(f"an integer of {len(raw):,} bytes; no CIFAR value is so long")
    return int.from_bytes(raw, "little", signed=True)


def _settled(value: Any) -> Any:
    """A value as it goes into a container: an array whose bytes came becomes the array.

    numpy's arrays are made in two steps (REDUCE, then BUILD sets the bytes), and the
    real files put them into their dict only after both; a holder never built stays one,
    and is refused where an array is wanted.
    """
    if isinstance(value, _Array) and value.array is not None:
        return value.array
    if isinstance(value, _Dtype):
        return value.dtype
    return value


def _setitems(m: _Machine, items: list[Any]) -> None:
    target = m.stack[-1]
    if not isinstance(target, dict) or len(items) % 2:
        raise _Refused(f"dict items set on a {type(target).__name__}")
    for key, value in zip(items[::2], items[1::2], strict=True):
        target[_key(key)] = _settled(value)


def _key(key: object) -> object:
    if isinstance(key, (_Array, _Dtype, _Global, list, dict, set)):
        raise _Refused("a dict key that is not a plain value")
    return key


def _append(m: _Machine, items: list[Any]) -> None:
    target = m.stack[-1]
    if isinstance(target, list):
        target.extend(_settled(i) for i in items)
    elif isinstance(target, set):
        target.update(_key(i) for i in items)
    else:
        raise _Refused(f"items appended to a {type(target).__name__}")


def _push(value: Any) -> Callable[[_Machine], None]:
    return lambda m: m.stack.append(value)


def _mark(m: _Machine) -> None:
    m.marks.append(m.stack)
    m.stack = []


def _put(m: _Machine, index: int) -> None:
    m.memo[index] = m.stack[-1]


def _frame(m: _Machine) -> None:
    m.uint(8)  # protocol 4's frames only group opcodes; the data is already all here


def _protocol(m: _Machine) -> None:
    if m.uint(1) > 5:
        raise _Refused("a pickle protocol newer than 5")


def _inst(m: _Machine) -> None:
    module, name = m.line().decode("utf-8", "replace"), m.line().decode("utf-8", "replace")
    m.refuse(module, name)


def _stack_global(m: _Machine) -> None:
    name, module = m.stack.pop(), m.stack.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        raise _Refused("STACK_GLOBAL of names that are not text")
    m.global_(module, name)


def _refuse_op(what: str) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        raise _Refused(f"{what} at byte {m.pos - 1:,}: pickles of CIFAR-10 hold only data")

    return op


def _dup(m: _Machine) -> None:
    m.stack.append(m.stack[-1])


def _pop(m: _Machine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        if len(m.stack) < n:
            raise _Refused("a tuple of more items than the stack holds")
        items = m.stack[len(m.stack) - n :] if n else []
        del m.stack[len(m.stack) - n :]
        m.stack.append(tuple(_settled(i) for i in items))

    return op


def _dict_from_mark(m: _Machine) -> None:
    items = m.pop_mark()
    m.stack.append({})
    _setitems(m, items)


def _push_marked(m: _Machine, kind: Callable[[list[Any]], Any]) -> None:
    items = m.pop_mark()  # first: it gives back the stack below the mark
    m.stack.append(kind(items))


def _frozenset(m: _Machine) -> None:
    _push_marked(m, lambda items: frozenset(_key(i) for i in items))


_OPS: dict[int, Callable[[_Machine], None]] = {
    0x80: _protocol,  # PROTO
    0x95: _frame,  # FRAME
    0x28: _mark,  # MARK (
    0x30: _pop,  # POP 0
    0x31: lambda m: m.pop_mark() and None,  # POP_MARK 1
    0x32: _dup,  # DUP 2
    0x4E: _push(None),  # NONE N
    0x88: _push(True),  # NEWTRUE
    0x89: _push(False),  # NEWFALSE
    0x49: lambda m: m.stack.append(_int_text(m.line())),  # INT I
    0x4C: lambda m: m.stack.append(_int_text(m.line())),  # LONG L
    0x4A: lambda m: m.stack.append(int.from_bytes(m.take(4), "little", signed=True)),  # BININT
    0x4B: lambda m: m.stack.append(m.uint(1)),  # BININT1 K
    0x4D: lambda m: m.stack.append(m.uint(2)),  # BININT2 M
    0x8A: lambda m: m.stack.append(_long(m.take(m.uint(1)))),  # LONG1
    0x8B: lambda m: m.stack.append(_long(m.take(m.uint(4)))),  # LONG4
    0x46: lambda m: m.stack.append(float(m.line()[:64])),  # FLOAT F
    0x47: lambda m: m.stack.append(struct.unpack(">d", m.take(8))[0]),  # BINFLOAT G
    0x53: lambda m: m.stack.append(_string_text(m.line())),  # STRING S
    0x54: lambda m: m.stack.append(m.take(m.uint(4))),  # BINSTRING T (Python 2 str: bytes)
    0x55: lambda m: m.stack.append(m.take(m.uint(1))),  # SHORT_BINSTRING U
    0x42: lambda m: m.stack.append(m.take(m.uint(4))),  # BINBYTES B
    0x43: lambda m: m.stack.append(m.take(m.uint(1))),  # SHORT_BINBYTES C
    0x8E: lambda m: m.stack.append(m.take(m.uint(8))),  # BINBYTES8
    0x96: lambda m: m.stack.append(m.take(m.uint(8))),  # BYTEARRAY8 (read as bytes)
    0x98: lambda m: None,  # READONLY_BUFFER: a no-op on in-band data
    0x56: lambda m: m.stack.append(m.line().decode("raw_unicode_escape")),  # UNICODE V
    0x58: lambda m: m.stack.append(m.take(m.uint(4)).decode("utf-8", "surrogatepass")),  # X
    0x8C: lambda m: m.stack.append(m.take(m.uint(1)).decode("utf-8", "surrogatepass")),
    0x8D: lambda m: m.stack.append(m.take(m.uint(8)).decode("utf-8", "surrogatepass")),
    0x29: _tuple_n(0),  # EMPTY_TUPLE )
    0x85: _tuple_n(1),  # TUPLE1
    0x86: _tuple_n(2),  # TUPLE2
    0x87: _tuple_n(3),  # TUPLE3
    0x74: lambda m: _push_marked(m, lambda items: tuple(_settled(i) for i in items)),  # TUPLE
    0x5D: lambda m: m.stack.append([]),  # EMPTY_LIST ]
    0x6C: lambda m: _push_marked(m, lambda items: [_settled(i) for i in items]),  # LIST l
    0x61: lambda m: _append(m, [m.stack.pop()]),  # APPEND a
    0x65: lambda m: _append(m, m.pop_mark()),  # APPENDS e
    0x7D: lambda m: m.stack.append({}),  # EMPTY_DICT }
    0x64: _dict_from_mark,  # DICT d
    0x73: lambda m: _setitems(m, [m.stack.pop(-2), m.stack.pop()]),  # SETITEM s
    0x75: lambda m: _setitems(m, m.pop_mark()),  # SETITEMS u
    0x8F: lambda m: m.stack.append(set()),  # EMPTY_SET
    0x90: lambda m: _append(m, m.pop_mark()),  # ADDITEMS
    0x91: _frozenset,  # FROZENSET
    0x70: lambda m: _put(m, int(m.line()[:20])),  # PUT p
    0x71: lambda m: _put(m, m.uint(1)),  # BINPUT q
    0x72: lambda m: _put(m, m.uint(4)),  # LONG_BINPUT r
    0x94: lambda m: _put(m, len(m.memo)),  # MEMOIZE
    0x67: lambda m: m.stack.append(m.memo[int(m.line()[:20])]),  # GET g
    0x68: lambda m: m.stack.append(m.memo[m.uint(1)]),  # BINGET h
    0x6A: lambda m: m.stack.append(m.memo[m.uint(4)]),  # LONG_BINGET j
    0x63: lambda m: m.global_(  # GLOBAL c
        m.line().decode("utf-8", "replace"), m.line().decode("utf-8", "replace")
    ),
    0x93: _stack_global,  # STACK_GLOBAL
    0x52: _Machine.reduce,  # REDUCE R
    0x62: _Machine.build,  # BUILD b
    0x69: _inst,  # INST i
    0x6F: _refuse_op("an object built by OBJ"),  # OBJ o
    0x81: _refuse_op("an object built by NEWOBJ"),  # NEWOBJ
    0x92: _refuse_op("an object built by NEWOBJ_EX"),  # NEWOBJ_EX
    0x82: _refuse_op("an extension code"),  # EXT1
    0x83: _refuse_op("an extension code"),  # EXT2
    0x84: _refuse_op("an extension code"),  # EXT4
    0x50: _refuse_op("a persistent id"),  # PERSID P
    0x51: _refuse_op("a persistent id"),  # BINPERSID Q
    0x97: _refuse_op("an out-of-band buffer"),  # NEXT_BUFFER
}


def _call(func: _Global, args: tuple[Any, ...], source: str) -> Any:
    """What calling one of the allowed numpy names would give, built here from data alone."""
    kind = _ALLOWED[(func.module, func.name)]
    if kind == "reconstruct":  # _reconstruct(ndarray, (0,), b"b"): an empty array, then BUILD
        if len(args) != 3 or not isinstance(args[0], _Global) or args[0].name != "ndarray":
            raise _Refused("numpy's _reconstruct with other arguments than an array's")
        return _Array()
    if kind == "dtype":  # dtype("u1", False, True)
        if not args:
            raise _Refused("numpy.dtype without a type")
        return _Dtype(_plain_dtype(args[0]))
    if kind == "encode":  # _codecs.encode(text, "latin1"): how Python 3 writes bytes
        if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
            raise _Refused("_codecs.encode is allowed only for latin1 text")
        return args[0].encode("latin1")
    if kind == "frombuffer":  # _frombuffer(buffer, dtype, shape, order): protocol 5
        if len(args) != 4 or not isinstance(args[0], bytes):
            raise _Refused("numpy's _frombuffer with other arguments than an array's")
        holder = _Array()
        holder.array = _array_from(args[0], _dtype_of(args[1]), args[2], args[3] == "F")
        return holder
    raise _Refused(f"numpy.{func.name} called directly; only arrays rebuilt from their bytes")


def _plain_dtype(code: object) -> np.dtype:
    text = code.decode("latin1") if isinstance(code, bytes) else code
    if not isinstance(text, str) or not _DTYPE_CODE.fullmatch(text):
        raise _Refused(
            "an array type other than plain numbers (bool, int, uint, float of 1-8 bytes)"
        )
    return np.dtype(text)


def _dtype_of(value: object) -> np.dtype:
    if isinstance(value, _Dtype):
        return value.dtype
    if isinstance(value, np.dtype):  # only _plain_dtype makes these: settled into a tuple
        return value
    raise _Refused(f"an array type given as a {type(value).__name__}")


def _dtype_state(dtype: np.dtype, state: object) -> np.dtype:
    """numpy's dtype state ``(version, byteorder, subarray, names, fields, ...)``: byte order only."""
    if not isinstance(state, tuple) or len(state) < 5 or any(v is not None for v in state[2:5]):
        raise _Refused("an array type with fields or sub-arrays; only plain numbers are read")
    order = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
    if order not in ("<", ">", "|", "="):
        raise _Refused("an array type with an unknown byte order")
    return dtype.newbyteorder(order) if order in "<>" else dtype


def _array_state(state: object, source: str) -> np.ndarray:
    """numpy's array state ``(version, shape, dtype, fortran_order, bytes)`` -> the array."""
    if isinstance(state, tuple) and len(state) == 5:
        state = state[1:]
    if not isinstance(state, tuple) or len(state) != 4:
        raise _Refused("an array state of another form than numpy writes")
    shape, dtype, fortran, raw = state
    if isinstance(raw, str):  # Python 3 protocols <= 2 without _codecs: latin-1 text
        raw = raw.encode("latin1")
    if not isinstance(raw, bytes):
        raise _Refused("an array of Python objects; only arrays of numbers are read")
    return _array_from(raw, _dtype_of(dtype), shape, bool(fortran))


def _array_from(raw: bytes, dtype: np.dtype, shape: object, fortran: bool) -> np.ndarray:
    if (
        not isinstance(shape, tuple)
        or len(shape) > _MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _Refused("an array shape that is not a tuple of sizes")
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(raw):
        dims = "x".join(str(d) for d in shape) or "scalar"
        raise _Refused(
            f"an array declared {dims} {dtype.name} ({declared:,} bytes) holds {len(raw):,} bytes"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _value(obj: object) -> object:
    """A finished value: array holders become their arrays (numbers, text and containers stay)."""
    if isinstance(obj, _Array):
        if obj.array is None:
            raise _Refused("an array whose bytes never came (no BUILD)")
        return obj.array
    if isinstance(obj, (_Dtype, _Global)):
        raise _Refused("a numpy name or type where data was expected")
    return obj
