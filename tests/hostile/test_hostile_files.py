"""Hand-written adversarial files for the HDF5, CIFAR-10 and image-folder readers (issue 25).

Two kinds of user: an attacker who shares a dataset (an HDF5 file naming your files, a
pickle that allocates, an archive of links, a PNG bomb) and a tired one (a MATLAB file, a
file still open in a notebook, ``._`` files from a Mac, a JPEG named ``.png``). Each ends
in a dataset or one line; nothing blocks, nothing outside the data is read, and memory
stays bounded (measured in a fresh interpreter, where the peak RSS means something).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from mlplab.data.cifar import read_cifar, read_pickle
from mlplab.data.folders import read_folders
from mlplab.data.hdf5 import read_hdf5
from mlplab.errors import FormatError

SECRET = b"ssh-rsa AAAAB3NzaC1yc2E secret key material "


def finishes(call: Callable[[], object], seconds: float = 20) -> object:
    """``call()``'s result or exception, asserting it did not block (a FIFO opened would)."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # handed back to the test, which checks it
            box.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the reader blocked"
    return box[0]


def two_labels(f: h5py.File) -> None:
    f["labels"] = np.array([0, 1])


# --- HDF5: files that name other files ----------------------------------------------------


def test_external_storage_by_relative_path_and_offset_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative name is looked up from the working directory: the attacker guesses it."""
    (tmp_path / "id_rsa").write_bytes(b"x" * 100 + SECRET)
    monkeypatch.chdir(tmp_path)
    with h5py.File(tmp_path / "shared.h5", "w") as f:
        f.create_dataset("images", (1, 4, 8), "u1", external=[("id_rsa", 100, 32)])
        two_labels(f)
    with pytest.raises(
        FormatError, match=r"keeps its data in another file \(id_rsa, external storage\)"
    ) as caught:
        read_hdf5(tmp_path / "shared.h5")
    assert b"ssh-rsa" not in str(caught.value).encode()


def test_unused_datasets_are_never_read_even_when_they_point_at_a_fifo(tmp_path: Path) -> None:
    """Only the datasets the layout picks are checked and read: a decoy pointing at a FIFO
    (HDF5 would block opening it) neither blocks nor fails the read."""
    os.mkfifo(tmp_path / "pipe")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["images"] = np.full((2, 4, 4), 3, np.uint8)
        two_labels(f)
        f.create_dataset("decoy", (8,), "u1", external=[(str(tmp_path / "pipe"), 0, 8)])
    raw = finishes(lambda: read_hdf5(tmp_path / "f.h5"))
    assert raw.train[0].max() == 3  # type: ignore[attr-defined]
    refused = finishes(lambda: read_hdf5(tmp_path / "f.h5", images_key="decoy"))
    assert isinstance(refused, FormatError) and "keeps its data in another file" in str(refused)


def test_a_soft_link_to_external_storage_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset(
            "hidden/raw", (1, 4, 4), "u1", external=[(str(tmp_path / "secret.txt"), 0, 16)]
        )
        f["images"] = h5py.SoftLink("/hidden/raw")
        two_labels(f)
    with pytest.raises(FormatError, match=r"f.h5: dataset 'images' keeps its data in another file"):
        read_hdf5(tmp_path / "f.h5")


def test_a_matlab_v73_file_with_a_user_block_reads(tmp_path: Path) -> None:
    """MATLAB's -v7.3 .mat files are HDF5 after a 512-byte header (the user block)."""
    path = tmp_path / "digits.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(
            "images",
            data=np.arange(3 * 16).reshape(3, 4, 4).astype(np.uint8),
            chunks=(1, 4, 4),
            compression="gzip",
        )
        f["labels"] = np.array([0, 1, 2])
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(128))
    raw = read_hdf5(path)
    assert raw.train[0].shape == (3, 1, 4, 4) and raw.train[0][2, 0, 3, 3] == 47


