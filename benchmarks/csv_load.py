"""Seconds to read a 60,000 x 785 MNIST-shaped CSV with ``mlplab.data.csv.read_csv``.

Writes the files into a temporary folder first (not timed): labels 0-9 in the first
column, then 784 pixels of which ~81% are 0 (as in MNIST), as 0-255 integers and, for
the second case, as 0-1 decimals with 4 digits. Each case is read ``--runs`` times; every
run, the median and the spread are printed with the machine and the torch/numpy threads.

    python benchmarks/csv_load.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import describe
from mlplab.data.csv import read_csv


def write_csv(path: Path, rows: int, decimals: bool, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(1, 256, size=(rows, 784))
    pixels[rng.random((rows, 784)) < 0.81] = 0
    table = np.concatenate([rng.integers(0, 10, size=(rows, 1)), pixels], axis=1)
    text = [f"{v / 255:.4f}".encode() if decimals else str(v).encode() for v in range(256)]
    text[0] = b"0"
    labels = [str(v).encode() for v in range(10)]
    with path.open("wb") as out:
        for row in table.tolist():
            out.write(labels[row[0]] + b"," + b",".join([text[v] for v in row[1:]]) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows (images) (default: 60000)")
    parser.add_argument("--runs", type=int, default=3, help="reads per case (default: 3)")
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"machine: {describe()}; OMP_NUM_THREADS={threads}")
    print("numpy's CSV parser is single-threaded: the thread count does not change it")
    with tempfile.TemporaryDirectory() as folder:
        for decimals in (False, True):
            path = Path(folder) / ("decimals.csv" if decimals else "integers.csv")
            write_csv(path, args.rows, decimals)
            size = path.stat().st_size / 1e6
            seconds = []
            for run in range(args.runs):
                start = time.perf_counter()
                raw = read_csv(path)
                seconds.append(time.perf_counter() - start)
                print(f"  {path.name} ({size:.0f} MB) run {run + 1}: {seconds[-1]:.2f} s")
            assert raw.train[0].shape == (args.rows, 1, 28, 28)
            spread = f"{min(seconds):.2f}-{max(seconds):.2f}"
            print(
                f"{'0-1 decimals' if decimals else '0-255 integers'}: {args.rows:,} x 785 in "
                f"median {statistics.median(seconds):.2f} s (range {spread}, {args.runs} runs)"
            )
            path.unlink()


if __name__ == "__main__":
    main()
