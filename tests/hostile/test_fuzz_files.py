"""Fuzzing the HDF5, CIFAR-10 and image-folder readers (issue 25).

Random structures written with h5py, random pickles and tarballs, random bytes named like
images, and truncated or byte-mutated real files: the outcome is a dataset or one line of
``MlplabError``, never another exception, no warning escapes, and memory stays bounded. The memory budget is
pinned small (``MLPLAB_MAX_ALLOC_MB``) so a mutated header that claims a huge array must
be refused by the checks; what Python and numpy allocate is measured with tracemalloc per
example, and what the C libraries (HDF5, zlib, Pillow) take by the process's peak RSS.
"""

from __future__ import annotations

import io
import pickle
import resource
import tarfile
import tempfile
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from mlplab.data.cifar import read_cifar, read_pickle
from mlplab.data.folders import read_folders
from mlplab.data.hdf5 import read_hdf5
from mlplab.data.raw import RawSplits
from mlplab.errors import MlplabError

pytestmark = pytest.mark.fuzz

BUDGET_MB = 8  # the pinned memory budget: one array may take at most this much
PEAK_LIMIT = 6 * BUDGET_MB << 20  # Python + numpy bytes one read may hold at once (a few arrays)
RSS_GROWTH_LIMIT = 256 << 20  # the whole test: a bomb inflating past the checks would show here


@pytest.fixture(autouse=True)
def bounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pin the budget for every example; after the test, the process grew by little."""
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", str(BUDGET_MB))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    yield
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - before
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / 2**20:.0f} MiB"


def outcome(read: Callable[[], RawSplits]) -> RawSplits | None:
    """The property: a dataset, or one line of MlplabError; never another exception, and the
    Python and numpy memory held while reading stays within a few arrays of the budget."""
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = read()
            except MlplabError as exc:
                message = str(exc)
                assert message and "\n" not in message and "\r" not in message, repr(message)
                assert "\x1b" not in message, repr(message)
                result = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"
    assert not caught, f"warnings escaped (library code prints nothing): {caught[0].message}"
    if result is not None:
        for images, labels in result.splits().values():
            assert images.dtype == np.uint8 and images.ndim == 4 and len(labels) == len(images)
    return result


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with bytes replaced at (position modulo the length, value), then cut short."""
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


FLIPS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6)
CUTS = st.none() | st.integers(0, 1 << 16)


# --- HDF5 ------------------------------------------------------------------------------------

NO_NUL = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x00"
)  # HDF5 text: UTF-8, no NUL
DTYPES = ["u1", "u2", "i1", "<i4", ">i2", "i8", "f2", "<f4", ">f8", "?"]


