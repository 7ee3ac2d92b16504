"""Image files -> the model's input: loading (safely) and preprocessing to the training distribution.

A model trained on MNIST has only seen white, centered, size-normalized digits on black;
a photo of a digit on paper is none of that. :func:`preprocess` brings an image to the
training distribution the way MNIST itself was made, in the ``"mnist"`` style:

1. grayscale (transparent parts laid on a background that contrasts with the drawing);
   an image with no ink at all (blank paper under uneven light, a smooth gradient: nothing
   stands out of a smooth surface by more than 16 levels) is said to be blank and
   becomes an empty frame, which the rejection of unfamiliar inputs calls "no ink"
   (:mod:`mlplab.trust.rejection`), instead of its light being stretched into "ink";
2. inverted when the background is light, judged from the median of the border pixels;
3. background level subtracted, contrast stretched, faint paper texture below half the
   ink threshold (Otsu's) cleared;
4. cropped to the bounding box of the ink (pixels above Otsu's threshold);
5. strokes that would come out thinner than MNIST's thickened (a pen line on a large
   photo would otherwise shrink to a faint hairline): the ink mask is dilated;
6. scaled, keeping the aspect ratio, to fit a box of 20/28 of the target size (20x20 in
   28x28) with antialiasing;
7. placed so that its center of mass falls on the frame's center, to a fraction of a
   pixel: row H/2 and column W/2 in pixel-index units, where MNIST's own digits lie
   (their mean center of mass is at (13.99, 14.00)).

Other styles: ``"resize"`` (for color or not digit-like models: convert to the model's
channels, RGB or gray, and resize to its input size, no inversion or cropping), ``"none"``
(the image must already have the model's size), and ``"auto"`` (the default):
``"none"`` for an image that already has the model's exact size (and, for one channel,
a dark background, as a saved MNIST image or a ``--show`` output has), else ``"mnist"``
for one-channel models and ``"resize"`` for the others.

:func:`load_image` reads any image source (a path, encoded bytes, a PIL image, an array)
within the pixel and memory limits; :func:`preprocess` makes the model's input from it. The
pixel steps of the ``"mnist"`` style (1-7 after the conversion to gray) are the pure function
:func:`mlplab.data.mnist_style.mnist_style`, which the rejection's synthetic photographs go
through too. The model's part is in :mod:`.predictor`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config.rules import check_names
from ..data.folders import tiff_tile
from ..data.mnist_style import BOX, border, is_blank, mnist_style
from ..errors import DataError
from ..files.limits import check_alloc, open_regular, printable

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "STYLES",
    "ImageSource",
    "ImageTooLarge",
    "check_style",
    "decode_bytes",
    "image_files",
    "image_header",
    "image_size",
    "is_blank",
    "load_image",
    "preprocess",
    "shown_name",
]

STYLES = ("auto", "mnist", "resize", "none")
# the endings of the image files a folder is read for
IMAGE_SUFFIXES = (
    *(".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"),
    *(".pgm", ".ppm", ".pbm"),  # Netpbm
)
# The formats Pillow may open: those of IMAGE_SUFFIXES (JPEG includes the multi-picture
# JPEGs of cameras). Not every plugin Pillow has: EPS would run Ghostscript on an upload,
# and rarely used parsers are attack surface that nothing here needs.
FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM")
MAX_PIXELS = 40_000_000  # largest image accepted by default (a 40 MP photo): bombs stop here
# Images over this many pixels are box-reduced below it before "mnist"/"resize" preprocessing:
# the model sees 28x28, and the float64 steps would otherwise hold ~40 bytes per source pixel.
WORK_PIXELS = 2_000_000
# Peak memory of load_image + preprocess, measured (benchmarks/serve_memory.py, and
# tests/hostile/test_fuzz_predict.py checks it): per source pixel while decoding (4-byte pixels,
# the EXIF turn's copy, the finite check of float images) and per working pixel after the
# reduction (grayscale, ink, masks and temporaries in float64).
DECODE_BYTES_PER_PIXEL = 16
WORK_BYTES_PER_PIXEL = 48
# Pillow's pixel modes that preprocessing reads as they are (others are converted to RGB(A))
_MODES = (
    *("1", "L", "P", "LA", "PA"),  # bilevel, gray, palette (with alpha)
    *("RGB", "RGBA", "RGBX", "CMYK", "YCbCr"),  # colour
    *("I", "F", "I;16", "I;16B", "I;16L", "I;16N"),  # 32-bit integer and float, 16-bit
)
ImageSource = str | Path | bytes | Image.Image | np.ndarray | torch.Tensor


class ImageTooLarge(DataError):
    """An image holds more pixels than accepted (the server answers it 413, not 400);
    ``pixels``: how many it declares, where the refusal is about the image's own size."""

    def __init__(self, message: str, pixels: int | None = None) -> None:
        super().__init__(message)
        self.pixels = pixels


