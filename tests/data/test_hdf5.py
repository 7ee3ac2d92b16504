"""HDF5 files: every key layout and array layout, clear errors, and the real usps.h5."""

from __future__ import annotations

import os
import re
import threading
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from mlplab.data.hdf5 import read_hdf5, read_usps
from mlplab.data.sources import USPS_SOURCE
from mlplab.errors import FormatError

REAL_DATA_DIR = os.environ.get("MLPLAB_DATA_DIR")


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    return path


def usps_like(path: Path, n_train: int = 6, n_test: int = 4) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(n_train, 256)) / 255  # 0-1 floats, as in usps.h5
    arrays = {
        "train/data": data.astype(np.float32),
        "train/target": np.arange(n_train, dtype=np.int64) % 10,
        "test/data": rng.random((n_test, 256), dtype=np.float32),
        "test/target": np.arange(n_test, dtype=np.int64),
    }
    return write_h5(path, arrays), data


def test_usps_layout_round_trips(tmp_path: Path) -> None:
    path, data = usps_like(tmp_path / "usps.h5")
    raw = read_hdf5(path)
    assert raw.format == "hdf5" and raw.image_shape == (1, 16, 16)
    np.testing.assert_array_equal(raw.train[0].reshape(6, 256), np.rint(data * 255))
    np.testing.assert_array_equal(raw.train[1], [0, 1, 2, 3, 4, 5])
    assert len(raw.test[1]) == 4
    assert raw.notes["keys"] == "train/data, train/target, test/data, test/target"
    assert raw.notes["pixel scale"] == "0-1 (detected: largest value 1)"


def test_keras_keys_and_channels_last_uint8(tmp_path: Path) -> None:
    images = np.arange(3 * 4 * 4 * 3).reshape(3, 4, 4, 3).astype(np.uint8)
    path = write_h5(
        tmp_path / "f.h5",
        {"x_train": images, "y_train": np.array([0, 1, 1]), "x_test": images[:1], "y_test": [1]},
    )
    raw = read_hdf5(path)
    assert raw.image_shape == (3, 4, 4)
    np.testing.assert_array_equal(raw.train[0], images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw.test[1], [1])


def test_configurable_keys(tmp_path: Path) -> None:
    path = write_h5(
        tmp_path / "f.h5", {"photos": np.zeros((2, 5, 5), np.uint8), "kinds": np.array([1, 0])}
    )
    raw = read_hdf5(path, images_key="photos", labels_key="kinds", classes=["no", "yes"])
    assert raw.test is None and raw.classes == ("no", "yes") and raw.image_shape == (1, 5, 5)
    with pytest.raises(FormatError, match=r"f.h5: no key 'images'; keys: kinds, photos$"):
        read_hdf5(path, labels_key="kinds")


def test_missing_keys_list_what_exists(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "f.h5", {"group/a": np.zeros(3), "b": np.zeros(3)})
    with pytest.raises(
        FormatError,
        match=r"f.h5: no images and labels found under the usual keys \(train/data \+ train/target, x_train \+ y_train, images \+ labels, x \+ y\); keys: b, group/a; name them with images_key",
    ):
        read_hdf5(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"images": np.zeros((3, 8, 8), np.uint8), "labels": np.array([0, 1])},
            r"3 images in 'images' but 2 labels in 'labels'; they must pair one to one$",
        ),
        (
            {"images": np.full((2, 4, 4), 2.0), "labels": np.array([0, 1])},
            None,  # whole numbers above 1: read as 0-255, fine
        ),
        (
            {"images": np.full((2, 4, 4), 0.5), "labels": np.array([0, 1.5])},
            r"f.h5: labels: index \[1\]: label 1.5 is not a whole number",
        ),
        (
            {"images": np.zeros((2, 7)), "labels": np.array([0, 1])},
            r"f.h5: images: 7 values per image do not make a square image",
        ),
        (
            {
                "x_train": np.zeros((2, 4, 4), np.uint8),
                "y_train": [0, 1],
                "x_test": np.zeros((2, 5, 5), np.uint8),
                "y_test": [0, 1],
            },
            r"f.h5: x_test: images of shape \(5, 5\) are 1x5x5, not the image_shape 1x4x4",
        ),
    ],
)
def test_bad_contents(tmp_path: Path, arrays: dict[str, np.ndarray], message: str | None) -> None:
    path = write_h5(tmp_path / "f.h5", arrays)
    if message is None:
        assert read_hdf5(path).train[0].max() == 2
        return
    with pytest.raises(FormatError, match=message):
        read_hdf5(path)


