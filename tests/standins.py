"""A tiny MNIST stand-in, so ``load_dataset("mnist")`` and ``--preset tutorial`` run in seconds.

scikit-learn's bundled 8x8 digits drawn at MNIST's 28x28 (20x20, centred, as MNIST was made),
written as MNIST's four IDX files, and marked as checked in the cache's memo (as a real copy is
after its first check: they are not the published files). Point ``MLPLAB_DATA_DIR`` at the
data folder and ``MLPLAB_CACHE_DIR`` at the cache, and any mlplab (this checkout's, or one
installed from a wheel) takes them for MNIST.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def write_mnist_stand_in(
    data_dir: Path, cache: Path, train_n: int = 900, test_n: int = 300, seed: int = 0
) -> Path:
    """``data_dir/mnist/`` holding ``train_n`` + ``test_n`` digits; returns that folder."""
    from mlplab.data.sources.idx import MNIST_SOURCE

    folder = data_dir / MNIST_SOURCE.name
    write_idx_stand_in(folder, train_n, test_n, seed)
    trust_stand_ins(data_dir, cache, [MNIST_SOURCE])
    return folder


def write_idx_stand_in(folder: Path, train_n: int, test_n: int, seed: int) -> None:
    """scikit-learn's 8x8 digits drawn at 28x28 (20x20 centred, as MNIST), in MNIST's four
    IDX files under ``folder`` (any IDX dataset's names: Fashion-MNIST's are the same)."""
    from sklearn.datasets import load_digits

    from mlplab.data.idx import write_idx

    digits = load_digits()
    small = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16
    big = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear")
    images = torch.zeros(len(big), 28, 28)
    images[:, 4:24, 4:24] = big[:, 0]
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(labels))
    train, test = order[:train_n], order[train_n : train_n + test_n]
    folder.mkdir(parents=True)
    for prefix, rows in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", pixels[rows])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels[rows])


def trust_stand_ins(data_dir: Path, cache: Path, sources: list) -> None:
    """Mark the stand-ins of ``sources`` (IdxSource) under ``data_dir`` as checked in the
    cache's memo, as a real copy is after its first check: they are not the published files."""
    from mlplab.data.sources.base import VERIFIED

    memo = {}
    for source in sources:
        for filename, digest in source.digests():
            path = data_dir / source.name / f"{filename}.gz"
            stat = path.stat()
            memo[str(path.resolve())] = [stat.st_size, stat.st_mtime_ns, digest]
    cache.mkdir(parents=True, exist_ok=True)
    (cache / VERIFIED).write_text(json.dumps(memo))