def test_a_file_another_program_is_writing_is_one_line(tmp_path: Path) -> None:
    """HDF5 locks a file open for writing (a notebook still holding it): one line, no wait."""
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4), np.uint8)
        two_labels(f)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import h5py, time; f = h5py.File({str(path)!r}, 'a'); print(1, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        with pytest.raises(
            FormatError, match=r"f.h5: not a readable HDF5 file \(.*unable to lock file.*\)$"
        ):
            read_hdf5(path)
    finally:
        holder.kill()
        holder.wait()


def test_loops_and_thousands_of_names_end(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("a")
        group["again"] = group  # a hard link back up: walked once
        group["up"] = h5py.SoftLink("/a")  # a soft one: never walked
        for i in range(3000):
            f.create_dataset(f"many/d{i:04}", data=np.zeros(1, np.uint8))
    started = time.perf_counter()
    with pytest.raises(
        FormatError, match=r"keys: a/up, many/d0000, .* \(3001 in all\); name them with images_key"
    ):
        read_hdf5(path)
    assert time.perf_counter() - started < 10


# --- CIFAR-10: pickles and archives made to hurt ---------------------------------------------


def py_folder(tmp_path: Path, batch: bytes) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    good = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1]}, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(good)
    (folder / "data_batch_1").write_bytes(batch)
    return folder


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            b"\x80\x02" + b"]" * 90_000 + b"a" * 89_999 + b".",  # 90,000 lists deep
            r"data_batch_1: holds a list, expected a dict of arrays$",
        ),
        (
            b"\x80\x02\x8b" + (1 << 20).to_bytes(4, "little") + bytes(1 << 20) + b".",
            r"not a readable pickle \(an integer of 1,048,576 bytes; no CIFAR value is so long\)$",
        ),
        (
            b"\x80\x02]q\x00" + b"h\x00" * 1_000_000 + b".",
            r"not a readable pickle \(more than 200,000 opcodes; a CIFAR-10 batch has about 35,000 \(10,000 labels and file names\)\)$",
        ),
        (
            b"\x80\x02T" + (1 << 31).to_bytes(4, "little") + b"abc.",
            r"not a readable pickle \(a value of 2,147,483,648 bytes at byte 7, but the pickle ends at byte 11 \(truncated, or a wrong length\)\)$",
        ),
        (
            b"\x80\x02cnumpy\nmemmap\n.",
            r"refusing to unpickle numpy.memmap from .*data_batch_1: only plain containers and numpy arrays are allowed$",
        ),
        (
            b"\x80\x02}(U\x04dataU\x01xU\x06labels]U\x01aau.",
            r"data_batch_1: 'data' must be a uint8 array of N x 3072, got bytes$",
        ),
        (
            b"I" + b"9" * 1000 + b"\n.",
            r"not a readable pickle \(an integer of more digits than any CIFAR value\)$",
        ),
        (
            b"(" + b"I1\n" * 2000 + b"I1",
            r"not a readable pickle \(a text value at byte 6,002 does not end \(no newline\)\)$",
        ),
    ],
    ids=[
        "deep",
        "long4",
        "memo-flood",
        "claimed-2GB",
        "memmap",
        "wrong-types",
        "digits",
        "no-newline",
    ],
)
def test_hostile_pickles_are_one_line_quickly_and_small(
    tmp_path: Path, payload: bytes, message: str
) -> None:
    folder = py_folder(tmp_path, payload)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FormatError, match=message):
            read_cifar(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"


def test_a_protocol_0_pickle_is_read_too() -> None:
    value = read_pickle(pickle.dumps({"labels": [1, 2], "name": "x", "n": 10**20}, protocol=0), "f")
    assert value == {"labels": [1, 2], "name": "x", "n": 10**20}


def tar_with(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_decoy_batch_later_in_the_archive_is_refused(tmp_path: Path) -> None:
    record = bytes([3]) + bytes(3072)
    names = [
        f"cifar-10-batches-bin/{n}.bin"
        for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ]
    archive = tar_with(
        tmp_path / "a.tar.gz", [(n, record) for n in names] + [("other/data_batch_1.bin", record)]
    )
    with pytest.raises(
        FormatError,
        match=r"a.tar.gz: member 'other/data_batch_1.bin': a second data_batch_1.bin in the archive; which one is meant\?$",
    ):
        read_cifar(archive)


def test_an_archive_of_many_members_stops_early(tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "many.tar.gz", [(f"f{i}", b"") for i in range(1200)])
    with pytest.raises(
        FormatError,
        match=r"many.tar.gz: more than 1,000 members; a CIFAR-10 archive holds about ten$",
    ):
        read_cifar(archive)


def test_batches_linked_to_devices_are_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f"{name}.bin").symlink_to("/dev/zero")  # endless zeros: valid records forever
    result = finishes(lambda: read_cifar(folder))
    assert isinstance(result, FormatError)
    assert str(result).endswith(
        "cifar-10-batches-bin: no CIFAR-10 batches: expected cifar-10-batches-bin, cifar-10-batches-py (or the files inside one: data_batch_1.bin .. data_batch_5.bin, test_batch.bin, or their Python versions without .bin), or cifar-10-binary.tar.gz / cifar-10-python.tar.gz"
    )


@pytest.mark.parametrize(
    "content", [b"\x89HDF\r\n\x1a\n" + bytes(600), b"PK\x03\x04" + bytes(600), bytes(1024)]
)
def test_another_file_named_like_the_archive_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(content)
    with pytest.raises(
        FormatError,
        match=r"cifar-10-binary.tar.gz: (not a readable .tar.gz archive \(.*\); delete it and download it again|missing data_batch_1, .*)$",
    ):
        read_cifar(tmp_path / "cifar-10-binary.tar.gz")


# --- Image folders: what a careless copy or a hostile share leaves ---------------------------


def png(value: int, size: tuple[int, int] = (4, 5), mode: str = "L") -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full(size, value, np.uint8)).convert(mode).save(out, format="PNG")
    return out.getvalue()


