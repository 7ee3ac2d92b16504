"""Fuzzing predict's image loading and preprocessing (shared with the server).

Random bytes, truncated and mutated real files in every accepted format, headers declaring
huge sizes: the outcome is a model input or one line of ``MlplabError``, never another
exception; nothing larger than the pixel limit is decoded; and the memory a decode takes,
measured, stays under :func:`mlplab.inference.images.decode_bytes`, the figure the server reserves.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from mlplab.errors import MlplabError
from mlplab.inference.images import decode_bytes, image_size, load_image, preprocess

pytestmark = pytest.mark.fuzz

MAX_PIXELS = 1_000_000  # small, so that a mutated header cannot make a test slow


def encoded(mode: str, fmt: str, size: tuple[int, int] = (24, 20), **options) -> bytes:
    """A small image with some structure (a bar on a background), encoded."""
    rng = np.random.default_rng(0)
    gray = np.full(size[::-1], 200, np.uint8)
    gray[4:16, 8:12] = 30
    gray += rng.integers(0, 20, gray.shape, dtype=np.uint8)
    image = Image.fromarray(gray)
    if mode == "F":
        image = Image.fromarray(gray.astype(np.float32) / 7, "F")
    elif mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


SEEDS = {
    "png-L": encoded("L", "PNG"),
    "png-RGBA": encoded("RGBA", "PNG"),
    "png-P": encoded("P", "PNG"),
    "png-1": encoded("1", "PNG"),
    "png-I16": encoded("I;16", "PNG"),
    "jpeg": encoded("RGB", "JPEG", quality=80),
    "jpeg-progressive": encoded("L", "JPEG", progressive=True),
    "tiff-F": encoded("F", "TIFF"),
    "tiff-CMYK": encoded("CMYK", "TIFF"),
    "tiff-deflate": encoded("RGB", "TIFF", compression="tiff_adobe_deflate"),
    "bmp": encoded("RGB", "BMP"),
    "gif": encoded("P", "GIF"),
    "webp": encoded("RGB", "WEBP"),
    "ppm": encoded("RGB", "PPM"),
    "pgm": encoded("L", "PPM"),
}
SHAPES = [(1, 28, 28), (3, 16, 16), (1, 8, 8)]


def check(data: bytes, shape: tuple[int, int, int], style: str) -> None:
    """The property: a (C, H, W) uint8 input, or one line of MlplabError; nothing over the cap."""
    try:
        image = load_image(data, "fuzzed.png", max_pixels=MAX_PIXELS)
    except MlplabError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzzed.png: ")
        return
    assert image.size[0] * image.size[1] <= MAX_PIXELS
    try:
        x = preprocess(image, shape, style)
    except MlplabError as exc:  # e.g. style "none" with another size
        assert "\n" not in str(exc)
        return
    assert x.shape == shape and x.dtype == np.uint8


styles = st.sampled_from(["auto", "mnist", "resize", "none"])
shapes = st.sampled_from(SHAPES)


@given(st.binary(max_size=2048), shapes, styles)
@example(b"", (1, 28, 28), "auto")
@example(b"\x89PNG\r\n\x1a\n", (1, 28, 28), "auto")
@example(b"%!PS-Adobe-3.0 EPSF-3.0\n", (1, 28, 28), "auto")  # EPS: never Ghostscript
def test_random_bytes(data: bytes, shape: tuple[int, int, int], style: str) -> None:
    check(data, shape, style)


@given(st.sampled_from(sorted(SEEDS)), st.data(), shapes, styles)
def test_truncated_files(name: str, data: st.DataObject, shape, style) -> None:
    seed = SEEDS[name]
    cut = data.draw(st.integers(0, len(seed)), label="cut")
    check(seed[:cut], shape, style)


@given(st.sampled_from(sorted(SEEDS)), st.data(), shapes, styles)
def test_mutated_files(name: str, data: st.DataObject, shape, style) -> None:
    """Bytes overwritten, mostly in the header (where sizes, modes and offsets live)."""
    seed = bytearray(SEEDS[name])
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        where = data.draw(st.integers(0, min(len(seed), 96) - 1) | st.integers(0, len(seed) - 1))
        new = data.draw(st.binary(min_size=1, max_size=4), label="bytes")
        seed[where : where + len(new)] = new
    check(bytes(seed), shape, style)


def png_chunk(kind: bytes, body: bytes, crc: bool = True) -> bytes:
    value = zlib.crc32(kind + body) & 0xFFFFFFFF if crc else 0
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", value)


sizes = st.integers(1, 2**31 - 1) | st.integers(1, 5000)


@given(sizes, sizes, st.sampled_from([0, 2, 3, 4, 6]), st.booleans(), shapes, styles)
@example(6000, 6000, 0, True, (1, 28, 28), "auto")  # 36 megapixels in a few bytes
@example(2**31 - 1, 2**31 - 1, 6, True, (1, 28, 28), "auto")
def test_png_declaring_huge_sizes(width, height, color, crc, shape, style) -> None:
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    data = zlib.compress(bytes(64))  # far fewer pixels than declared
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header, crc) + png_chunk(b"IDAT", data)
    check(png + png_chunk(b"IEND", b""), shape, style)


@given(sizes, st.integers(-(2**31), 2**31 - 1), shapes, styles)
def test_bmp_declaring_huge_sizes(width, height, shape, style) -> None:
    seed = bytearray(SEEDS["bmp"])
    seed[18:26] = struct.pack("<ii", width if width < 2**31 else 1, height)
    check(bytes(seed), shape, style)


@given(st.integers(0, 65535), st.integers(0, 65535), shapes, styles)
def test_gif_and_pnm_declaring_huge_sizes(width, height, shape, style) -> None:
    gif = bytearray(SEEDS["gif"])
    gif[6:10] = struct.pack("<HH", width, height)
    check(bytes(gif), shape, style)
    check(f"P5\n{width} {height}\n255\n".encode() + bytes(64), shape, style)


IMAGE_MODES = {  # mode: (numpy dtype, channels, format that stores it)
    "L": (np.uint8, 0, "PNG"),
    "LA": (np.uint8, 2, "PNG"),
    "RGB": (np.uint8, 3, "PNG"),
    "RGBA": (np.uint8, 4, "PNG"),
    "I;16": (np.uint16, 0, "PNG"),
    "I": (np.int32, 0, "TIFF"),
    "F": (np.float32, 0, "TIFF"),
}


@given(
    st.sampled_from(sorted(IMAGE_MODES)),
    st.integers(1, 48),
    st.integers(1, 48),
    st.data(),
    shapes,
    styles,
)
def test_any_decodable_image(mode: str, width: int, height: int, data, shape, style) -> None:
    """Valid files of every mode, any size from 1x1, any pixel values (flat, extreme, one dot)."""
    dtype, channels, fmt = IMAGE_MODES[mode]
    dims = (height, width, channels) if channels else (height, width)
    if dtype == np.float32:
        values = st.floats(width=32, allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, 1.0, 255.0, -1.0])  # fmt: skip
    else:
        info = np.iinfo(dtype)
        values = st.integers(int(info.min), int(info.max)) | st.sampled_from([0, 1, 255])
    fill = data.draw(values, label="fill")
    pixels = np.full(dims, fill, dtype)
    if data.draw(st.booleans(), label="dot"):
        pixels[data.draw(st.integers(0, height - 1)), data.draw(st.integers(0, width - 1))] = data.draw(values)  # fmt: skip
    out = io.BytesIO()
    image = Image.fromarray(pixels)  # the mode follows the dtype and channels
    assert image.mode == mode
    image.save(out, format=fmt)
    check(out.getvalue(), shape, style)


def test_image_size_reads_only_the_header() -> None:
    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 6, 0, 0, 0)  # 3.6 gigapixels
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")
    with pytest.raises(
        MlplabError, match=r"3,600,000,000 pixels, more than the 40,000,000 accepted"
    ):
        image_size(png, "big.png")
    assert image_size(SEEDS["png-L"]) == (24, 20)


def test_decode_memory_stays_under_the_estimate(tmp_path) -> None:
    """Peak memory of decoding worst-case images at 4 MP, measured in a fresh process.

    VmHWM (the peak resident set) is reset before each image through /proc/self/clear_refs,
    so each figure is that image's own peak over what the process held before it.
    """
    cases = {  # name: (mode, format, options); each 2000 x 2000, mostly flat (compresses well)
        "png-RGBA": ("RGBA", "PNG", {}),
        "png-P": ("P", "PNG", {}),
        "tiff-F": ("F", "TIFF", {}),
        "webp-RGB": ("RGB", "WEBP", {}),
        "jpeg-progressive": ("RGB", "JPEG", {"progressive": True}),
        "gif": ("P", "GIF", {}),
    }
    for name, (mode, fmt, options) in cases.items():
        (tmp_path / name).write_bytes(encoded(mode, fmt, (2000, 2000), **options))
    script = textwrap.dedent(f"""
        import json, pathlib, sys
        from mlplab.inference.images import load_image, preprocess

        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

        peaks = {{}}
        for path in sorted(pathlib.Path({str(tmp_path)!r}).iterdir()):
            data = path.read_bytes()
            preprocess(load_image(data), (1, 28, 28))  # imports, first-call caches
            open("/proc/self/clear_refs", "w").write("5")
            before = status("VmRSS:")
            preprocess(load_image(data), (1, 28, 28))
            peaks[path.name] = status("VmHWM:") - before
        print(json.dumps(peaks))
    """)
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
        ).stdout
    except subprocess.CalledProcessError as exc:
        if "clear_refs" in exc.stderr:
            pytest.skip(reason="this kernel cannot reset the peak resident set")
        raise
    peaks = json.loads(out)
    bound = decode_bytes(2000, 2000)
    for name, peak in peaks.items():
        assert peak <= bound, f"{name}: {peak / 2**20:.0f} MiB over the {bound / 2**20:.0f} MiB estimate"  # fmt: skip
    assert max(peaks.values()) > bound / 4  # the measure measures something
