"""File sources (CIFAR-10, USPS): one file or folder found in the search folders or directly
in the data folders, what they say when missing, and which copies are checked."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mlplab.data.sources import CIFAR10_SOURCE, USPS_SOURCE, Location
from mlplab.errors import DataError, DownloadError, FormatError


def usps_like(path: Path, n_train: int = 6, n_test: int = 4) -> Path:
    """A small usps.h5: groups train/ and test/ with data N x 256 (0-1 floats) and target N."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for split, n in (("train", n_train), ("test", n_test)):
            f[f"{split}/data"] = rng.random((n, 256), dtype=np.float32)
            f[f"{split}/target"] = np.arange(n, dtype=np.int64) % 10
    return path


def test_usps_source_finds_the_file_in_the_data_dir(tmp_path: Path) -> None:
    usps_like(tmp_path / "mine" / "usps" / "usps.h5")
    data = USPS_SOURCE.load(tmp_path / "mine")
    assert (data.name, len(data.train), len(data.test)) == ("usps", 6, 4)
    assert data.reload == {"dataset": "usps"}
    with pytest.raises(
        DataError,
        match=r"dataset 'usps' not found \(looked in .*\); it is not downloaded automatically: put usps.h5",
    ):
        USPS_SOURCE.load(tmp_path / "elsewhere")


def test_a_file_directly_in_a_data_folder_counts(tmp_path: Path) -> None:
    """Where torchvision leaves cifar-10-batches-py: right inside ./data, no <name>/ folder."""
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    found = Path("data") / "cifar-10-batches-py"
    assert CIFAR10_SOURCE.find() == found
    assert CIFAR10_SOURCE.locate() == Location("found", str(found))
    # the <name>/ folders of the search come first
    (tmp_path / "cache" / "cifar10" / "cifar-10-batches-bin").mkdir(parents=True)
    assert CIFAR10_SOURCE.find() == tmp_path / "cache" / "cifar10" / "cifar-10-batches-bin"


def test_missing_sources_say_where_they_would_come_from(tmp_path: Path) -> None:
    assert CIFAR10_SOURCE.downloadable and not USPS_SOURCE.downloadable
    assert CIFAR10_SOURCE.locate(tmp_path / "x") == Location(
        "missing", f"downloads to {tmp_path / 'cache' / 'cifar10'}"
    )
    assert USPS_SOURCE.locate() == Location("missing", "not downloadable: see docs/formats.md")
    usps_like(tmp_path / "x" / "usps" / "usps.h5")
    assert USPS_SOURCE.locate(tmp_path / "x") == Location(
        "found", str(tmp_path / "x" / "usps" / "usps.h5")
    )


def test_cifar10_downloads_off_and_an_unreachable_mirror(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^dataset 'cifar10' not found \(looked in ") as err:
        CIFAR10_SOURCE.load(download=False)
    assert not isinstance(err.value, DownloadError)
    assert str(err.value).endswith(
        f"and downloads are off; put cifar-10-binary.tar.gz (or cifar-10-batches-bin/ or "
        f"cifar-10-batches-py/) into {tmp_path / 'cache' / 'cifar10'}, or into <dir>/cifar10/ "
        "and pass --data-dir <dir> or set MLPLAB_DATA_DIR=<dir>"
    )
    with pytest.raises(DownloadError) as err:
        CIFAR10_SOURCE.load(mirror="http://127.0.0.1:9")
    message = str(err.value)
    assert "tried http://127.0.0.1:9/cifar-10-binary.tar.gz (" in message
    assert message.endswith("or set MLPLAB_MIRROR to a mirror you can reach")
    assert not (tmp_path / "cache" / "cifar10" / "cifar-10-binary.tar.gz").exists()


def test_only_the_downloadable_archive_is_checked_against_its_digest(tmp_path: Path) -> None:
    """The archive has a published MD5; a folder of batches has none, so the reader judges it."""
    (tmp_path / "data" / "CIFAR10" / "raw").mkdir(parents=True)
    archive = tmp_path / "data" / "CIFAR10" / "raw" / "cifar-10-binary.tar.gz"
    archive.write_bytes(b"not an archive")
    with pytest.raises(FormatError, match=r"MD5 \w+… is not cifar10's published c32a1d4ab5d0…"):
        CIFAR10_SOURCE.load()
    with pytest.raises(FormatError, match="not a readable .tar.gz archive"):
        CIFAR10_SOURCE.load(verify=False)
    archive.unlink()
    (tmp_path / "data" / "CIFAR10" / "raw" / "cifar-10-batches-bin").mkdir()
    with pytest.raises(FormatError) as err:  # empty: the reader's error, never the digest's
        CIFAR10_SOURCE.load()
    assert "published" not in str(err.value)
