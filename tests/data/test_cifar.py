"""CIFAR-10 in both versions, folders and archives, the pickle reader that never unpickles, and its source."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import pickle
import tarfile
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlplab.data.cifar import CIFAR10_CLASSES, read_cifar, read_pickle
from mlplab.data.sources import CIFAR10_SOURCE
from mlplab.errors import DownloadError, FormatError

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
N = 3  # records per batch
RECORD = 3073  # bytes: 1 label + 3072 pixels


def batch_arrays(index: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(index)
    return rng.integers(0, 256, (N, 3072), dtype=np.uint8), [(index + i) % 10 for i in range(N)]


def write_bin(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index, name in enumerate(BATCHES):
        data, labels = batch_arrays(index)
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    return folder


class Python2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes str and bytes as Python 2 wrote its str (BINSTRING), as the real files are."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + len(raw).to_bytes(4, "little") + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_pickle(obj: object) -> bytes:
    stream = io.BytesIO()
    Python2Pickler(stream, protocol=2).dump(obj)
    # numpy 1.x under Python 2 named the module numpy.core, as the published files do
    return stream.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_py(folder: Path, pickler: object = py2_pickle) -> Path:
    folder.mkdir(parents=True)
    for index, name in enumerate(BATCHES):
        data, labels = batch_arrays(index)
        batch = {
            b"batch_label": b"batch",
            b"labels": labels,
            b"data": data,
            b"filenames": [b"a.png"] * N,
        }
        (folder / name).write_bytes(pickler(batch))  # type: ignore[operator]
    meta = {
        b"num_cases_per_batch": N,
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickler(meta))  # type: ignore[operator]
    return folder


def expected() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    parts = [batch_arrays(i) for i in range(6)]
    images = [d.reshape(N, 3, 32, 32) for d, _ in parts]
    labels = [np.array(lab) for _, lab in parts]
    return np.concatenate(images[:5]), np.concatenate(labels[:5]), images[5], labels[5]


def check(raw: object) -> None:
    train_x, train_y, test_x, test_y = expected()
    np.testing.assert_array_equal(raw.train[0], train_x)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(raw.train[1], train_y)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(raw.test[0], test_x)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(raw.test[1], test_y)  # type: ignore[attr-defined]
    assert raw.classes == CIFAR10_CLASSES and raw.image_shape == (3, 32, 32)  # type: ignore[attr-defined]


def make_archive(path: Path, folder: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return path


def test_binary_folder(tmp_path: Path) -> None:
    folder = write_bin(tmp_path / "cifar-10-batches-bin")
    raw = read_cifar(folder)
    check(raw)
    assert raw.notes == {"version": "binary records", "classes": "batches.meta.txt"}
    check(read_cifar(tmp_path))  # the folder holding it
    check(read_cifar(folder / "test_batch.bin"))  # a batch file: its folder


def test_python_folder_with_python2_pickles(tmp_path: Path) -> None:
    raw = read_cifar(write_py(tmp_path / "cifar-10-batches-py"))
    check(raw)
    assert raw.notes == {
        "version": "Python batches (read without unpickling)",
        "classes": "batches.meta",
    }


def test_python3_protocol_2_pickles_also_load(tmp_path: Path) -> None:
    check(read_cifar(write_py(tmp_path / "py", lambda obj: pickle.dumps(obj, protocol=2))))
    check(read_cifar(write_py(tmp_path / "py5", lambda obj: pickle.dumps(obj, protocol=5))))


@pytest.mark.parametrize("version", ["bin", "py"])
def test_archives_are_read_in_memory(tmp_path: Path, version: str) -> None:
    src = tmp_path / "src"
    folder = (
        write_bin(src / "cifar-10-batches-bin")
        if version == "bin"
        else write_py(src / "cifar-10-batches-py")
    )
    (tmp_path / "dl").mkdir()
    archive = make_archive(
        tmp_path / "dl" / f"cifar-10-{'binary' if version == 'bin' else 'python'}.tar.gz", folder
    )
    check(read_cifar(archive))
    check(read_cifar(tmp_path / "dl"))  # the folder holding the archive
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [
        archive.name
    ]  # nothing extracted


def test_archive_members_other_than_batches_are_never_opened(tmp_path: Path) -> None:
    folder = write_bin(tmp_path / "cifar-10-batches-bin")
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-bin")
        readme = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
        readme.size = 5
        tar.addfile(readme, io.BytesIO(b"hello"))
    check(read_cifar(archive))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "cifar-10-batches-bin"]


def test_refuses_a_malicious_pickle_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    folder = write_py(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(
        FormatError,
        match=r"^refusing to unpickle (posix|nt|os)\.system from .*cifar-10-batches-py/data_batch_3: only plain containers and numpy arrays are allowed$",
    ):
        read_cifar(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"cbuiltins\neval\n(S'1+1'\ntR.",  # protocol 0 GLOBAL + REDUCE
        b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93.",  # STACK_GLOBAL
        b"(S'true'\nios\nsystem\n.",  # INST
    ],
)
def test_read_pickle_refuses_every_way_to_name_a_global(payload: bytes) -> None:
    with pytest.raises(
        FormatError, match=r"^refusing to unpickle (builtins|os)\.(eval|getattr|system) from f:"
    ):
        read_pickle(payload, "f")


def test_read_pickle_codecs_only_for_latin1() -> None:
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(
        FormatError,
        match=r"^f: not a readable pickle \(_codecs.encode is allowed only for latin1 text\)$",
    ):
        read_pickle(payload, "f")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda f: (f / "data_batch_2.bin").write_bytes(bytes(3073 * 2 + 5)),
            r"cifar-10-batches-bin/data_batch_2.bin: 6151 bytes is not a whole number of 3073-byte records \(1 label byte \+ 3072 pixel bytes\); the file is truncated or not a CIFAR-10 batch$",
        ),
        (
            lambda f: (f / "test_batch.bin").write_bytes(b""),
            r"test_batch.bin: 0 bytes is not a whole number",
        ),
        (
            lambda f: (f / "data_batch_5.bin").unlink(),
            r"cifar-10-batches-bin: missing data_batch_5.bin; CIFAR-10 has data_batch_1.bin, ",
        ),
        (
            lambda f: (f / "data_batch_1.bin").write_bytes(bytes([12]) + bytes(3072)),
            r"data_batch_1.bin: record 1: label 12 is out of range: CIFAR-10 labels are 0..9$",
        ),
        (
            lambda f: (f / "batches.meta.txt").write_text("a\nb\n"),
            r"batches.meta.txt: 2 class names, CIFAR-10 has 10$",
        ),
    ],
)
def test_damaged_binary_batches(tmp_path: Path, damage: object, message: str) -> None:
    folder = write_bin(tmp_path / "cifar-10-batches-bin")
    damage(folder)  # type: ignore[operator]
    with pytest.raises(FormatError, match=message):
        read_cifar(folder)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"labels": [1]}, r"data_batch_1: no key 'data'; keys: labels$"),
        ([1, 2], r"data_batch_1: holds a list, expected a dict of arrays$"),
        (
            {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
            r"'data' must be a uint8 array of N x 3072, got float32 \(2, 3072\)$",
        ),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
            r"data_batch_1: 2 images but 1 labels$",
        ),
        (
            {b"data": np.zeros((1, 3072), np.uint8), b"labels": [-2]},
            r"data_batch_1: 'labels': index \[0\]: label -2 is negative",
        ),
    ],
)
def test_malformed_python_batches(tmp_path: Path, batch: object, message: str) -> None:
    folder = write_py(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_1").write_bytes(py2_pickle(batch))
    with pytest.raises(FormatError, match=message):
        read_cifar(folder)


def test_not_a_pickle_and_missing_meta(tmp_path: Path) -> None:
    folder = write_py(tmp_path / "cifar-10-batches-py")
    (folder / "batches.meta").unlink()
    assert read_cifar(folder).notes["classes"] == "official names (no batches.meta)"
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(FormatError, match=r"test_batch: not a readable pickle \("):
        read_cifar(folder)


def test_not_cifar(tmp_path: Path) -> None:
    with pytest.raises(
        FormatError,
        match=r"no CIFAR-10 batches: expected cifar-10-batches-bin, cifar-10-batches-py",
    ):
        read_cifar(tmp_path)
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(
        FormatError,
        match=r"x.tar.gz: not a readable .tar.gz archive \(.*\); delete it and download it again$",
    ):
        read_cifar(tmp_path / "x.tar.gz")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A local HTTP server over a folder with a tiny cifar-10-binary.tar.gz; (base URL, its md5)."""
    root = tmp_path / "served"
    root.mkdir()
    archive = make_archive(
        root / "cifar-10-binary.tar.gz", write_bin(tmp_path / "src" / "cifar-10-batches-bin")
    )
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}",
            hashlib.md5(archive.read_bytes()).hexdigest(),
        )
    finally:
        server.shutdown()
        server.server_close()