# ----- reading ---------------------------------------------------------------------------
def decode_bytes(width: int, height: int) -> int:
    """Peak memory, bytes, of decoding and preprocessing one ``width`` x ``height`` image."""
    pixels = width * height
    return pixels * DECODE_BYTES_PER_PIXEL + min(pixels, WORK_PIXELS) * WORK_BYTES_PER_PIXEL


def shown_name(name: object, limit: int = 200) -> str:
    """A file name as echoed in messages: control characters escaped, at most ``limit`` long."""
    text = printable(name)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def image_size(source: str | Path | bytes, name: str | None = None) -> tuple[int, int]:
    """(width, height) from an image's header alone (nothing decoded); DataError if unreadable."""
    width, height, _ = image_header(source, name)
    return width, height


def image_header(
    source: str | Path | bytes, name: str | None = None, *, max_pixels: int = MAX_PIXELS
) -> tuple[int, int, int]:
    """(width, height, tile bytes) from an image's header alone (nothing decoded): the tile
    bytes are the buffer libtiff decodes a tiled TIFF's tiles into (0 for other images),
    to count beside :func:`decode_bytes`. DataError if unreadable, ImageTooLarge when a tile
    holds more than ``max_pixels`` pixels (:func:`mlplab.data.folders.tiff_tile`)."""
    label = shown_name(name or ("upload" if isinstance(source, (bytes, bytearray)) else source))
    with _opened(source, label, max_pixels) as image:
        width, height = image.size
        return width, height, _tile_bytes(image, label, max_pixels)


def _tile_bytes(image: Image.Image, label: str, max_pixels: int) -> int:
    """The bytes of the tile buffer a tiled TIFF is decoded through; ImageTooLarge when a
    tile holds more than ``max_pixels`` pixels, whatever the image's own size."""
    tile = tiff_tile(image)
    if tile is None:
        return 0
    if tile.pixels > max_pixels:
        raise ImageTooLarge(
            f"{label}: a TIFF in tiles of {tile.width}x{tile.length} = {tile.pixels:,} pixels "
            f"each, more than the {max_pixels:,} accepted (--max-megapixels sets the limit); "
            "save it untiled or in smaller tiles"
        )
    return tile.nbytes


