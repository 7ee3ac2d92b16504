"""Helpers for the shipping tests (export, predict, serve): trained runs, a live server, digits.

Runs are trained once per session (cached by folder) so the three test files share them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from mlplab import Config, Dataset, Split, load_dataset, train

REAL_DATA_DIR = os.environ.get("MLPLAB_DATA_DIR")  # read before conftest's `isolated` unsets it
FONTS = Path("/usr/share/fonts/truetype")
# Serif digits are closest to handwriting for an MNIST model: the sans "1" has a flag and a
# base that make it look like a 2 (measured: 10/10 for both serif faces below, 8/10 sans).
SERIF_FONTS = ("dejavu/DejaVuSerif.ttf", "liberation/LiberationSerif-Regular.ttf")


@functools.cache
def tiny_run(
    root: Path,
    head: str = "logits",
    channels: int = 1,
    size: int = 8,
    crop: int = 0,
    deskew: bool = False,
    center: bool = False,
    tta: tuple[str, ...] = (),
) -> Path:
    """A seconds-long run on synthetic 4-class images (see conftest.make_dataset)."""
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        labels = torch.randint(0, 4, (n,), generator=g)
        images = torch.randint(0, 60, (n, channels, size, size), generator=g)
        for c in range(4):  # each class lights up its own band of rows
            images[labels == c, :, c * size // 4 : (c + 1) * size // 4, :] += 150
        return Split(images.clamp(0, 255).to(torch.uint8), labels)

    data = Dataset("synthetic", split(512), split(128), ("c0", "c1", "c2", "c3"), "generated")
    config = Config().override(
        {
            "model.hidden": [16],
            "model.head": head,
            "model.crop": crop,
            "model.deskew": deskew,
            "model.center": center,
            "model.tta": list(tta),
            "train.epochs": 3,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "run.dir": str(root / "runs"),
            "run.name": f"tiny-{head}-{channels}x{size}-crop{crop}{'-deskew' * deskew}{'-center' * center}{'-tta-' + '-'.join(tta) if tta else ''}",
        }
    )
    return train(config, dataset=data).run_dir


@functools.cache
def mnist_run(root: Path) -> Path:
    """The tutorial MLP after 2 epochs on real MNIST (~5 s at 1 thread, ~97% test); or skip."""
    data_dir = REAL_DATA_DIR
    if not data_dir or not (Path(data_dir) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("real MNIST not available: set MLPLAB_DATA_DIR to a folder holding mnist/*.gz")
    config = Config.preset("tutorial").override(
        {"train.epochs": 2, "data.data_dir": data_dir, "run.dir": str(root / "runs")}
    )
    return train(config, dataset=load_dataset("mnist", data_dir, download=False)).run_dir


def mnist_test_split() -> Split:
    return load_dataset("mnist", REAL_DATA_DIR, download=False).test


def digit_font(size: int) -> tuple[ImageFont.FreeTypeFont, bool]:
    """A serif TrueType face if the system has one (True), else Pillow's own (False)."""
    for name in SERIF_FONTS:
        if (FONTS / name).is_file():
            return ImageFont.truetype(str(FONTS / name), size), True
    return ImageFont.load_default(size=size), False


def drawn_digit(
    digit: int,
    font: ImageFont.FreeTypeFont,
    at: tuple[int, int] = (40, 20),
    canvas: tuple[int, int] = (360, 300),
    paper: tuple[int, int, int] = (238, 232, 215),
    ink: tuple[int, int, int] = (25, 25, 60),
) -> Image.Image:
    """A photo-like digit: dark ink on light paper, large and off-center, in RGB."""
    image = Image.new("RGB", canvas, paper)
    ImageDraw.Draw(image).text(at, str(digit), fill=ink, font=font)
    return image


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted center, in pixel-index units."""
    a = np.asarray(a, dtype=np.float64)
    total = a.sum()
    return (
        float((a.sum(1) * np.arange(a.shape[0])).sum() / total),
        float((a.sum(0) * np.arange(a.shape[1])).sum() / total),
    )


@contextlib.contextmanager
def live_server(app: object, timeout: float = 20.0) -> Iterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1 (a free port) in a thread; yield its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
