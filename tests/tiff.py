"""Tiled TIFFs written byte by byte (Pillow writes strips only): a real one, or one whose
header declares tiles far larger than what it holds (a decompression bomb for libtiff)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

DEFLATE = 8


def tiled_tiff(pixels: np.ndarray, tile: tuple[int, int], *, bomb: bool = False) -> bytes:
    """A little-endian 8-bit grayscale TIFF of ``pixels`` (H, W) in one Deflate tile of
    ``tile`` = (width, length) pixels, padded with zeros; ``bomb``: the tile's data is 64
    zero bytes whatever the tile's declared size."""
    height, width = pixels.shape
    tile_width, tile_length = tile
    assert bomb or (tile_width >= width and tile_length >= height), "one tile holds the image"
    if bomb:
        data = zlib.compress(bytes(64))
    else:
        padded = np.zeros((tile_length, tile_width), np.uint8)
        padded[:height, :width] = pixels
        data = zlib.compress(padded.tobytes())
    entries = [  # (tag, type: 3 SHORT / 4 LONG, value); the tile's offset is filled in below
        (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, DEFLATE), (262, 3, 1),
        (277, 3, 1), (322, 4, tile_width), (323, 4, tile_length), (324, 4, None),
        (325, 4, len(data)),
    ]  # fmt: skip
    offset = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\0" + struct.pack("<IH", 8, len(entries))
    for tag, kind, value in entries:
        value = offset if value is None else value
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, 1) + packed
    return out + bytes(4) + data