def load_image(
    source: ImageSource, name: str | None = None, *, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """A decoded PIL image from a path, encoded bytes, a PIL image or an array.

    Arrays follow PIL (``(H, W)``, ``(H, W, C)``) or mlplab (``(C, H, W)``, C = 1 or 3)
    layouts; uint8 in 0-255 or floats in [0, 1]. Files and bytes are refused (DataError
    naming ``name`` or the path, and what is accepted) when undecodable, in a format other
    than :data:`FORMATS`, over ``max_pixels`` pixels (checked from the header, before
    anything is decoded) or over the memory budget (:func:`mlplab.files.limits.check_alloc`),
    and when floating-point pixels are NaN or infinite.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return _from_array(source, shown_name(name or "array"))
    label = shown_name(name or ("upload" if isinstance(source, (bytes, bytearray)) else source))
    with _opened(source, label, max_pixels) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_large(label, width * height, max_pixels, f"{width}x{height} is ")
        tile_bytes = _tile_bytes(image, label, max_pixels)
        decoding = f"{label}: decoding its {width}x{height} pixels"
        check_alloc(decode_bytes(width, height) + tile_bytes, decoding, error=DataError)
        try:
            image.load()  # decode now: truncated files fail here, with their name
            image = _usable_mode(image, label)
            if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
                raise DataError(
                    f"{label}: a floating-point image holding NaN or infinite pixels; "
                    "mlplab reads finite values only"
                )
            if image.mode in ("I", "F") and (low := float(np.asarray(image).min())) < 0:
                raise DataError(  # the data readers refuse them too (data/folders.py)
                    f"{label}: a {'floating-point' if image.mode == 'F' else '32-bit integer'} "
                    f"image with pixel {low:g}; pixels must be 0 or more (0-1 or 0-255 floats, "
                    "0-65535 integers)"
                )
            ImageOps.exif_transpose(image, in_place=True)  # photos: the camera's rotation
            return image
        except DataError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # Pillow's decoders raise many types (see _opened)
            raise _unreadable(label, exc) from None


def _too_large(label: str, pixels: int, max_pixels: int, size: str = "") -> ImageTooLarge:
    return ImageTooLarge(
        f"{label}: {size}{pixels:,} pixels, more than the {max_pixels:,} accepted "
        "(--max-megapixels sets the limit); scale the image down",
        pixels,
    )


@contextlib.contextmanager
def _opened(
    source: str | Path | bytes, label: str, max_pixels: int = MAX_PIXELS
) -> Iterator[Image.Image]:
    """``source`` opened by Pillow (header read, nothing decoded), in one of :data:`FORMATS`.

    A path must be a regular file (a FIFO would block, a device never end). Any failure of
    Pillow's parsers, whatever its type (they raise OSError, ValueError, SyntaxError,
    struct.error, IndexError, KeyError, EOFError, ZeroDivisionError... on damaged or hostile
    files), becomes one DataError naming the file; MemoryError is left alone.
    """
    with contextlib.ExitStack() as stack:
        if isinstance(source, (bytes, bytearray)):
            stream: IO[bytes] = io.BytesIO(source)
        else:
            if not os.path.exists(source):
                raise DataError(f"{label}: no such image file")
            stream = stack.enter_context(open_regular(source))  # a FIFO, a folder: one line
        try:
            image = Image.open(stream, formats=FORMATS)
        except Image.DecompressionBombError as exc:  # Pillow's own ceiling, before ours
            found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
            if found is None:
                raise ImageTooLarge(f"{label}: {exc}; scale the image down") from None
            pixels, pillows = int(found[1]), int(found[2])
            if pixels > max_pixels:  # our limit is the one to name: Pillow's is far above it
                raise _too_large(label, pixels, max_pixels) from None
            raise ImageTooLarge(  # a limit raised past Pillow's
                f"{label}: {pixels:,} pixels, more than Pillow decodes ({pillows:,}); scale the "
                "image down",
                pixels,
            ) from None
        except MemoryError:
            raise
        except Exception as exc:  # Pillow's parsers raise many types (see above)
            raise _unreadable(label, exc) from None
        yield image


def _unreadable(label: str, exc: Exception) -> DataError:
    if isinstance(exc, UnidentifiedImageError):
        reason = "not a known image format"
    else:
        reason = shown_name(str(exc) or type(exc).__name__, 160)
    return DataError(
        f"{label}: cannot read as an image ({reason}); pass a PNG, JPEG, BMP, GIF, TIFF or WebP file"
    )


def _usable_mode(image: Image.Image, label: str) -> Image.Image:
    """``image`` in a pixel mode preprocessing handles (LAB, HSV, ... converted to RGB(A))."""
    if image.mode in _MODES:
        return image
    alpha = any(band in ("A", "a") for band in image.getbands())
    try:
        return image.convert("RGBA" if alpha else "RGB")
    except ValueError:
        raise DataError(
            f"{label}: pixels in Pillow's mode {image.mode}, which mlplab cannot convert; "
            "save the image as RGB or grayscale"
        ) from None


def _from_array(array: np.ndarray | torch.Tensor, label: str) -> Image.Image:
    a = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise DataError(
            f"{label}: an array image must be (H, W), (H, W, 3|4) or (C, H, W) with C 1 or 3; "
            f"got shape {tuple(array.shape)}"
        )
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise DataError(
                f"{label}: a non-uint8 array image must hold pixels in [0, 1]; "
                f"got values in [{a.min():g}, {a.max():g}]"
            )
        a = np.rint(a * 255).astype(np.uint8)
    return Image.fromarray(a)


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """The paths, with each folder replaced by its image files (sorted, not recursive)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(
                    f"{shown_name(p)}: the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})"
                )
            files += found
        else:
            files.append(p)
    return files


