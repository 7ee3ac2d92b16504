"""Folders of image files (Pillow): ``root/<class name>/*.png``, optionally under train/ and test/.

Class names are the folder names, sorted; files are read in sorted order, hidden files and
folders (``.DS_Store``, ``.ipynb_checkpoints``, and ``__MACOSX`` from unzip) are ignored, and subfolders of a class
folder belong to that class. Images become grayscale (C=1) when every file is grayscale,
RGB (C=3) when any is in color; palette images count as gray when their colors are;
transparent pixels become black (the background of MNIST-style digits); 16-bit images are
scaled to 8 bits and float images (TIFF) are read as 0-1 or 0-255 pixels, as arrays are.
Every image is brought to one size: ``image_shape`` or the most common height x width,
resizing the others with Pillow's bilinear filter (antialiased when shrinking).

Files come from anyone, so reading is bounded before anything is decoded: only regular
files are opened (a FIFO or a link to a device among the images is skipped, never
opened: it could block forever), only PNG, JPEG, BMP, GIF and TIFF are decoded (a file
named ``.png`` holding another format is refused, so no other decoder, such as EPS's
Ghostscript, ever runs), an image may have at most Pillow's ``MAX_IMAGE_PIXELS`` pixels
(a few-KB PNG can declare 40000 x 40000), and the stacked dataset N x C x H x W must fit
the memory budget (:func:`mlplab.files.limits.check_alloc`). Images are brought to the common
size one at a time, so a folder of large photos never sits in memory at full size.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..errors import FormatError, MlplabError
from ..files.limits import check_alloc, open_regular, printable
from .dataset import check_class_labels
from .raw import RawSplits, parse_image_shape, to_uint8

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_FORMATS", "read_folders"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF")  # the Pillow decoders that may run
_DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default, where it has been switched off
MAX_ENTRIES = 2_000_000  # files and folders walked under the class folders, at most
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")  # and I;16*: one value per pixel (P: either)
_LAYOUT = (
    "expected <folder>/<class name>/<image files> or <folder>/train/<class name>/... "
    f"(and test/), images ending in {', '.join(IMAGE_EXTENSIONS)}"
)


class _Header(NamedTuple):
    """What an image file declares, read before any pixel is decoded."""

    width: int
    height: int
    mode: str
    tile_pixels: int = 0  # a tiled TIFF's tile (tiff_tile), decoded into a buffer of its own


class _Listing(NamedTuple):
    """The image files of a folder dataset, found and labeled before any is opened."""

    classes: tuple[str, ...]  # the class folders' names, as printed, in label order
    files: list[tuple[Path, int]]  # (image file, label): the training images, then the test ones
    n_train: int
    test_dir: Path | None  # None: one folder per class, no test split
    skipped: list[Path]  # named like images but not regular files: never opened


def read_folders(path: str | Path, *, image_shape: str | Sequence[int] | None = None) -> RawSplits:
    """Read ``path/<class>/*`` (one split) or ``path/train/<class>/*`` + ``path/test/<class>/*``."""
    root = Path(path)
    origin = printable(root)
    if not root.is_dir():
        raise FormatError(f"{origin}: not a folder; {_LAYOUT}")
    shape = parse_image_shape(image_shape)
    listing = _list_images_of_splits(root)
    n, has_test = listing.n_train, listing.test_dir is not None
    labels = np.array([label for _, label in listing.files], dtype=np.int64)
    split_labels = {"train": labels[:n]} | ({"test": labels[n:]} if has_test else {})
    check_class_labels(origin, listing.classes, split_labels, error=FormatError)  # before decoding
    layout = "train/ and test/ folders" if has_test else "one folder per class"
    images, notes = _read_images([file for file, _ in listing.files], shape, origin)
    notes = {"layout": layout, **notes}
    if listing.skipped:
        notes["skipped"] = (
            f"{_count(len(listing.skipped), 'file')} named like images but not regular files "
            f"(FIFOs, devices, broken links), e.g. {printable(listing.skipped[0])}"
        )
    test = (images[n:], labels[n:]) if has_test else None
    return RawSplits((images[:n], labels[:n]), test, listing.classes, str(root), "folders", notes)


def _list_images_of_splits(root: Path) -> _Listing:
    """The class folders of ``root`` (or of ``root/train``) and the image files of each split."""
    split_layout = (root / "train").is_dir()
    train_dir = root / "train" if split_layout else root
    test_dir = root / "test" if split_layout and (root / "test").is_dir() else None
    folders = _class_folders(train_dir)
    classes = tuple(printable(name) for name in folders)
    if len(set(classes)) != len(classes):
        repeated = next(c for c, n in Counter(classes).items() if n > 1)
        raise FormatError(
            f"{printable(train_dir)}: two class folders are both shown as '{repeated}' (they "
            "differ only in control characters); rename one"
        )
    skipped: list[Path] = []
    train_files = _list_images(train_dir, folders, skipped)
    test_files = []
    if test_dir is not None:
        extra = sorted(set(_class_folders(test_dir)) - set(folders))
        if extra:
            raise FormatError(
                f"{printable(test_dir)}: class folder '{printable(extra[0])}' has no counterpart "
                f"in {printable(train_dir)}; training classes: {', '.join(classes)}"
            )
        test_files = _list_images(test_dir, folders, skipped)
    if not train_files:
        raise FormatError(f"{printable(train_dir)}: no images in class folders; {_LAYOUT}")
    return _Listing(classes, train_files + test_files, len(train_files), test_dir, skipped)


def _read_images(
    files: list[Path], shape: tuple[int, int, int] | None, origin: str
) -> tuple[np.ndarray, dict[str, str]]:
    """Every image as uint8 ``(N, C, H, W)`` at one size, and notes on channels and resizing.

    First the headers: sizes and modes, every file checked (and the stack's memory) before
    any pixel is decoded. Then the pixels, each brought to the common size at once.
    """
    headers = [_header(file) for file in files]
    sizes = Counter((h.height, h.width) for h in headers)
    height, width = shape[1:] if shape else sizes.most_common(1)[0][0]
    color = any(h.mode not in _GRAY_MODES and not h.mode.startswith("I;") for h in headers)
    channels_bound = shape[0] if shape else 3 if color else 1
    check_alloc(
        len(files) * channels_bound * height * width,
        f"{origin}: {_count(len(files), 'image')} of {channels_bound}x{height}x{width}",
    )

    decoded = [_fit(_decode(file), height, width, shape) for file in files]  # channels kept
    gray = all(pixels.ndim == 2 for pixels in decoded)
    channels = shape[0] if shape else 1 if gray else 3
    images = np.stack([_channels_first(p, channels) for p in decoded])

    if shape:
        why = "as image_shape asks"
    elif gray:
        why = "every image is grayscale"
    else:
        why = "some images are in color"
    notes = {"channels": f"{'gray' if channels == 1 else 'RGB'} ({why})"}
    resized = sum(count for size, count in sizes.items() if size != (height, width))
    if resized:
        notes["resized"] = (
            f"{_count(resized, 'image')} of other sizes resized to {height}x{width} (bilinear)"
        )
    return images, notes


def _class_folders(folder: Path) -> tuple[str, ...]:
    names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p)))
    stray = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and not _hidden(p) and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if stray:
        raise FormatError(
            f"{printable(folder)}: {_count(len(stray), 'image')} directly in the folder (e.g. "
            f"{printable(stray[0])}); put each class's images in a subfolder named for the class"
        )
    if not names:
        raise FormatError(f"{printable(folder)}: no class folders; {_LAYOUT}")
    return names


def _list_images(
    folder: Path, classes: Sequence[str], skipped: list[Path]
) -> list[tuple[Path, int]]:
    """(file, label) for every visible image file under ``folder/<class>``, sorted.

    Entries named like images that are not regular files (a FIFO, a device, a link to one,
    a broken link) are never opened: they go to ``skipped``.
    """
    files, visited = [], 0
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        found = []
        for p in class_dir.rglob("*"):  # rglob does not descend into linked folders: no loops
            visited += 1
            if visited > MAX_ENTRIES:  # e.g. a class folder that is a link to / or to /usr
                raise FormatError(
                    f"{printable(folder)}: more than {MAX_ENTRIES:,} files and folders under its "
                    f"class folders (the last one looked at: {printable(p)}); is a class folder a "
                    "link to a large part of the file system? Link only image folders"
                )
            if p.suffix.lower() not in IMAGE_EXTENSIONS or any(
                part.startswith(".") for part in p.relative_to(class_dir).parts
            ):
                continue
            if p.is_file():  # stat, following links: a FIFO's stat never blocks
                found.append(p)
            elif not p.is_dir():
                skipped.append(p)
        files += [(p, label) for p in sorted(found, key=lambda p: p.relative_to(class_dir).parts)]
    return files


class Tile(NamedTuple):
    """A tiled TIFF's tile: what libtiff decodes at a time, into a buffer of its own."""

    width: int
    length: int
    pixel_bytes: int  # bytes a pixel takes in it (samples x bits / 8, at least 1)

    @property
    def pixels(self) -> int:
        return self.width * self.length

    @property
    def nbytes(self) -> int:
        return self.pixels * self.pixel_bytes


def tiff_tile(image: Image.Image) -> Tile | None:
    """A tiled TIFF's tile; None for any other image.

    libtiff decodes a tiled TIFF a whole tile at a time, into a buffer of the tile's size
    whatever the image's: a 146-byte file declaring a 28x28 image in tiles of 32768 x 65520
    made it allocate 2 GB. The readers hold a tile to the limits an image is held to. Tag
    values a hostile file makes odd (a list, a fraction) are read as their largest whole
    number; libtiff refuses what is not one.
    """
    tags = getattr(image, "tag_v2", None)
    if tags is None or (322 not in tags and 323 not in tags):
        return None
    samples, bits = _tag_number(tags.get(277)) or 1, _tag_number(tags.get(258)) or 1
    width, length = _tag_number(tags.get(322)), _tag_number(tags.get(323))
    return Tile(width, length, max(1, -(-samples * bits // 8)))


def _tag_number(value: object) -> int:
    values = value if isinstance(value, (tuple, list)) else (value,)
    numbers = [int(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return max(numbers, default=0)


def _max_pixels() -> int:
    return int(Image.MAX_IMAGE_PIXELS or _DEFAULT_MAX_PIXELS)


def _too_large(file: Path, pixels: int | None) -> FormatError:
    size = f" has {pixels:,} pixels," if pixels else " is"
    return FormatError(
        f"{printable(file)}:{size} more than the {_max_pixels():,} pixels mlplab decodes in one "
        "image (a decompression bomb? Pillow's limit, PIL.Image.MAX_IMAGE_PIXELS); shrink the "
        "image or remove it"
    )


@contextlib.contextmanager
def _pillow_quiet() -> Iterator[None]:
    """Pillow's warnings silenced (library code prints nothing: a damaged TIFF tag warns),
    but its decompression-bomb warning raised, to be refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _opened(file: Path, stream: object) -> Image.Image:
    """Pillow's open of one of the allowed formats, its decompression-bomb check made an error."""
    try:
        return Image.open(stream, formats=IMAGE_FORMATS)  # type: ignore[arg-type]
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(file, int(found.group(1)) if found else None) from None
    except Image.UnidentifiedImageError:
        raise FormatError(
            f"{printable(file)}: cannot decode the image (not a {', '.join(IMAGE_FORMATS)} "
            "image, or a damaged one); delete or replace the file"
        ) from None


def _file_bytes(file: Path) -> io.BytesIO:
    """The whole file, in memory: Pillow then reads from bytes that are really there.

    A damaged header can declare a chunk of gigabytes; reading that from a file allocates
    the declared size first, reading it from memory only what the file holds.
    """
    with open_regular(file) as stream:
        size = os.fstat(stream.fileno()).st_size
        check_alloc(size, f"{printable(file)} ({size:,} bytes)")
        data = stream.read(size + 1)
    if len(data) != size:
        raise FormatError(f"{printable(file)}: {size:,} bytes when opened, {len(data):,} when read")
    return io.BytesIO(data)


def _header(file: Path) -> _Header:
    """The size and mode a file declares; refuses non-images and images over the pixel limit."""
    try:
        with _pillow_quiet(), _opened(file, _file_bytes(file)) as image:
            width, height = image.size
            tile = tiff_tile(image)
            header = _Header(int(width), int(height), image.mode, tile.pixels if tile else 0)
    except MlplabError:
        raise
    except Exception as exc:  # Pillow's parsers raise many types on damaged headers
        raise _undecodable(file, exc) from None
    if width < 1 or height < 1:
        raise FormatError(f"{printable(file)}: an image of {width}x{height} pixels holds nothing")
    if width * height > _max_pixels():
        raise _too_large(file, width * height)
    if header.tile_pixels > _max_pixels():
        raise FormatError(
            f"{printable(file)}: a TIFF in tiles of {header.tile_pixels:,} pixels each, more "
            f"than the {_max_pixels():,} pixels mlplab decodes at once (a decompression bomb?); "
            "save it untiled or remove it"
        )
    return header


def _undecodable(file: Path, exc: BaseException) -> FormatError:
    text = printable(" ".join(str(exc).split()) or type(exc).__name__)[:300]
    return FormatError(
        f"{printable(file)}: cannot decode the image ({text}); delete or replace the file"
    )


def _decode(file: Path) -> np.ndarray:
    """One image file -> uint8 (H, W) when grayscale, (H, W, 3) when in color."""
    try:
        with _pillow_quiet(), _opened(file, _file_bytes(file)) as image:
            width, height = image.size
            # the decoded image (a palette one becomes RGBA) and its working copies: up to
            # 8 bytes per value for a 16-bit or float image, 4 values per pixel; a tiled
            # TIFF's tile buffer besides (its header was checked against the pixel limit)
            tile = tiff_tile(image)
            tile_bytes = tile.nbytes if tile else 0
            check_alloc(width * height * 4 * 8 + tile_bytes, f"{printable(file)}: decoding it")
            image.load()
            return _pixels(image, file)
    except MlplabError:
        raise
    except Exception as exc:  # Pillow's decoders raise many types on damaged or hostile files
        raise _undecodable(file, exc) from None


def _pixels(image: Image.Image, file: Path) -> np.ndarray:
    mode = image.mode
    if mode == "P":
        rgba = image.convert("RGBA")
        pixels = _over_black(np.asarray(rgba))
        same = (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
        return np.ascontiguousarray(pixels[..., 0]) if same else pixels
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if mode == "LA":
        return _over_black(np.asarray(image))
    if mode.startswith("I"):  # 16-bit (PNG, TIFF): 0-65535 -> 0-255; 32-bit integers likewise
        values = np.asarray(image).astype(np.float32)
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 65535:
            bad = low if low < 0 else high
            raise FormatError(
                f"{printable(file)}: a {mode} image with pixel {bad:g}; integer images must "
                "hold 0-255 or 16-bit 0-65535 values"
            )
        scale = 257.0 if high > 255 else 1.0
        return np.rint(np.clip(values / scale, 0, 255)).astype(np.uint8)
    if mode == "F":  # float TIFFs: 0-1 or 0-255, checked as arrays are (NaN is refused)
        return to_uint8(np.asarray(image), printable(file), "auto", _row_column)
    if mode == "RGBA":
        return _over_black(np.asarray(image))
    return np.asarray(image.convert("RGB"))


def _row_column(index: tuple[int, ...]) -> str:
    return f"row {index[0] + 1}, column {index[1] + 1}"


def _over_black(pixels: np.ndarray) -> np.ndarray:
    """Drop the alpha channel (the last) by compositing over black."""
    alpha = pixels[..., -1:].astype(np.uint16)
    color = (pixels[..., :-1].astype(np.uint16) * alpha + 127) // 255
    color = color.astype(np.uint8)
    return color[..., 0] if color.shape[-1] == 1 else color


def _fit(
    pixels: np.ndarray, height: int, width: int, shape: tuple[int, int, int] | None
) -> np.ndarray:
    """Bring one image to height x width; to the asked channels too when image_shape gives them.

    Without image_shape the channels are decided once every image is read, so a gray image
    stays (H, W) and a color one (H, W, 3) until :func:`_channels_first`.
    """
    if shape is not None and shape[0] == 1 and pixels.ndim == 3:
        pixels = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))  # before resizing
    if pixels.shape[:2] != (height, width):
        image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return pixels


def _channels_first(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) -> (channels, H, W) uint8."""
    if pixels.ndim == 3 and channels == 1:
        pixels = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    if pixels.ndim == 2:
        return pixels[None] if channels == 1 else np.repeat(pixels[None], 3, axis=0)
    return pixels.transpose(2, 0, 1)


def _hidden(path: Path) -> bool:
    # __MACOSX: what unzip makes of a Mac's resource forks (._ files), never a class
    return path.name.startswith(".") or path.name == "__MACOSX"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
