"""IDX sources (MNIST, Fashion-MNIST): where their files are looked for, in order, how
they load, that local copies are checked once, and what they say when missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlplab import load_dataset
from mlplab.data.idx import write_idx
from mlplab.data.sources import Location, get_source
from mlplab.data.sources.idx import _present
from mlplab.errors import DataError, FormatError

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def fake_mnist(folder: Path, fill: int, gz: bool = True) -> Path:
    """Four small, valid IDX files whose pixels all equal ``fill``: tells folders apart."""
    folder.mkdir(parents=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", 12), ("t10k", 4)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", np.full((n, 28, 28), fill, np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n, dtype=np.uint8) % 10)
    return folder


def loaded_fill(**kwargs: object) -> int:
    # fake files: not MNIST's published checksums, so the check is off here (tested below)
    return int(load_dataset("mnist", verify=False, **kwargs).train.images[0, 0, 0, 0])  # type: ignore[arg-type]


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mnist(tmp_path / "cache" / "mnist", 1)
    assert loaded_fill() == 1
    fake_mnist(tmp_path / ".data" / "MNIST" / "raw", 2, gz=False)  # torchvision tutorial layout
    assert loaded_fill() == 2
    fake_mnist(tmp_path / "data" / "MNIST" / "raw", 3)
    assert loaded_fill() == 3
    fake_mnist(tmp_path / "env" / "mnist", 4)
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path / "env"))
    assert loaded_fill() == 4
    fake_mnist(tmp_path / "flag" / "MNIST" / "raw", 5)
    assert loaded_fill(data_dir=tmp_path / "flag") == 5


def test_incomplete_folder_is_skipped(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "data" / "MNIST" / "raw", 3)
    (tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    fake_mnist(tmp_path / "cache" / "mnist", 1)
    assert loaded_fill() == 1


def test_location_is_the_complete_folder(tmp_path: Path) -> None:
    mnist = get_source("mnist")
    assert mnist.locate() == Location("missing", f"downloads to {tmp_path / 'cache' / 'mnist'}")
    fake_mnist(tmp_path / "flag" / "MNIST" / "raw", 5)
    assert mnist.locate(tmp_path / "flag") == Location("found", str(tmp_path / "flag/MNIST/raw"))
    assert mnist.locate() == Location("missing", f"downloads to {tmp_path / 'cache' / 'mnist'}")


def test_a_file_gone_since_it_was_found_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"x: t10k-labels-idx1-ubyte \(gzip or not\) is gone; it was there a moment ago",
    ):
        _present(tmp_path / "x", "t10k-labels-idx1-ubyte")


def test_loaded_split_shapes(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "cache" / "mnist", 7)
    data = load_dataset("mnist", verify=False)
    assert data.train.images.shape == (12, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.test.labels.dtype == torch.int64 and len(data.test) == 4
    assert data.image_shape == (1, 28, 28)
    assert "Dataset('mnist', train=12, test=4, image=1x28x28" in repr(data)


def test_real_fashion_mnist(fashion_dir: Path) -> None:
    data = load_dataset("fashion-mnist", fashion_dir, download=False)
    assert (len(data.train), len(data.test)) == (60000, 10000)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert torch.bincount(data.train.labels).tolist() == [6000] * 10


def test_local_copies_are_checked_once_against_the_published_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlplab.data.download as download

    fake_mnist(tmp_path / "data" / "MNIST" / "raw", 3)
    with pytest.raises(
        FormatError,
        match=r"train-images-idx3-ubyte.gz: content SHA-256 \w+… is not mnist's published ba891046e650…; "
        r"the file is damaged or from another dataset: delete it to download it again",
    ):
        load_dataset("mnist")
    # A file that passes is remembered (path, size, mtime) and not hashed again.
    calls = []
    monkeypatch.setattr(download, "content_sha256", lambda p: calls.append(p) or _published(p))
    load_dataset("mnist")
    assert len(calls) == 4
    load_dataset("mnist")
    assert len(calls) == 4
    (tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").touch()  # changed: again
    load_dataset("mnist")
    assert len(calls) == 5


def _published(path: Path) -> str:
    from mlplab.data.sources import DATASETS

    return next(
        sha
        for pair in DATASETS["mnist"].files.values()
        for name, sha in pair
        if Path(path).name.startswith(name)
    )
