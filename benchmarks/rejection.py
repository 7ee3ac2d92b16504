"""Rejection of unfamiliar inputs, measured: the tutorial preset on MNIST, seeds 0-2.

For each seed: train (the loop fits the rejection: train split, validation split, accept
0.98), then the fraction of MNIST test digits accepted and the accuracy on them,
Fashion-MNIST test images rejected, uniform noise and blank frames rejected, each kind of
synthetic negative rejected, the photographed-looking digits of the predict tests accepted
and read right, and the photographed non-digits of the predict tests rejected. The same with
the other way of combining the detectors (max or fisher), refitted, for the record.

    MLPLAB_DATA_DIR=/work/shared/datasets MLPLAB_THREADS=1 python benchmarks/rejection.py
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
from mlplab.trust.negatives import KINDS, negatives  # noqa: E402
from mlplab.trust.rejection import Rejector  # noqa: E402


def measure(r: Rejector, model, mnist, fashion, photos, digits) -> dict[str, float]:
    figures = r.figures(model, mnist.test)
    row = {
        "mnist_accepted": 1 - figures["rejected_fraction"],
        "accepted_accuracy": figures["accepted_accuracy"],
        "fashion_rejected": float(r.score(model, fashion.test.images).rejected.float().mean()),
    }
    for kind in KINDS:
        row[kind] = float(
            r.score(model, negatives(kind, 500, (1, 28, 28), seed=1)).rejected.float().mean()
        )
    v = r.score(model, digits)
    scale, offset = r.normalization.affine()
    read = model(digits.float() * scale + offset).argmax(1) == torch.arange(10)
    row["font_digits_accepted_and_right"] = float(((~v.rejected) & read).float().mean())
    row["photo_non_digits_rejected"] = float(r.score(model, photos).rejected.float().mean())
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
    for key in rows[0]:
        if isinstance(rows[0][key], float):
            values = [r[key] for r in rows]
            print(
                f"{key:32} mean {statistics.mean(values):.4f}  min {min(values):.4f}  max {max(values):.4f}"
            )


if __name__ == "__main__":
    main()