def test_cifar10_source_downloads_and_checks_the_archive_md5(
    served: tuple[str, str], tmp_path: Path
) -> None:
    url, md5 = served
    with pytest.raises(
        DownloadError,
        match=r"cifar-10-binary.tar.gz \(MD5 [0-9a-f]{12}… does not match the expected c32a1d4ab5d0…\)",
    ):
        CIFAR10_SOURCE.load(mirror=url)  # the real digest: the tiny archive is refused
    assert not (tmp_path / "cache" / "cifar10" / "cifar-10-binary.tar.gz").exists()
    source = dataclasses.replace(
        CIFAR10_SOURCE, url=f"{url}/cifar-10-binary.tar.gz", digest=f"md5:{md5}"
    )
    data = source.load()
    assert data.origin == str(tmp_path / "cache" / "cifar10" / "cifar-10-binary.tar.gz")
    assert (len(data.train), len(data.test), data.classes) == (15, 3, CIFAR10_CLASSES)
    assert source.load(mirror="http://127.0.0.1:9/").origin == data.origin  # found, not fetched
    # a damaged local copy of the archive is caught by its published MD5
    damaged = bytearray(Path(data.origin).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    Path(data.origin).write_bytes(bytes(damaged))
    with pytest.raises(
        FormatError,
        match=r"cifar-10-binary.tar.gz: MD5 [0-9a-f]{12}… is not cifar10's published [0-9a-f]{12}…; "
        r"the file is damaged or from another dataset",
    ):
        source.load()


# --- Hostile archives and pickles (issue 25) -----------------------------------------------


def member(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **fields: object
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def archive_with(
    path: Path, tmp_path: Path, extra: tarfile.TarInfo, data: bytes | None = None
) -> Path:
    """A real-looking binary archive with one more member (added last, after the batches)."""
    folder = write_bin(tmp_path / "src" / "cifar-10-batches-bin")
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        tar.add(folder, arcname="cifar-10-batches-bin")
        tar.addfile(extra, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            member("../../evil/data_batch_9.bin", tarfile.SYMTYPE, linkname="/etc/passwd"),
            r"member '../../evil/data_batch_9.bin' has an absolute path or '..'",
        ),
        (
            member("cifar-10-batches-bin/link", tarfile.SYMTYPE, linkname="/etc/passwd"),
            r"member 'cifar-10-batches-bin/link' is a symbolic link; a CIFAR-10 archive holds only files and folders \(nothing is extracted\)$",
        ),
        (
            member("cifar-10-batches-bin/hard", tarfile.LNKTYPE, linkname="/etc/shadow"),
            r"member 'cifar-10-batches-bin/hard' is a hard link; ",
        ),
        (
            member("dev/zero", tarfile.CHRTYPE, devmajor=1, devminor=5),
            r"member 'dev/zero' is a device or FIFO; ",
        ),
        (member("pipe", tarfile.FIFOTYPE), r"member 'pipe' is a device or FIFO; "),
        (member("sparse", tarfile.GNUTYPE_SPARSE), r"member 'sparse' is a sparse file; "),
        (
            member("/etc/cron.d/x", size=3),
            r"member '/etc/cron.d/x' has an absolute path or '..'; a CIFAR-10 archive holds relative names only \(nothing is extracted\)$",
        ),
        (
            member("a\x1b[2J\nb", tarfile.SYMTYPE, linkname="/"),
            r"member 'a\\x1b\[2J\\nb' is a symbolic link",
        ),
    ],
)
def test_archives_with_links_devices_or_escaping_names_are_refused(
    tmp_path: Path, extra: tarfile.TarInfo, message: str
) -> None:
    """The published archives hold files and folders only; anything else means another archive.
    Nothing is ever extracted: no path outside (or inside) the folder is written."""
    archive = archive_with(tmp_path / "a.tar.gz", tmp_path, extra, b"abc" if extra.size else None)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(FormatError, match=r"a.tar.gz: " + message):
        read_cifar(archive)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "evil").exists()