def test_not_hdf5(tmp_path: Path) -> None:
    (tmp_path / "f.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(FormatError, match=r"f.h5: not a readable HDF5 file \("):
        read_hdf5(tmp_path / "f.h5")
    with pytest.raises(FormatError, match=r"none.h5: no such file$"):
        read_hdf5(tmp_path / "none.h5")


def test_usps_reader_checks_the_shape(tmp_path: Path) -> None:
    path, _ = usps_like(tmp_path / "usps.h5")
    assert read_usps(path).classes == tuple("0123456789")
    other = write_h5(tmp_path / "o.h5", {"images": np.zeros((2, 4, 4), np.uint8), "labels": [0, 1]})
    with pytest.raises(
        FormatError, match=r"o.h5: images of 1x4x4 and no test split; usps.h5 holds 16x16"
    ):
        read_usps(other)


@pytest.fixture
def usps_file() -> Path:
    """The real usps.h5, or skip."""
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / "usps" / "usps.h5").is_file():
        pytest.skip("real USPS not available: set MLPLAB_DATA_DIR to a folder holding usps/usps.h5")
    return Path(REAL_DATA_DIR) / "usps" / "usps.h5"


def test_real_usps(usps_file: Path) -> None:
    raw = read_hdf5(usps_file)
    assert (len(raw.train[1]), len(raw.test[1])) == (7291, 2007)
    assert raw.image_shape == (1, 16, 16) and raw.classes == tuple("0123456789")
    counts = np.bincount(raw.train[1]).tolist()
    assert counts == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert abs(raw.train[0].mean() / 255 - 0.2545) < 5e-4  # the README's pixel mean
    data = USPS_SOURCE.load(usps_file.parent.parent)
    assert data.origin == str(usps_file)


# --- Files that point outside themselves, or claim more than they hold (issue 25) ---------


def labels_only(f: h5py.File) -> None:
    f["labels"] = np.array([0, 1])


def test_external_storage_is_refused_before_any_byte_is_read(tmp_path: Path) -> None:
    """A dataset whose bytes live in another file would read that file as pixels (a leak)."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"password=hunter2 " * 8)
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(2, 4, 4), dtype="u1", external=[(str(secret), 0, 32)])
        labels_only(f)
    with pytest.raises(
        FormatError,
        match=r"^.*f.h5: dataset 'images' keeps its data in another file \(.*secret.txt, external "
        r"storage\); mlplab reads only data stored in the HDF5 file itself$",
    ) as caught:
        read_hdf5(path)
    assert "hunter2" not in str(caught.value)


def write_source(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["x"] = np.full((2, 4, 4), 7, np.uint8)
    return path


@pytest.mark.parametrize(
    ("where", "shown"), [("other.h5", r"other files \(.*other.h5\)"), (".", "other datasets")]
)
def test_virtual_datasets_are_refused(tmp_path: Path, where: str, shown: str) -> None:
    """Every virtual dataset is refused: its sources may be other files, and even in-file
    sources may themselves be external; mlplab reads data stored in the dataset itself."""
    write_source(tmp_path / "other.h5")
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.full((2, 4, 4), 7, np.uint8)
        layout = h5py.VirtualLayout(shape=(2, 4, 4), dtype="u1")
        layout[:] = h5py.VirtualSource(
            str(tmp_path / where) if where != "." else ".", "x", shape=(2, 4, 4)
        )
        f.create_virtual_dataset("images", layout)
        labels_only(f)
    with pytest.raises(
        FormatError,
        match=rf"f.h5: dataset 'images' is a virtual dataset mapping {shown}; mlplab reads only "
        r"data stored in the dataset itself: copy it into a regular dataset$",
    ):
        read_hdf5(path)


@pytest.mark.parametrize(
    ("links", "message"),
    [
        (
            {"images": h5py.ExternalLink("other.h5", "/x")},
            r"f.h5: 'images' is an external link to other.h5:/x; mlplab reads only data stored in "
            r"the file itself, never another file it names$",
        ),
        (  # a soft link whose path goes through an external link to a group
            {
                "elsewhere": h5py.ExternalLink("other.h5", "/"),
                "images": h5py.SoftLink("/elsewhere/x"),
            },
            r"f.h5: 'images' is an external link to other.h5:/; mlplab reads only data stored",
        ),
        (
            {"images": h5py.SoftLink("/images")},
            r"f.h5: 'images': more than 32 soft links in a row \(a loop\?\)$",
        ),
        ({"images": h5py.SoftLink("/nowhere")}, None),  # dangling: not a name that holds data
    ],
)
def test_external_links_are_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: dict[str, object], message: str | None
) -> None:
    write_source(tmp_path / "other.h5")
    monkeypatch.chdir(tmp_path)  # where HDF5 would look for other.h5
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        for name, link in links.items():
            f[name] = link
        labels_only(f)
    with pytest.raises(
        FormatError,
        match=message
        or r"f.h5: 'images' leads nowhere \(a link to '/nowhere', which is missing\)$",
    ):
        read_hdf5(path)


def test_soft_links_inside_the_file_are_followed(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["store/pixels"] = np.full((2, 4, 4), 9, np.uint8)
        f["store/alias"] = h5py.SoftLink("pixels")  # relative: from the link's own group
        f["images"] = h5py.SoftLink("/store/alias")
        labels_only(f)
    assert read_hdf5(path).train[0].max() == 9


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda f: f.create_dataset("images", data=np.array([b"ab", b"cd"])), r"text \(strings\)"),
        (
            lambda f: f.create_dataset("images", data=["a", "b"], dtype=h5py.string_dtype()),
            r"text \(strings\)",
        ),
        (
            lambda f: f.create_dataset(
                "images", data=np.zeros(2, dtype=[("a", "u1"), ("b", "f4")])
            ),
            r"compound records \(fields a, b\)",
        ),
        (
            lambda f: f.create_dataset("images", (2,), dtype=h5py.vlen_dtype(np.uint8)),
            "variable-length sequences",
        ),
        (lambda f: f.create_dataset("images", (2,), dtype=h5py.ref_dtype), "object references"),
        (
            lambda f: f.create_dataset("images", data=np.ones((2, 4, 4), np.complex64)),
            "complex numbers",
        ),
        (
            lambda f: f.create_dataset("images", data=np.void(b"abcd" * 4)),
            r"values of type \|V16 \(opaque or objects\)",
        ),
        (
            lambda f: f.create_dataset("images", data=h5py.Empty("u1")),
            r"no data \(an empty dataspace\)",
        ),
    ],
)
def test_non_numeric_datasets_are_one_line(tmp_path: Path, make: object, what: str) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        make(f)  # type: ignore[operator]
        labels_only(f)
    with pytest.raises(
        FormatError,
        match=rf"f.h5: dataset 'images' holds {what}; images and labels must be numbers \(integers or floats\)$",
    ):
        read_hdf5(path)


def test_declared_shapes_are_checked_against_memory_and_the_bytes_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:  # 7.8 GB declared in a 2 KB file: never written
        f.create_dataset("images", shape=(10**7, 28, 28), dtype="u1")
        labels_only(f)
    assert path.stat().st_size < 10_000
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "100000")  # the budget is not what stops it
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'images' declares 7,840,000,000 bytes of data but stores 0 \(never written, or the file is damaged\)$",
    ):
        read_hdf5(path)
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "64")
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'images' \(10000000x28x28 uint8\) would need 7.3 GiB of memory, more than the 64.0 MiB mlplab allows one array",
    ):
        read_hdf5(path)


def test_every_chunk_must_be_stored(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", shape=(100, 8, 8), dtype="u1", chunks=(10, 8, 8))
        images[:10] = 1  # the other 90 rows were never written: they would read as zeros
        f["labels"] = np.arange(100) % 2
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'images' stores 1 of the 10 chunks its shape needs \(never fully written, or the file is damaged\)$",
    ):
        read_hdf5(path)


def test_a_gzip_chunk_that_inflates_past_its_size_is_refused_before_hdf5_inflates_it(
    tmp_path: Path,
) -> None:
    """60 MB of zeros in a 60 KB chunk of a 64 KB dataset: HDF5 itself would inflate it all."""
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        images = f.create_dataset(
            "images", shape=(1, 256, 256), dtype="u1", chunks=(1, 256, 256), compression="gzip"
        )
        images.id.write_direct_chunk((0, 0, 0), zlib.compress(bytes(60 << 20), 9))
        f["labels"] = np.array([0])
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'images': chunk at \(0, 0, 0\) inflates to more than its 65,536 bytes of data \(a decompression bomb, or a damaged file\)$",
    ):
        read_hdf5(path)


def test_chunks_larger_than_their_data_and_filter_plugins_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        big = f.create_dataset("images", shape=(2, 32, 32), dtype="u1", chunks=(2, 32, 32))
        big.id.write_direct_chunk((0, 0, 0), bytes(1 << 20))
        plugin = f.create_dataset(
            "x",
            shape=(2, 32, 32),
            dtype="u1",
            chunks=(2, 32, 32),
            compression=32001,
            allow_unknown_filter=True,
        )
        plugin.id.write_direct_chunk((0, 0, 0), bytes(2048))
        labels_only(f)
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'images': chunk at \(0, 0, 0\) is stored in 1,048,576 bytes, more than its 2,048 bytes of data; the file is damaged or hostile$",
    ):
        read_hdf5(path)
    with pytest.raises(
        FormatError,
        match=r"f.h5: dataset 'x' is compressed with HDF5 filter 32001 \(unnamed\); mlplab reads datasets stored plain or with gzip or lzf \(and shuffle, fletcher32\)$",
    ):
        read_hdf5(path, images_key="x")


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "gzip", "shuffle": True, "fletcher32": True},
        {"compression": "lzf"},
        {"compression": "gzip", "compression_opts": 9},
    ],
)
def test_compressed_datasets_still_read(tmp_path: Path, options: dict[str, object]) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 12, 12)).astype(np.uint8)
    images[:, :4] = 0  # compressible
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(7, 12, 12), **options)
        f.create_dataset("labels", data=np.arange(50) % 3, chunks=(16,), **options)
    raw = read_hdf5(path)
    np.testing.assert_array_equal(raw.train[0][:, 0], images)
    np.testing.assert_array_equal(raw.train[1], np.arange(50) % 3)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "data.h5"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_hdf5(fifo)
        except FormatError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_hdf5 blocked on a FIFO"
    assert re.search(
        r"data.h5: a FIFO \(named pipe\), not a regular file; mlplab reads data only from regular files",
        str(outcome[0]),
    )


def test_names_with_control_characters_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "f\x1b[2J.h5"
    with h5py.File(path, "w") as f:
        f["pix\x1b[31mels"] = np.ones((2, 4, 4), np.uint8)
        f["lab\nels"] = np.array([0, 1])
    with pytest.raises(FormatError) as caught:
        read_hdf5(path)
    message = str(caught.value)
    assert "\x1b" not in message and "\n" not in message
    assert message.endswith(
        r"keys: lab\nels, pix\x1b[31mels; name them with images_key and labels_key (--images-key, --labels-key)"
    )
    assert "f\\x1b[2J.h5: no images" in message
    raw = read_hdf5(path, images_key="pix\x1b[31mels", labels_key="lab\nels")  # named, still read
    assert raw.notes["keys"] == "pix\\x1b[31mels, lab\\nels"