def test_mac_and_windows_litter_is_ignored(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "0.png").write_bytes(png(10))
        (tmp_path / name / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS
        (tmp_path / name / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")  # Windows
        (tmp_path / name / "desktop.ini").write_text("[.ShellClassInfo]")
    (tmp_path / "__MACOSX" / "a").mkdir(parents=True)  # unzip's copy of the Mac's metadata
    (tmp_path / "__MACOSX" / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    raw = read_folders(tmp_path)
    assert raw.classes == ("a", "b") and len(raw.train[1]) == 2


def test_misnamed_and_unusual_images_still_read(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "UPPER.PNG").write_bytes(png(10))
    jpeg = io.BytesIO()
    Image.fromarray(np.full((4, 5, 3), 200, np.uint8)).convert("CMYK").save(jpeg, format="JPEG")
    (tmp_path / "a" / "cmyk-jpeg-named.png").write_bytes(jpeg.getvalue())  # a JPEG named .png
    frames = [Image.fromarray(np.full((4, 5), v, np.uint8)) for v in (40, 90)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    (tmp_path / "b" / "animated.gif").write_bytes(gif.getvalue())  # the first frame is read
    raw = read_folders(tmp_path)
    assert raw.image_shape == (3, 4, 5) and len(raw.train[1]) == 3
    assert raw.train[0][2, 0, 0, 0] == 40


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("notes.jpg", b"just some text, saved with the wrong name"),
        ("zero-width.png", None),
    ],
)
def test_empty_text_and_degenerate_images_name_the_file(
    tmp_path: Path, name: str, content: bytes | None
) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.png").write_bytes(png(5))
    if content is None:  # a PNG header declaring a width of 0
        data = bytearray(png(5))
        data[16:20] = (0).to_bytes(4, "big")
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
        content = bytes(data)
    (tmp_path / "b" / name).write_bytes(content)
    with pytest.raises(
        FormatError,
        match=rf"b/{name}: (cannot decode the image \(.*\)|an image of 0x\d+ pixels holds nothing)",
    ):
        read_folders(tmp_path)


def test_link_loops_in_class_folders_end(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.png").write_bytes(png(5))
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    (tmp_path / "b" / "up").symlink_to(tmp_path)
    raw = finishes(lambda: read_folders(tmp_path))
    assert len(raw.train[1]) == 2  # type: ignore[attr-defined]


def test_a_single_image_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(png(1))
    with pytest.raises(
        FormatError, match=r"x.png: not a folder; expected <folder>/<class name>/<image files>"
    ):
        read_folders(tmp_path / "x.png")


# --- Memory, measured where it means something: a fresh interpreter -------------------------


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as read (a bomb's content is never held whole)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def zlib_zeros(size: int) -> bytes:
    packer, parts = zlib.compressobj(9), []
    for _ in range(size >> 20):
        parts.append(packer.compress(bytes(1 << 20)))
    return b"".join(parts) + packer.flush()


def test_bombs_leave_the_peak_memory_of_a_fresh_process_flat(tmp_path: Path) -> None:
    # HDF5: a 1 MiB chunk holding 800 MB of zeros in ~780 KB (HDF5 would inflate it all)
    with h5py.File(tmp_path / "bomb.h5", "w") as f:
        images = f.create_dataset(
            "images", (1, 1024, 1024), "u1", chunks=(1, 1024, 1024), compression="gzip"
        )
        images.id.write_direct_chunk((0, 0, 0), zlib_zeros(800 << 20))
        f["labels"] = np.array([0])
    # a folder: a 40000x40000 PNG of a few hundred bytes among real images
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        (tmp_path / "photos" / label / "ok.png").write_bytes(png(9))
    big = Image.new("L", (1, 1))
    header = io.BytesIO()
    big.save(header, format="PNG")
    data = bytearray(header.getvalue())
    data[16:24] = (40_000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    (tmp_path / "photos" / "b" / "bomb.png").write_bytes(bytes(data))
    # CIFAR: 300 MB of zeros streamed through a .tar.gz (read past, never held)
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
        info.size = 300 << 20
        tar.addfile(info, io.BufferedReader(Zeros(info.size), 1 << 20))
    # a pickle that asks numpy for 160 MB of None
    pickled = b"\x80\x02cnumpy\nndarray\nJ\x00\x2d\x31\x01\x85cnumpy\ndtype\nU\x02O8\x85R\x86R."
    (tmp_path / "ndarray.pickle").write_bytes(pickled)
    script = textwrap.dedent(
        """
        import json, resource, sys
        from pathlib import Path
        from mlplab.data.cifar import read_cifar, read_pickle
        from mlplab.data.folders import read_folders
        from mlplab.data.hdf5 import read_hdf5
        from mlplab.errors import MlplabError
        root = Path(sys.argv[1])
        rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {"baseline": rss()}
        for name, read in [
            ("hdf5", lambda: read_hdf5(root / "bomb.h5")),
            ("folders", lambda: read_folders(root / "photos")),
            ("cifar", lambda: read_cifar(root / "cifar-10-binary.tar.gz")),
            ("pickle", lambda: read_pickle((root / "ndarray.pickle").read_bytes(), "p")),
        ]:
            try:
                read()
                out[name] = "read"
            except MlplabError as exc:
                out[name] = str(exc)
            out[name + " rss"] = rss()
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "inflates to more than its 1,048,576 bytes" in out["hdf5"]
    assert "has 1,600,000,000 pixels" in out["folders"]
    assert "missing data_batch_1, " in out["cifar"]  # read past the 300 MB, then no batches
    assert "p: not a readable pickle (an array type other than plain numbers" in out["pickle"]
    grown = {
        k: (out[f"{k} rss"] - out["baseline"]) >> 20 for k in ("hdf5", "folders", "cifar", "pickle")
    }
    assert max(grown.values()) < 64, f"peak RSS grew (MiB): {grown}"


def test_a_class_folder_linked_to_a_large_tree_stops_walking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class folder that is a link to / would walk the whole file system: the walk is capped."""
    from mlplab.data import folders

    root = tmp_path / "data"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        Image.new("L", (4, 4)).save(root / name / "a.png")
    big = tmp_path / "big"
    for i in range(30):
        (big / f"d{i}").mkdir(parents=True)
    (root / "everything").symlink_to(big)
    monkeypatch.setattr(folders, "MAX_ENTRIES", 20)
    with pytest.raises(
        FormatError, match=r"more than 20 files and folders under its class folders"
    ):
        folders.read_folders(root)