def test_archive_members_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a header that claims 10 GB for a batch: refused from the header, nothing read
    huge = member("cifar-10-batches-bin/data_batch_1.bin", size=10 * 10**9)
    with tarfile.open(tmp_path / "h.tar.gz", "w:gz") as tar:
        tar.addfile(huge)  # the header alone: the 10 GB were never there
    with pytest.raises(
        FormatError,
        match=r"h.tar.gz: member 'cifar-10-batches-bin/data_batch_1.bin' is 10,000,000,000 bytes; a CIFAR-10 batch is about 31 MB: not a batch$",
    ):
        read_cifar(tmp_path / "h.tar.gz")
    # a decompression bomb (64 MB of zeros in 64 KB) stops at the budget, batch or not
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "16")
    bomb = member("cifar-10-batches-bin/padding", size=64 << 20)
    archive = archive_with(tmp_path / "bomb.tar.gz", tmp_path, bomb, bytes(64 << 20))
    assert archive.stat().st_size < 200_000
    with pytest.raises(
        FormatError,
        match=r"bomb.tar.gz decompresses to more than 16,777,216 bytes, more than mlplab reads from a CIFAR-10 archive \(the real ones hold about 180 MB; the bound is 1 GiB, less with little memory: MLPLAB_MAX_ALLOC_MB\): a decompression bomb, or not CIFAR-10$",
    ):
        read_cifar(archive)