# ----- preprocessing --------------------------------------------------------------------
def check_style(style: str) -> None:
    """``style`` is one of :data:`STYLES`, or a ConfigError naming them."""
    check_names([style], STYLES, unknown="preprocessing style must be one of {choices}; got {got}")


def preprocess(
    image: Image.Image, input_shape: Sequence[int], style: str = "auto", *, box: float = BOX
) -> np.ndarray:
    """The model's input for ``image``: uint8 ``(C, H, W)`` (see the module docstring)."""
    c, h, w = (int(s) for s in input_shape)
    check_style(style)
    if c not in (1, 3):
        raise DataError(f"images can feed models with 1 or 3 channels; this one takes {c}")
    if style == "auto":
        if image.size == (w, h) and (c == 3 or np.median(border(_gray(image))) <= 127.5):
            style = "none"  # already in the training format (a saved MNIST image, a --show file)
        else:
            style = "mnist" if c == 1 else "resize"
    if style == "none":
        if image.size != (w, h):
            raise DataError(
                f"preprocessing 'none' needs images of exactly {w}x{h} pixels; got "
                f"{image.size[0]}x{image.size[1]} (use 'auto', 'mnist' or 'resize')"
            )
        return _channels(image, c)
    image = _reduced(image)
    if style == "resize":
        return _channels(_flatten_alpha(image).resize((w, h), Image.Resampling.LANCZOS), c)
    gray = mnist_style(_gray(image), h, w, box)
    return np.repeat(gray[None], c, axis=0)


def _reduced(image: Image.Image, limit: int = WORK_PIXELS) -> Image.Image:
    """``image`` box-averaged by a whole factor to at most ~``limit`` pixels (as it is if smaller).

    The model sees 20x20 of ink: a 40-megapixel photo holds nothing more for it than its
    2-megapixel reduction, and the float steps after this cost ~40 bytes per pixel.
    """
    width, height = image.size
    if width * height <= limit:
        return image
    if image.mode in ("1", "P", "PA") or image.mode.startswith("I;16"):  # reduce averages values
        if image.mode.startswith("I;16"):  # as _gray reads them: 0-65535 -> 0-255
            image = Image.fromarray(np.asarray(image, dtype=np.float32) / 257, "F")
        elif image.mode == "1":
            image = image.convert("L")
        else:  # palette indices cannot be averaged: their colours can
            alpha = image.mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if alpha else "RGB")
    k = math.ceil(math.sqrt(width * height / limit))
    return image.reduce(k)


def _gray(image: Image.Image) -> np.ndarray:
    """Luminance as float64 in 0-255; 16-bit images scaled, transparency flattened."""
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float64) / 257
    if image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        return a * (255 / a.max()) if a.max() > 255 else np.clip(a, 0, 255)
    return np.asarray(_flatten_alpha(image).convert("L"), dtype=np.float64)


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Lay a transparent image on white, or on black when what is drawn on it is light."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode not in ("RGBA", "LA", "PA", "La", "RGBa"):
        return image
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
    luma = np.asarray(rgba.convert("L"), dtype=np.float64)
    drawn = (luma * alpha).sum() / max(alpha.sum(), 1e-9)
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255) if drawn > 127.5 else (255,) * 4)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _channels(image: Image.Image, c: int) -> np.ndarray:
    a = np.asarray(_flatten_alpha(image).convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    return a[None].copy() if c == 1 else a.transpose(2, 0, 1).copy()
