"""Format detection and read_any: every format found from its content or name, options checked."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from mlplab.data.formats import FORMATS, detect_format, read_any
from mlplab.data.idx import read_idx_dataset, write_idx
from mlplab.errors import ConfigError, DataError, FormatError


def mnist_folder(folder: Path, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", np.array([1, 0, 2], np.uint8))
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", images[:2])
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", np.array([2, 1], np.uint8))
    return folder


def test_every_format_is_detected(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,0,0,0,0\n")
    (tmp_path / "a.txt").write_text("1 0 0 0 0\n")
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"1,0,0,0,0\n"))
    with h5py.File(tmp_path / "a.data", "w") as f:  # content, not the name
        f["images"] = np.zeros((1, 2, 2))
    np.savez(tmp_path / "a.npz", x=np.zeros(1))
    (tmp_path / "zip.bin").write_bytes((tmp_path / "a.npz").read_bytes())
    mnist = mnist_folder(tmp_path / "mnist")
    raw_idx = tmp_path / "raw-idx"
    write_idx(raw_idx, np.zeros((2, 2), np.uint8), compress=False)
    classes = tmp_path / "photos"
    (classes / "cat").mkdir(parents=True)
    Image.new("L", (2, 2)).save(classes / "cat" / "x.png")
    (tmp_path / "cifar-10-batches-bin").mkdir()
    (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(b"")
    with tarfile.open(tmp_path / "some.tgz", "w:gz"):
        pass
    expected = {
        "a.csv": "csv",
        "a.txt": "csv",
        "a.csv.gz": "csv",
        "a.data": "hdf5",
        "a.npz": "npz",
        "zip.bin": "npz",
        "mnist": "idx",
        "mnist/train-images-idx3-ubyte.gz": "idx",
        "raw-idx": "idx",
        "photos": "folders",
        "cifar-10-batches-bin": "cifar",
        "cifar-10-batches-bin/data_batch_1.bin": "cifar",
        "some.tgz": "cifar",
    }
    assert {name: detect_format(tmp_path / name) for name in expected} == expected
    assert detect_format(mnist) == "idx"


def test_gzip_tar_detected_by_content(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "download", "w:gz") as tar:
        info = tarfile.TarInfo("x")
        tar.addfile(info)
    assert detect_format(tmp_path / "download") == "cifar"


def test_unknown_things(tmp_path: Path) -> None:
    (tmp_path / "notes.doc").write_bytes(b"\xd0\xcf\x11\xe0 office")
    with pytest.raises(
        FormatError,
        match=r"notes.doc: cannot tell the format from its name or first bytes \(0xd0cf11e0\); accepted formats: csv, hdf5, npz, folders, cifar, idx \(.*\); name it with format=NAME \(--format NAME\)$",
    ):
        detect_format(tmp_path / "notes.doc")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FormatError, match=r"empty: a folder, but not one of images in class subfolders"
    ):
        detect_format(tmp_path / "empty")
    with pytest.raises(DataError, match=r"missing: no such file or folder$"):
        detect_format(tmp_path / "missing")


def test_read_any_detects_and_passes_options(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("1" + ",0" * 600 + "\n0" + ",0" * 600 + "\n")
    raw = read_any(path, image_shape="1,20,30", pixel_scale=None, images_key=None)
    assert raw.format == "csv" and raw.image_shape == (1, 20, 30)
    assert read_any(path, "csv", image_shape=(1, 20, 30)).image_shape == (1, 20, 30)


def test_read_any_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("1,0,0,0,0\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown format 'hdf' \(did you mean 'hdf5'\?\); accepted formats: csv, hdf5, npz, folders, cifar, idx",
    ):
        read_any(path, "hdf")
    with pytest.raises(
        ConfigError,
        match=r"option 'images_key' does not apply to csv files \(.*a.csv\); csv takes: image_shape, pixel_scale, classes, labels_key$",
    ):
        read_any(path, images_key="x")
    with pytest.raises(
        ConfigError,
        match="option 'pixel_scale' does not apply to cifar files .*; cifar takes: no options",
    ):
        read_any(path, "cifar", pixel_scale="1")


def test_format_table_matches_the_readers() -> None:
    import inspect

    for spec in FORMATS.values():
        keywords = {
            name
            for name, p in inspect.signature(spec.reader).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert set(spec.options) == keywords, spec.name


def test_idx_dataset_folder_and_file(tmp_path: Path) -> None:
    folder = mnist_folder(tmp_path / "m", gz=False)
    raw = read_idx_dataset(folder)
    assert raw.format == "idx" and raw.image_shape == (1, 4, 4) and raw.classes == ("0", "1", "2")
    np.testing.assert_array_equal(raw.train[0][:, 0], np.arange(48).reshape(3, 4, 4))
    np.testing.assert_array_equal(raw.test[1], [2, 1])
    one = read_idx_dataset(folder / "t10k-images-idx3-ubyte", classes=["a", "b", "c"])
    assert one.test is None and one.classes == ("a", "b", "c") and len(one.train[1]) == 2


def test_idx_dataset_errors(tmp_path: Path) -> None:
    folder = mnist_folder(tmp_path / "m")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        FormatError,
        match=r"t10k-images-idx3-ubyte.gz: its labels file t10k-labels-idx1-ubyte\(.gz\) is not beside it$",
    ):
        read_idx_dataset(folder / "t10k-images-idx3-ubyte.gz")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    with pytest.raises(
        FormatError,
        match=r"t10k-labels-idx1-ubyte.gz: 3 labels for 2 images in t10k-images-idx3-ubyte.gz",
    ):
        read_idx_dataset(folder)
    with pytest.raises(
        FormatError, match=r"train-labels-idx1-ubyte.gz: not an images file named like"
    ):
        read_idx_dataset(folder / "train-labels-idx1-ubyte.gz")
    (folder / "extra-images-idx3-ubyte.gz").write_bytes(gzip.compress(b""))
    (folder / "extra-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(
        FormatError, match=r"expected one training pair .*; images files found: extra-images"
    ):
        read_idx_dataset(folder)


def test_failed_reads_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("1,0,0,0,0\n1,0,0,0\n")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["other"] = np.zeros(3)
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 4, 4)), y=np.array([0, -1]))
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    (tmp_path / "photos" / "cat" / "x.png").write_bytes(b"not a png")
    (tmp_path / "cifar-10-batches-bin").mkdir()
    (tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(b"short")
    write_idx(tmp_path / "t-images-idx3-ubyte", np.zeros((2, 2, 2), np.uint8))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for name in (
        "bad.csv",
        "bad.h5",
        "bad.npz",
        "photos",
        "cifar-10-batches-bin",
        "t-images-idx3-ubyte",
    ):
        with pytest.raises(FormatError, match=name.split("-")[0]):
            read_any(tmp_path / name)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
