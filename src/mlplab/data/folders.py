"""Folders of image files (Pillow): ``root/<class name>/*.png``, optionally under train/ and test/.

Class names are the folder names, sorted; files are read in sorted order, hidden files and
folders (``.DS_Store``, ``.ipynb_checkpoints``) are ignored, and subfolders of a class
folder belong to that class. Images become grayscale (C=1) when every file is grayscale,
RGB (C=3) when any is in color; palette images count as gray when their colors are;
transparent pixels become black (the background of MNIST-style digits). Every image is
brought to one size: ``image_shape`` or the most common height x width, resizing the
others with Pillow's bilinear filter (antialiased when shrinking).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import FormatError
from .raw import RawSplits, parse_image_shape

__all__ = ["IMAGE_EXTENSIONS", "read_folders"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_LAYOUT = (
    "expected <folder>/<class name>/<image files> or <folder>/train/<class name>/... "
    f"(and test/), images ending in {', '.join(IMAGE_EXTENSIONS)}"
)


def read_folders(path: str | Path, *, image_shape: str | Sequence[int] | None = None) -> RawSplits:
    """Read ``path/<class>/*`` (one split) or ``path/train/<class>/*`` + ``path/test/<class>/*``."""
    root = Path(path)
    if not root.is_dir():
        raise FormatError(f"{root}: not a folder; {_LAYOUT}")
    shape = parse_image_shape(image_shape)
    split_layout = (root / "train").is_dir()
    train_dir = root / "train" if split_layout else root
    test_dir = root / "test" if split_layout and (root / "test").is_dir() else None

    classes = _class_folders(train_dir)
    train_files = _list_images(train_dir, classes)
    test_files = []
    if test_dir is not None:
        extra = sorted(set(_class_folders(test_dir)) - set(classes))
        if extra:
            raise FormatError(
                f"{test_dir}: class folder '{extra[0]}' has no counterpart in {train_dir}; "
                f"training classes: {', '.join(classes)}"
            )
        test_files = _list_images(test_dir, classes)
    if not train_files:
        raise FormatError(f"{train_dir}: no images in class folders; {_LAYOUT}")

    decoded = [_decode(file) for file, _ in train_files + test_files]
    gray = all(pixels.ndim == 2 for pixels in decoded)
    channels = shape[0] if shape else 1 if gray else 3
    sizes = Counter(pixels.shape[:2] for pixels in decoded)
    height, width = shape[1:] if shape else sizes.most_common(1)[0][0]
    images = np.stack([_conform(p, channels, height, width) for p in decoded])
    labels = np.array([label for _, label in train_files + test_files], dtype=np.int64)

    resized = sum(n for size, n in sizes.items() if size != (height, width))
    why = (
        "as image_shape asks"
        if shape
        else "every image is grayscale"
        if gray
        else "some images are in color"
    )
    notes = {
        "layout": "train/ and test/ folders" if test_dir else "one folder per class",
        "channels": f"{'gray' if channels == 1 else 'RGB'} ({why})",
    }
    if resized:
        notes["resized"] = (
            f"{_count(resized, 'image')} of other sizes resized to {height}x{width} (bilinear)"
        )
    n = len(train_files)
    test = (images[n:], labels[n:]) if test_dir is not None else None
    return RawSplits((images[:n], labels[:n]), test, classes, str(root), "folders", notes)


def _class_folders(folder: Path) -> tuple[str, ...]:
    names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p)))
    stray = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and not _hidden(p) and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if stray:
        raise FormatError(
            f"{folder}: {_count(len(stray), 'image')} directly in the folder (e.g. {stray[0]}); "
            "put each class's images in a subfolder named for the class"
        )
    if not names:
        raise FormatError(f"{folder}: no class folders; {_LAYOUT}")
    return names


def _list_images(folder: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """(file, label) for every visible image file under ``folder/<class>``, sorted."""
    files = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        found = (
            p
            for p in class_dir.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)
        )
        files += [(p, label) for p in sorted(found, key=lambda p: p.relative_to(class_dir).parts)]
    return files


def _decode(file: Path) -> np.ndarray:
    """One image file -> uint8 (H, W) when grayscale, (H, W, 3) when in color."""
    try:
        with Image.open(file) as image:
            image.load()
            return _pixels(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FormatError(
            f"{file}: cannot decode the image ({exc}); delete or replace the file"
        ) from None


def _pixels(image: Image.Image) -> np.ndarray:
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
    if mode.startswith("I"):  # 16-bit PNGs: 0-65535 -> 0-255
        values = np.asarray(image).astype(np.float64)
        scale = 257.0 if values.max() > 255 else 1.0
        return np.rint(np.clip(values / scale, 0, 255)).astype(np.uint8)
    if mode == "RGBA":
        return _over_black(np.asarray(image))
    return np.asarray(image.convert("RGB"))


def _over_black(pixels: np.ndarray) -> np.ndarray:
    """Drop the alpha channel (the last) by compositing over black."""
    alpha = pixels[..., -1:].astype(np.uint16)
    color = (pixels[..., :-1].astype(np.uint16) * alpha + 127) // 255
    color = color.astype(np.uint8)
    return color[..., 0] if color.shape[-1] == 1 else color


def _conform(pixels: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Bring one image to (channels, height, width) uint8."""
    if pixels.ndim == 3 and channels == 1:
        pixels = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    if pixels.shape[:2] != (height, width):
        image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    if pixels.ndim == 2:
        return pixels[None] if channels == 1 else np.repeat(pixels[None], 3, axis=0)
    return pixels.transpose(2, 0, 1)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
