"""CIFAR-10, in its binary and its Python version, as folders or as the published ``.tar.gz``.

Binary (``cifar-10-batches-bin/``): ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
``test_batch.bin``, each a run of 3,073-byte records (1 label byte, then 3,072 pixel
bytes: the red, green and blue 32x32 planes), with class names in ``batches.meta.txt``.

Python (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta`` are pickles written by Python 2: dicts with bytes keys (``b"data"``: uint8
N x 3072, ``b"labels"``: a list of ints). Unpickling can run any code a file names, so
they are read with :class:`SafeUnpickler`, which resolves only the few numpy names that
arrays need and refuses everything else before it runs.

An archive (``cifar-10-binary.tar.gz``, ``cifar-10-python.tar.gz``) is read in memory:
the members with the expected names are decompressed, nothing is written to disk.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from .raw import RawSplits, as_labels

__all__ = [
    "CIFAR10_ARCHIVE",
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "SafeUnpickler",
    "read_cifar",
    "safe_unpickle",
]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # of the archive as published, not its content

RECORD_BYTES = 1 + 3 * 32 * 32
_MEMBER_LIMIT = 256 << 20  # bytes; a real batch is ~31 MB: anything far larger is no batch
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
    train = (np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]]))
    for labels_part, name in zip([p[1] for p in parts], names, strict=True):
        if len(labels_part) and labels_part.max() >= len(classes):
            index = int(np.argmax(labels_part >= len(classes)))
            raise FormatError(
                f"{origin}/{name}: record {index + 1}: label {int(labels_part[index])} is out of "
                f"range: CIFAR-10 labels are 0..{len(classes) - 1}"
            )
    kind = "binary records" if version == "bin" else "Python pickles (restricted unpickler)"
    notes = {"version": kind, "classes": where}
    return RawSplits(train, parts[5], classes, str(path), "cifar", notes)


def _locate(path: Path) -> tuple[dict[str, Callable[[], bytes]], str, str]:
    """The member files by name (readers of their bytes), "bin" or "py", and their origin."""
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _archive_members(path)
    if path.is_file():  # a batch file: read the folder it lies in
        path = path.parent
    if not path.is_dir():
        raise FormatError(f"{path}: no such file or folder")
    for name in _FOLDERS:
        if (path / name).is_dir():
            path = path / name
            break
    else:
        for name in _ARCHIVES:
            if (path / name).is_file():
                return _archive_members(path / name)
    files = {p.name: p.read_bytes for p in path.iterdir() if p.is_file()}
    if "data_batch_1.bin" in files or "test_batch.bin" in files:
        return files, "bin", str(path)
    if "data_batch_1" in files or "test_batch" in files:
        return files, "py", str(path)
    raise FormatError(
        f"{path}: no CIFAR-10 batches: expected {', '.join(_FOLDERS)} (or the files inside one: "
        f"data_batch_1.bin .. data_batch_5.bin, test_batch.bin, or their Python versions "
        f"without .bin), or {' / '.join(_ARCHIVES)}"
    )


def _archive_members(archive: Path) -> tuple[dict[str, Callable[[], bytes]], str, str]:
    wanted = {f"{n}{ext}" for n in (*_TRAIN, "test_batch") for ext in ("", ".bin")}
    wanted |= {"batches.meta", "batches.meta.txt"}
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or name not in wanted:
                    continue  # links, folders and other files are never opened
                if member.size > _MEMBER_LIMIT:
                    raise FormatError(
                        f"{archive}: member {member.name} is {member.size} bytes; a CIFAR-10 "
                        f"batch is about 31 MB"
                    )
                stream = tar.extractfile(member)
                files[name] = stream.read() if stream is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FormatError(
            f"{archive}: not a readable .tar.gz archive ({exc}); delete it and download it again"
        ) from None
    version = "bin" if any(n.endswith(".bin") for n in files) else "py"
    readers = {name: (lambda data=data: data) for name, data in files.items()}
    return readers, version, str(archive)


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
    batch = _as_dict(safe_unpickle(data, source), source, ("data", "labels"))
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
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        labels = np.asarray([], dtype=object)
    labels = as_labels(labels, f"{source}: 'labels'")
    if len(labels) != len(pixels):
        raise FormatError(f"{source}: {len(pixels)} images but {len(labels)} labels")
    return pixels.reshape(-1, 3, 32, 32), labels


def _meta_txt(files: dict[str, Callable[[], bytes]], origin: str) -> tuple[tuple[str, ...], str]:
    if "batches.meta.txt" not in files:
        return CIFAR10_CLASSES, "official names (no batches.meta.txt)"
    text = files["batches.meta.txt"]().decode("utf-8", errors="replace")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != len(CIFAR10_CLASSES):
        raise FormatError(
            f"{origin}/batches.meta.txt: {len(names)} class names, CIFAR-10 has {len(CIFAR10_CLASSES)}"
        )
    return names, "batches.meta.txt"


def _meta_pickle(files: dict[str, Callable[[], bytes]], origin: str) -> tuple[tuple[str, ...], str]:
    if "batches.meta" not in files:
        return CIFAR10_CLASSES, "official names (no batches.meta)"
    source = f"{origin}/batches.meta"
    meta = _as_dict(safe_unpickle(files["batches.meta"](), source), source, ("label_names",))
    raw = meta["label_names"]
    if not isinstance(raw, list) or not all(isinstance(n, (bytes, str)) for n in raw):
        raise FormatError(f"{source}: 'label_names' must be a list of names")
    names = tuple(n.decode("utf-8", errors="replace") if isinstance(n, bytes) else n for n in raw)
    if len(names) != len(CIFAR10_CLASSES):
        raise FormatError(
            f"{source}: {len(names)} class names, CIFAR-10 has {len(CIFAR10_CLASSES)}"
        )
    return names, "batches.meta"


def _as_dict(obj: object, source: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise FormatError(f"{source}: holds a {type(obj).__name__}, expected a dict of arrays")
    batch = {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}
    missing = [k for k in required if k not in batch]
    if missing:
        raise FormatError(
            f"{source}: no key '{missing[0]}'; keys: {', '.join(sorted(batch)) or 'none'}"
        )
    return batch


def _latin1_bytes(text: object, encoding: object = "latin1") -> bytes:
    """What Python 3 pickles (protocol 2) call to rebuild ``bytes``: str.encode('latin1'), only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin1 text")
    return text.encode("latin1")


_reconstruct = np.zeros(0).__reduce__()[0]  # numpy.core or numpy._core: wherever it lives
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]
_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1.x (the real files)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2.x
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,  # bytes in pickles Python 3 writes with protocol 2
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers (dict, list, tuple, str, bytes, numbers) and numpy arrays.

    Every other global a pickle names is refused before it is looked up, so nothing a
    file names can run. Strings written by Python 2 come back as bytes.
    """

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise FormatError(
                f"refusing to unpickle {module}.{name} from {self.source}: only plain "
                "containers and numpy arrays are allowed"
            )
        return allowed


def safe_unpickle(data: bytes, source: str) -> object:
    """Unpickle ``data`` with :class:`SafeUnpickler`; any failure is a :class:`FormatError`."""
    try:
        return SafeUnpickler(io.BytesIO(data), source).load()
    except FormatError:
        raise
    except Exception as exc:  # a malformed pickle fails in many ways; each means the same
        raise FormatError(
            f"{source}: not a readable pickle ({type(exc).__name__}: {exc})"
        ) from None
