"""Test accuracy and seconds per epoch of every preset, over several seeds, on MNIST.

Also trains ``tutorial`` with the tutorial's own constant learning rate
(``--scheduler none``), the evidence for the preset's one change (cosine decay).

    python benchmarks/presets.py --seeds 0 1 2 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile

import torch

from mlplab import PRESETS, Config, load_dataset, train

VARIANTS = {name: {} for name in PRESETS} | {"tutorial, constant lr": {"train.scheduler": "none"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    dataset = load_dataset("mnist", args.data_dir)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s); seeds {args.seeds}"
    )
    print(
        "| preset | epochs | test accuracy per seed | mean ± std | s/epoch (median) |\n| --- | --- | --- | --- | --- |"
    )
    with tempfile.TemporaryDirectory() as runs:
        for name, extra in VARIANTS.items():
            base = Config.preset(name.split(",")[0]).override(extra)
            results = [
                train(base.override({"train.seed": s, "train.threads": args.threads, "run.dir": runs}), dataset=dataset).summary
                for s in args.seeds
            ]  # fmt: skip
            acc = [100 * r["test_accuracy"] for r in results]
            spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
            per_epoch = statistics.median(r["seconds_per_epoch"] for r in results)
            print(
                f"| {name} | {base.train.epochs} | {' / '.join(f'{a:.2f}%' for a in acc)} | "
                f"{statistics.mean(acc):.2f}% ± {spread:.2f} | {per_epoch:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
