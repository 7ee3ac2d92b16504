"""Test accuracy and seconds per epoch of presets, over several seeds, each on its dataset.

By default the MNIST presets, plus ``tutorial`` with the tutorial's own constant learning
rate (``--scheduler none``), the evidence for the preset's one change (cosine decay).
``--presets usps`` (or any names) picks others; ``linreg`` reports R² instead.

    python benchmarks/presets.py --seeds 0 1 2 --threads 1
    python benchmarks/presets.py --presets usps --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import torch

from machine import describe
from mlplab import PRESETS, Config, load_dataset, train

MNIST_VARIANTS = {
    name: {} for name in PRESETS if "data.dataset" not in PRESETS[name]["overrides"]
} | {"tutorial, constant lr": {"train.scheduler": "none"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--presets", nargs="+", default=None, help="default: the MNIST presets")
    args = parser.parse_args()

    variants = {name: {} for name in args.presets} if args.presets else MNIST_VARIANTS
    datasets: dict[str, object] = {}
    print(
        f"machine: {describe()}, torch {torch.__version__}, {args.threads} thread(s); seeds {args.seeds}"
    )
    print(
        "| preset | epochs | test accuracy per seed | mean ± std | s/epoch (median) |\n| --- | --- | --- | --- | --- |"
    )
    with tempfile.TemporaryDirectory() as runs:
        for name, extra in variants.items():
            base = Config.preset(name.split(",")[0]).override(extra)
            key = base.data.dataset
            if key not in datasets:
                datasets[key] = load_dataset(key, args.data_dir)
            results = [
                train(base.override({"train.seed": s, "train.threads": args.threads, "run.dir": runs}), dataset=datasets[key]).summary
                for s in args.seeds
            ]  # fmt: skip
            metric = "test_r2" if results[0].get("task") == "regression" else "test_accuracy"
            acc = [100 * r[metric] for r in results]
            spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
            per_epoch = statistics.median(r["seconds_per_epoch"] for r in results)
            print(
                f"| {name} | {base.train.epochs} | {' / '.join(f'{a:.2f}%' for a in acc)} | "
                f"{statistics.mean(acc):.2f}% ± {spread:.2f} | {per_epoch:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
