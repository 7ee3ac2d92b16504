"""Downloads from a local HTTP server on 127.0.0.1: good, corrupted, dropped, missing."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlplab import load_dataset
from mlplab.data.download import content_sha256, download_file
from mlplab.data.idx import write_idx
from mlplab.errors import DataError, DownloadError


class Handler(BaseHTTPRequestHandler):
    """/good/F serves F; /corrupt/F flips bytes; /drop/F stops half-way; anything else 404."""

    root: Path

    def do_GET(self) -> None:
        mode, _, name = self.path.strip("/").partition("/")
        file = self.root / Path(name).name
        if mode not in ("good", "corrupt", "drop") or not file.is_file():
            self.send_error(404, "Not Found")
            return
        body = file.read_bytes()
        if mode == "corrupt":
            body = body[:-20] + bytes(b ^ 0xFF for b in body[-20:])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "drop" else body)
        if mode == "drop":
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


def serve(root: Path) -> Iterator[str]:
    handler = type("BoundHandler", (Handler,), {"root": root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """A server over a folder with one gzip IDX file; yields (url, file name, content sha256)."""
    root = tmp_path / "served"
    root.mkdir()
    write_idx(root / "labels.gz", np.arange(5000, dtype=np.int32))
    sha = hashlib.sha256(gzip.decompress((root / "labels.gz").read_bytes())).hexdigest()
    for url in serve(root):
        yield url, "labels.gz", sha


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download(served: tuple[str, str, str], tmp_path: Path) -> None:
    url, name, sha = served
    path = download_file(name, sha, tmp_path / "dest", [f"{url}/good"])
    assert path == tmp_path / "dest" / name
    assert content_sha256(path) == sha
    assert leftovers(tmp_path / "dest") == [name]


def test_corrupted_file_leaves_nothing(served: tuple[str, str, str], tmp_path: Path) -> None:
    url, name, sha = served
    with pytest.raises(
        DownloadError,
        match=r"could not download labels.gz: tried http://127\.0\.0\.1:\d+/corrupt/labels.gz \(",
    ) as err:
        download_file(name, sha, tmp_path / "dest", [f"{url}/corrupt"])
    assert "does not match the expected" in str(err.value) or "not a complete gzip file" in str(
        err.value
    )
    assert leftovers(tmp_path / "dest") == []


def test_dropped_connection_leaves_nothing(served: tuple[str, str, str], tmp_path: Path) -> None:
    url, name, sha = served
    with pytest.raises(DownloadError, match=r"/drop/labels.gz \(connection broke"):
        download_file(name, sha, tmp_path / "dest", [f"{url}/drop"])
    assert leftovers(tmp_path / "dest") == []


def test_missing_file(served: tuple[str, str, str], tmp_path: Path) -> None:
    url, name, sha = served
    with pytest.raises(DownloadError, match=r"/missing/labels.gz \(HTTP 404 Not Found\)$"):
        download_file(name, sha, tmp_path / "dest", [f"{url}/missing"])


def test_mirrors_tried_in_order(served: tuple[str, str, str], tmp_path: Path) -> None:
    url, name, sha = served
    path = download_file(
        name, sha, tmp_path / "dest", [f"{url}/missing", f"{url}/drop", f"{url}/good"]
    )
    assert content_sha256(path) == sha


def test_offline_error_says_where_it_looked_what_it_tried_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        load_dataset("mnist", tmp_path / "mine", mirror="http://127.0.0.1:9/")
    message = str(err.value)
    assert "\n" not in message
    assert (
        f"dataset 'mnist' not found (looked in {tmp_path / 'mine' / 'mnist'}, {tmp_path / 'mine/MNIST/raw'}"
        in message
    )
    assert "tried http://127.0.0.1:9/train-images-idx3-ubyte.gz (" in message
    assert (
        f"Fix: put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (gzip or not) into {tmp_path / 'cache' / 'mnist'}"
        in message
    )


def test_downloads_off(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match="dataset 'fashion-mnist' not found .* and downloads are off; put"
    ) as err:
        load_dataset("fashion-mnist", download=False)
    assert not isinstance(err.value, DownloadError)  # nothing was tried


def test_mnist_download_from_a_mirror(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path a user's first run takes: nothing local, files from MLPLAB_MIRROR."""
    for url in serve(mnist_dir / "mnist"):
        monkeypatch.setenv("MLPLAB_MIRROR", f"{url}/good/")
        data = load_dataset("mnist")
    assert data.origin == str(tmp_path / "cache" / "mnist")
    assert (len(data.train), len(data.test)) == (60000, 10000)
    assert leftovers(tmp_path / "cache" / "mnist") == sorted(
        f"{n}.gz"
        for n in (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )
    )
    # the second load finds the cache: no mirror needed
    monkeypatch.setenv("MLPLAB_MIRROR", "http://127.0.0.1:9/")
    assert load_dataset("mnist").origin == data.origin


def test_corrupted_mnist_mirror_is_refused(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in serve(mnist_dir / "mnist"):
        with pytest.raises(DownloadError, match="train-images-idx3-ubyte.gz"):
            load_dataset("mnist", mirror=f"{url}/corrupt/")
    assert leftovers(tmp_path / "cache" / "mnist") == []


def test_md5_digest_checks_the_file_as_served(served: tuple[str, str, str], tmp_path: Path) -> None:
    """Archives publish the MD5 of the compressed file itself: 'md5:<hex>' checks exactly that."""
    url, name, _ = served
    md5 = hashlib.md5((tmp_path / "served" / name).read_bytes()).hexdigest()
    path = download_file(name, f"md5:{md5}", tmp_path / "dest", [f"{url}/good"])
    assert path.read_bytes() == (tmp_path / "served" / name).read_bytes()
    with pytest.raises(
        DownloadError,
        match=rf"/corrupt/labels.gz \(MD5 [0-9a-f]{{12}}… does not match the expected {md5[:12]}…\)$",
    ):
        download_file(name, f"md5:{md5}", tmp_path / "other", [f"{url}/corrupt"])
    assert leftovers(tmp_path / "other") == []