def test_a_truncated_archive_is_one_line(tmp_path: Path) -> None:
    archive = make_archive(
        tmp_path / "cifar-10-binary.tar.gz", write_bin(tmp_path / "src" / "cifar-10-batches-bin")
    )
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        FormatError,
        match=r"cifar-10-binary.tar.gz: not a readable .tar.gz archive \(.*\); delete it and download it again$",
    ):
        read_cifar(archive)


class Reduced:
    """Pickles as whatever (callable, args, state) it is given: for writing hostile pickles."""

    def __init__(self, *reduce: object) -> None:
        self.reduce = reduce

    def __reduce__(self) -> tuple[object, ...]:
        return self.reduce


def test_pickles_are_never_unpickled_not_even_numpy_calls(tmp_path: Path) -> None:
    """A restricted unpickler still calls numpy.ndarray(shape, dtype) for a few bytes: 160 MB
    of None here (gigabytes with another number). The reader builds arrays only from bytes."""
    bomb = pickle.dumps(Reduced(np.ndarray, ((20_000_000,), np.dtype(object))), protocol=2)
    assert len(bomb) < 200
    tracemalloc.start()
    try:
        with pytest.raises(
            FormatError, match=r"^f: not a readable pickle \(an array type other than plain numbers"
        ):
            read_pickle(bomb, "f")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    direct = pickle.dumps(Reduced(np.ndarray, ((20_000_000,), np.dtype("u1"))), protocol=2)
    with pytest.raises(
        FormatError,
        match=r"^f: not a readable pickle \(numpy.ndarray called directly; only arrays rebuilt from their bytes\)$",
    ):
        read_pickle(direct, "f")


def test_a_pickled_array_must_hold_the_bytes_its_shape_declares(tmp_path: Path) -> None:
    reconstruct = np.zeros(0).__reduce__()[0]
    short = Reduced(
        reconstruct, (np.ndarray, (0,), b"b"), (1, (10000, 3072), np.dtype("u1"), False, bytes(100))
    )
    folder = write_py(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_4").write_bytes(
        pickle.dumps({b"data": short, b"labels": [0]}, protocol=2)
    )
    with pytest.raises(
        FormatError,
        match=r"cifar-10-batches-py/data_batch_4: not a readable pickle \(an array declared 10000x3072 uint8 \(30,720,000 bytes\) holds 100 bytes\)$",
    ):
        read_cifar(folder)


def test_files_that_are_no_batches_are_never_read_whole(tmp_path: Path) -> None:
    folder = write_bin(tmp_path / "cifar-10-batches-bin")
    with open(folder / "data_batch_2.bin", "r+b") as f:
        f.truncate(RECORD * 100_000)  # 307 MB (sparse: no disk used), a whole number of records
    with pytest.raises(
        FormatError,
        match=r"cifar-10-batches-bin/data_batch_2.bin: 307,300,000 bytes; a CIFAR-10 batch is about 31 MB: not a batch$",
    ):
        read_cifar(folder)


def test_fifos_named_like_batches_never_block(tmp_path: Path) -> None:
    folder = write_bin(tmp_path / "cifar-10-batches-bin")
    (folder / "test_batch.bin").unlink()
    os.mkfifo(folder / "test_batch.bin")
    os.mkfifo(tmp_path / "cifar-10-binary.tar.gz")
    outcome: list[str] = []

    def read() -> None:
        for target in (folder, tmp_path / "cifar-10-binary.tar.gz"):
            try:
                read_cifar(target)
            except FormatError as exc:
                outcome.append(str(exc))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_cifar blocked on a FIFO"
    assert outcome[0].endswith(
        "cifar-10-batches-bin: missing test_batch.bin; CIFAR-10 has data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin"
    )
    assert outcome[1].endswith(
        "cifar-10-binary.tar.gz: neither a regular file nor a folder (a FIFO or device?); CIFAR-10 is a folder of batch files or a .tar.gz archive"
    )


@pytest.mark.parametrize("name", ["cifar-10-binary.tar.bz2", "cifar-10-python.zip"])
def test_an_archive_of_another_kind_is_named(tmp_path: Path, name: str) -> None:
    """Taken for a batch file, its folder was searched: "data: no CIFAR-10 batches"."""
    (tmp_path / name).write_bytes(b"BZh9" + bytes(64))
    with pytest.raises(FormatError) as refused:
        read_cifar(tmp_path / name)
    assert str(refused.value) == (
        f"{tmp_path / name}: an archive mlplab does not open for CIFAR-10; CIFAR-10 is a .tar.gz "
        "(or .tgz, .tar) archive or a folder of batch files: repack it, or extract it and pass "
        "the folder"
    )
