"""Rejection of unfamiliar inputs, measured: the tutorial preset on MNIST, seeds 0-2.

For each seed: train (the loop fits the rejection: train split, validation split, accept
0.98), then the fraction of MNIST test digits accepted and the accuracy on them,
Fashion-MNIST test images rejected, uniform noise and blank frames rejected, each kind of
synthetic negative rejected, the photographed-looking digits of the predict tests accepted
and read right, and the photographed non-digits of the predict tests rejected (each one by
name). The same with the other way of combining the detectors (max or fisher), refitted, for
the record. Every kind of synthetic negative is measured on seed 1 (the fit chooses on seed
0's), the photographed kinds through predict's pixel steps as the fit draws them.

    MLPLAB_DATA_DIR=/work/shared/datasets MLPLAB_THREADS=1 python benchmarks/rejection.py [OUT.json]

writes the rows and their means (with min and max over the seeds) to OUT.json (default
benchmarks/results/rejection-tutorial.json).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "inference")]

from shipping import digit_font, drawn_digit  # noqa: E402
from test_predictor import _photographed_non_digits  # noqa: E402

from mlplab import Config, load_dataset, train  # noqa: E402
from mlplab.data.splits import configured_splits  # noqa: E402
from mlplab.inference.images import preprocess  # noqa: E402
from mlplab.trust import rejection  # noqa: E402
from mlplab.trust.negatives import KINDS, PHOTO_KINDS, negatives  # noqa: E402
from mlplab.trust.rejection import Rejector  # noqa: E402

# the photographed non-digits of tests/inference/test_predictor.py, in their order
PHOTO_NAMES = [
    *"AMNVYKWHRX",
    "blank paper",
    "shaded paper",
    "smiley",
    "square",
    "scribble",
    "checkerboard",
]
SYNTHETIC = 500  # images of each synthetic kind measured


def measure(r: Rejector, model, mnist, fashion, photos, digits) -> dict[str, float]:
    figures = r.figures(model, mnist.test)
    row = {
        "mnist_accepted": 1 - figures["rejected_fraction"],
        "accepted_accuracy": figures["accepted_accuracy"],
        "fashion_rejected": float(r.score(model, fashion.test.images).rejected.float().mean()),
    }
    for kind in KINDS + PHOTO_KINDS:
        images = negatives(kind, SYNTHETIC, (1, 28, 28), seed=1)
        row[kind] = float(r.score(model, images).rejected.float().mean())
    v = r.score(model, digits)
    scale, offset = r.normalization.affine()
    read = model(digits.float() * scale + offset).argmax(1) == torch.arange(10)
    row["font_digits_accepted_and_right"] = float(((~v.rejected) & read).float().mean())
    rejected = r.score(model, photos).rejected
    row["photo_non_digits_rejected"] = float(rejected.float().mean())
    row["photo_non_digits_rejected_names"] = [
        n for n, x in zip(PHOTO_NAMES, rejected, strict=True) if x
    ]
    row["font_digits_missed"] = [d for d in range(10) if bool(v.rejected[d]) or not bool(read[d])]
    return row


def main() -> None:
    data_dir = os.environ["MLPLAB_DATA_DIR"]
    torch.set_num_threads(1)
    mnist = load_dataset("mnist", data_dir, download=False)
    fashion = load_dataset("fashion-mnist", data_dir, download=False)
    font, _ = digit_font(160)
    shape = (1, 28, 28)
    digits = torch.from_numpy(
        np.stack(
            [
                preprocess(drawn_digit(d, font, at=(30 + 17 * d, 10 + 5 * d)), shape)
                for d in range(10)
            ]
        )
    )
    photos = torch.from_numpy(np.stack([preprocess(i, shape) for i in _photographed_non_digits()]))
    rows = []
    for seed in (0, 1, 2):
        config = Config.preset("tutorial").override(
            {"train.seed": seed, "data.data_dir": data_dir, "run.dir": "/tmp/rejection-bench"}
        )
        result = train(config, dataset=mnist)
        model = result.model.eval()
        kept = Rejector.load(result.run_dir)
        row = {
            "seed": seed,
            "test_accuracy": result.summary["test_accuracy"],
            "combine": kept.combine,
        }
        row |= measure(kept, model, mnist, fashion, photos, digits)
        row["validation"] = kept.validation
        train_split, val, _ = configured_splits(mnist, config.data)
        other = "fisher" if kept.combine == "max" else "max"
        saved = rejection.COMBINATIONS
        rejection.COMBINATIONS = (other,)
        refit = Rejector.fit(model, kept.normalization, train_split, val, 0.98)
        rejection.COMBINATIONS = saved
        row["other"] = {"combine": other} | measure(refit, model, mnist, fashion, photos, digits)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for key in rows[0]:
        if isinstance(rows[0][key], float):
            values = [r[key] for r in rows]
            summary[key] = {"mean": statistics.mean(values), "min": min(values), "max": max(values)}
            print(
                f"{key:32} mean {summary[key]['mean']:.4f}  min {min(values):.4f}  max {max(values):.4f}"
            )
    other = {
        key: statistics.mean(r["other"][key] for r in rows)
        for key in rows[0]["other"]
        if isinstance(rows[0]["other"][key], float)
    }
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else ROOT / "benchmarks/results/rejection-tutorial.json"
    )
    record = {
        "command": "MLPLAB_DATA_DIR=... MLPLAB_THREADS=1 python benchmarks/rejection.py",
        "machine": "AMD EPYC 2-core VM, 1 thread",
        "torch": torch.__version__,
        "preset": "tutorial",
        "seeds": [0, 1, 2],
        "accept": 0.98,
        "rows": rows,
        "mean": summary,
        "other_mean": other,
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
