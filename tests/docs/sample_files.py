"""Small files the docs' examples name as the reader's own (``houses.csv``, ``test01.csv``...).

A block's ``<!-- doc: setup="python -m sample_files NAME ..." -->`` writes them into the
page's folder before the block runs (tests/docs/test_examples.py puts this folder on
PYTHONPATH); each is the smallest file that shows what the page says about it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(0)


def _digits_csv(path: Path, rows: int, scale: int) -> None:
    """A label column and 784 pixel columns, no header; every class 0-9 present."""
    labels = np.arange(rows) % 10
    pixels = np.zeros((rows, 784), dtype=np.int64)
    pixels[:, 300:400] = scale  # a bar of ink
    np.savetxt(path, np.c_[labels, pixels], fmt="%d", delimiter=",")


def _mnist_csv(path: Path, rows: int) -> None:
    """Kaggle's MNIST CSV layout: a header, label then 784 pixels 0-255."""
    labels = np.arange(rows) % 10
    pixels = RNG.integers(0, 256, size=(rows, 784))
    header = ",".join(["label", *(f"pixel{i}" for i in range(784))])
    np.savetxt(path, np.c_[labels, pixels], fmt="%d", delimiter=",", header=header, comments="")


def _houses(path: Path) -> None:
    """400 houses: three features and a price that is almost linear in them."""
    x = RNG.normal(size=(400, 3))
    price = x @ np.array([3.0, -2.0, 1.0]) + 0.1 * RNG.normal(size=400)
    header = "rooms,area,age,price"
    np.savetxt(path, np.c_[x, price], fmt="%.5f", delimiter=",", header=header, comments="")


def _photo_of_digit(digit: int) -> Callable[[Path], None]:
    """A photo-like digit, dark ink on light paper (tests/shipping.py's drawing)."""

    def write(path: Path) -> None:
        from shipping import digit_font, drawn_digit

        path.parent.mkdir(parents=True, exist_ok=True)
        drawn_digit(digit, digit_font(200)[0]).save(path)

    return write


def _bomb(path: Path) -> None:
    """A PNG of a few KB declaring 10000x10000 pixels (one bit each, all black)."""
    from PIL import Image

    Image.new("1", (10_000, 10_000)).save(path, optimize=True)


FILES: dict[str, Callable[[Path], None]] = {
    "train255.csv": lambda p: _digits_csv(p, 50, 255),  # 0-255
    "test01.csv": lambda p: _digits_csv(p, 50, 1),  # nothing but 0s and 1s
    "mnist_train_small.csv": lambda p: _mnist_csv(p, 200),
    "mnist_test.csv": lambda p: _mnist_csv(p, 50),
    "houses.csv": _houses,
    "blank.json": lambda p: p.write_text(json.dumps({"pixels": [[0] * 28] * 28})),
    "serve.log": lambda p: p.write_text("INFO:     Started server process [17871]\n"),
    "big.bin": lambda p: p.write_bytes(b"\0" * 5_000_000),  # 5 MB, over serve's 4 MiB
    "notes.txt": lambda p: p.write_text("hi\n"),  # 3 bytes
    "thesis.pdf": lambda p: p.write_text("my thesis ...\n"),  # 14 bytes of the reader's
    "bomb.png": _bomb,
    "photos/three.jpg": _photo_of_digit(3),
    "notes.png": lambda p: p.write_text("not a picture\n"),  # a text file named .png
}


def main(names: list[str]) -> int:
    for name in names:
        if name not in FILES:
            print(f"sample_files: no sample {name!r}; samples: {', '.join(FILES)}", file=sys.stderr)
            return 2
        FILES[name](Path(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