@st.composite
def h5_contents(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(0, 4))
    rank = draw(st.sampled_from(["flat", "hw", "chw", "hwc", "odd"]))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    c = draw(st.sampled_from([1, 2, 3, 4]))
    shape = {
        "flat": (n, draw(st.sampled_from([4, 9, 12, 16, 7]))),
        "hw": (n, h, w),
        "chw": (n, c, h, w),
        "hwc": (n, h, w, c),
        "odd": tuple(draw(st.lists(st.integers(0, 3), max_size=5))),
    }[rank]
    values = draw(st.sampled_from(["0-255", "0-1", "nan", "negative", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    pixels = {
        "0-255": rng.integers(0, 256, shape),
        "0-1": rng.random(shape),
        "nan": np.where(rng.random(shape) < 0.3, np.nan, rng.random(shape)),
        "negative": rng.integers(-5, 5, shape),
        "huge": rng.integers(0, 2**40, shape).astype(np.float64),
    }[values]
    with np.errstate(all="ignore"):
        images = np.asarray(pixels).astype(dtype)
    n_labels = max(0, n + draw(st.sampled_from([0, 0, 0, 1, -1])))
    label_values = draw(st.sampled_from(["classes", "one", "float", "negative", "1e20"]))
    labels = {
        "classes": np.arange(n_labels) % 3,
        "one": np.zeros(n_labels, np.int64),
        "float": np.arange(n_labels) + 0.5,
        "negative": -np.arange(n_labels),
        "1e20": np.full(n_labels, 1e20),
    }[label_values]
    storage = draw(st.sampled_from(["contiguous", "chunked", "gzip", "lzf", "gzip+shuffle+sum"]))
    return {
        "images": images,
        "labels": labels,
        "storage": storage,
        "keys": draw(st.sampled_from(["images", "train/data", "x_train", "pix\x1bels"])),
        "attrs": draw(
            st.dictionaries(
                st.text(NO_NUL, min_size=1, max_size=8).filter(lambda k: k != "."),
                st.integers(-(2**40), 2**40)
                | st.text(NO_NUL, max_size=20)
                | st.binary(min_size=1, max_size=20).map(lambda b: np.frombuffer(b, np.uint8)),
                max_size=3,
            )
        ),
        "extra": draw(st.sampled_from(["none", "strings", "softlink", "extlink", "empty"])),
    }


def write_h5(path: Path, spec: dict[str, object]) -> None:
    options: dict[str, object] = {}
    storage = spec["storage"]
    if storage != "contiguous":
        options["chunks"] = True
    if storage in ("gzip", "gzip+shuffle+sum"):
        options["compression"] = "gzip"
    if storage == "lzf":
        options["compression"] = "lzf"
    if storage == "gzip+shuffle+sum":
        options |= {"shuffle": True, "fletcher32": True}
    images, labels = spec["images"], spec["labels"]
    names = {
        "images": ("images", "labels"),
        "train/data": ("train/data", "train/target"),
        "x_train": ("x_train", "y_train"),
        "pix\x1bels": ("pix\x1bels", "labels"),
    }[spec["keys"]]  # type: ignore[index]
    with h5py.File(path, "w") as f:
        for name, array in zip(names, (images, labels), strict=True):
            # h5py cannot chunk (or compress) empty or scalar arrays
            chunked = options if np.asarray(array).size and np.ndim(array) else {}
            dataset = f.create_dataset(name, data=array, **chunked)
            for key, value in spec["attrs"].items():  # type: ignore[attr-defined]
                dataset.attrs[key] = value
        extra = spec["extra"]
        if extra == "strings" and "images" not in f:
            f["images"] = np.array([b"text"] * 2)
        elif extra == "softlink" and "images" not in f:
            f["images"] = h5py.SoftLink(f"/{names[0]}")
        elif extra == "extlink" and "images" not in f:
            f["images"] = h5py.ExternalLink("elsewhere.h5", "/x")
        elif extra == "empty":
            f.create_dataset("unused", shape=(10**6, 100), dtype="f8")


@given(spec=h5_contents())
def test_hdf5_structures(tmp_path: Path, spec: dict[str, object]) -> None:
    path = tmp_path / "fuzzed.h5"
    write_h5(path, spec)
    key = spec["keys"]
    if key == "pix\x1bels":
        outcome(lambda: read_hdf5(path, images_key=str(key)))
    else:
        outcome(lambda: read_hdf5(path))


def seed_h5(storage: str) -> bytes:
    rng = np.random.default_rng(0)
    spec = {
        "images": rng.integers(0, 256, (40, 8, 8)).astype(np.uint8),
        "labels": np.arange(40) % 4,
        "storage": storage,
        "keys": "images",
        "attrs": {"note": "seed"},
        "extra": "none",
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed.h5"
        write_h5(path, spec)
        data = path.read_bytes()
    return data


H5_SEEDS = {storage: seed_h5(storage) for storage in ("contiguous", "gzip+shuffle+sum", "lzf")}


@given(seed=st.sampled_from(sorted(H5_SEEDS)), flips=FLIPS, cut=CUTS)
@example(seed="contiguous", flips=[], cut=None)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_hdf5_mutated_files(
    tmp_path: Path, seed: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    path = tmp_path / "fuzzed.h5"
    path.write_bytes(mutate(H5_SEEDS[seed], flips, cut))
    outcome(lambda: read_hdf5(path))


# --- CIFAR-10 ------------------------------------------------------------------------------

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def seed_batch(index: int, n: int = 2) -> dict[bytes, object]:
    rng = np.random.default_rng(index)
    return {
        b"batch_label": b"batch",
        b"labels": [(index + i) % 10 for i in range(n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"a.png"] * n,
    }


PICKLE_SEEDS = [pickle.dumps(seed_batch(0), protocol=p) for p in (0, 2, 4, 5)]

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.binary(max_size=16)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.binary(max_size=6) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
arrays = st.builds(
    lambda shape, dtype, seed: np.random.default_rng(seed).integers(0, 256, shape).astype(dtype),
    st.lists(st.integers(0, 4), max_size=3).map(tuple),
    st.sampled_from(["u1", "i8", "f4", ">u2", "?"]),
    st.integers(0, 99),
)
batch_like = st.fixed_dictionaries(
    {},
    optional={
        b"data": arrays | plain,
        b"labels": st.lists(st.integers(-3, 300), max_size=4) | arrays | plain,
        b"batch_label": plain,
    },
)


@given(
    obj=batch_like | plain,
    protocol=st.sampled_from([0, 2, 4, 5]),
)
def test_read_pickle_of_random_values(obj: object, protocol: int) -> None:
    try:
        value = read_pickle(pickle.dumps(obj, protocol=protocol), "fuzzed")
    except MlplabError as exc:
        assert "\n" not in str(exc)
        return
    if isinstance(obj, dict) and isinstance(obj.get(b"data"), np.ndarray):
        np.testing.assert_array_equal(value[b"data"], obj[b"data"])  # type: ignore[index]


@given(seed=st.sampled_from(range(len(PICKLE_SEEDS))), flips=FLIPS, cut=CUTS)
def test_read_pickle_of_mutated_batches(
    seed: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = mutate(PICKLE_SEEDS[seed], flips, cut)
    tracemalloc.start()
    try:
        try:
            read_pickle(data, "fuzzed")
        except MlplabError as exc:
            assert "\n" not in str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * len(data) + (1 << 20)  # the pickle's own bytes, a few times over


@given(batch=batch_like, which=st.sampled_from([*BATCHES, "batches.meta"]))
def test_cifar_python_folder_with_a_random_batch(tmp_path: Path, batch: dict, which: str) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    for index, name in enumerate(BATCHES):
        (folder / name).write_bytes(pickle.dumps(seed_batch(index), protocol=2))
    (folder / which).write_bytes(pickle.dumps(batch, protocol=2))
    outcome(lambda: read_cifar(folder))


def cifar_archive(compression: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for index, name in enumerate(BATCHES):
            rng = np.random.default_rng(index)
            records = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
            records[:, 0] %= 10
            data = records.tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ARCHIVES = {"tar": cifar_archive(""), "gz": cifar_archive("gz"), "xz": cifar_archive("xz")}


@given(kind=st.sampled_from(sorted(ARCHIVES)), flips=FLIPS, cut=CUTS)
@example(kind="tar", flips=[], cut=None)
def test_cifar_mutated_archives(
    tmp_path: Path, kind: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(mutate(ARCHIVES[kind], flips, cut))
    outcome(lambda: read_cifar(path))


@given(
    sizes=st.lists(st.integers(0, 3 * 3073 + 5), min_size=6, max_size=6), seed=st.integers(0, 99)
)
def test_cifar_binary_batches_of_random_bytes(tmp_path: Path, sizes: list[int], seed: int) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, size in zip(BATCHES, sizes, strict=True):
        (folder / f"{name}.bin").write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    outcome(lambda: read_cifar(folder))


# --- Image folders ---------------------------------------------------------------------------


def encoded(fmt: str, mode: str = "L", **options: object) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    image = Image.fromarray(pixels)
    if mode == "F":
        image = Image.fromarray(pixels.astype(np.float32) / 255)
    elif mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


IMAGE_SEEDS = {
    "a.png": encoded("PNG"),
    "b.png": encoded("PNG", "RGBA"),
    "c.png": encoded("PNG", "I;16"),
    "d.jpg": encoded("JPEG", "RGB"),
    "e.gif": encoded("GIF", "P"),
    "f.bmp": encoded("BMP", "RGB"),
    "g.tif": encoded("TIFF", "F"),
    "h.tiff": encoded("TIFF", "RGB", compression="tiff_adobe_deflate"),
}


def image_folder(root: Path, name: str, data: bytes) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / "seed.png").write_bytes(IMAGE_SEEDS["a.png"])
    for old in (root / "b").iterdir():
        if old.name != "seed.png":
            old.unlink()
    (root / "b" / name).write_bytes(data)
    return root


@given(data=st.binary(max_size=512), name=st.sampled_from(["x.png", "x.jpg", "x.gif", "x.tif"]))
def test_folders_with_random_bytes_as_images(tmp_path: Path, data: bytes, name: str) -> None:
    root = image_folder(tmp_path / "photos", name, data)
    outcome(lambda: read_folders(root))


@given(seed=st.sampled_from(sorted(IMAGE_SEEDS)), flips=FLIPS, cut=CUTS)
@example(seed="a.png", flips=[], cut=None)
def test_folders_with_mutated_and_truncated_images(
    tmp_path: Path, seed: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = IMAGE_SEEDS[seed]
    flips = [(p % len(data), v) for p, v in flips]
    root = image_folder(tmp_path / "photos", seed, mutate(data, flips, cut))
    outcome(lambda: read_folders(root))
