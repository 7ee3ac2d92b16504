"""Rejection of unfamiliar inputs on the other presets: ``usps`` (USPS against
Fashion-MNIST resized to 16x16) and ``fashion-best`` (Fashion-MNIST against MNIST).

For each preset and seed: train (the loop fits the rejection on the training split and its
threshold on the validation split, accept 0.98), then score the preset's own test split
(accepted fraction, accuracy on the accepted), the other dataset's test images (rejected
fraction), uniform noise and blank frames, and every kind of synthetic negative. The test
split and the other sets are only scored; nothing is chosen on them.

``fashion-best`` trains on all 60,000 images and so has no validation split and no
rejection; here it is measured with ``data.val_size`` set (``--val-size``, default 5,000)
and, to fit the time there is, ``--epochs`` (default: the preset's 120). The figures say so.

    MLPLAB_DATA_DIR=/work/shared/datasets MLPLAB_THREADS=1 \
        python benchmarks/rejection_presets.py --presets usps fashion-best --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mlplab import Config, Dataset, load_dataset, train
from mlplab.data.splits import configured_splits
from mlplab.run.directory import Run
from mlplab.trust.negatives import KINDS, negatives
from mlplab.trust.rejection import Rejector

OTHER = {"usps": "fashion-mnist", "fashion-best": "mnist"}
RESULTS = Path(__file__).resolve().parent / "results"


def resized(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, *shape), antialiased bilinear (as a user's
    resize would)."""
    if tuple(images.shape[-2:]) == shape:
        return images
    out = F.interpolate(images.float(), size=shape, mode="bilinear", antialias=True)
    return out.round().clamp(0, 255).to(torch.uint8)


def rejected(r: Rejector, model: torch.nn.Module, images: torch.Tensor) -> float:
    return float(r.score(model, images).rejected.float().mean())


def measure(preset: str, seed: int, args: argparse.Namespace, data_dir: str) -> dict:
    overrides = {"train.seed": seed, "data.data_dir": data_dir, "run.dir": args.run_dir}
    if preset == "fashion-best":
        overrides["data.val_size"] = args.val_size
        if args.epochs:
            overrides["train.epochs"] = args.epochs
            overrides["augment.clean_epochs"] = 0
    config = Config.preset(preset).override(overrides)
    own = load_dataset(config.data.dataset, data_dir, download=False)
    other = load_dataset(OTHER[preset], data_dir, download=False)
    started = time.perf_counter()
    result = train(config, dataset=own)
    seconds = time.perf_counter() - started
    row = {
        "preset": preset,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "overrides": {k: v for k, v in overrides.items() if k not in ("data.data_dir", "run.dir")},
    }
    return row | score(preset, Run.open(result.run_dir), own, other, refit=False)


def score(preset: str, run: Run, own: Dataset, other: Dataset, *, refit: bool) -> dict:
    """The rejection's figures for a trained run; ``refit``: fit the rejection again with
    today's code (the training and validation splits as the run had them) instead of
    loading the one the run kept."""
    model, normalization, _ = run.load_model("cpu")
    model.eval()
    if refit:
        train_split, val, _ = configured_splits(own, run.config().data)
        r = Rejector.fit(model, normalization, train_split, val, run.config().train.accept)
    else:
        r = Rejector.load(run)
    if r is None:
        raise SystemExit(f"{run.path}: the run has no rejection")
    shape = tuple(own.test.images.shape[1:])
    figures = r.figures(model, own.test)
    summary = run.summary()
    row = {
        "run": run.path.name,
        "refit": refit,
        "test_accuracy": summary["test_accuracy"],
        "test_ece": summary.get("test_ece"),
        "accepted": 1 - figures["rejected_fraction"],
        "accepted_accuracy": figures["accepted_accuracy"],
        f"{OTHER[preset]}_rejected": rejected(r, model, resized(other.test.images, shape[1:])),
        "combine": r.combine,
        "pixels": r.pixel_variant,
    }
    for kind in KINDS:
        row[kind] = rejected(r, model, negatives(kind, 500, shape, seed=1))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["usps", "fashion-best"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=0, help="fashion-best only (0: preset's)")
    parser.add_argument("--run-dir", default="/tmp/rejection-presets")
    parser.add_argument(
        "--refit", nargs="+", default=[], metavar="RUN", help="refit and score these runs"
    )
    parser.add_argument("--out", default=None)

    args = parser.parse_args()
    data_dir = os.environ["MLPLAB_DATA_DIR"]
    torch.set_num_threads(int(os.environ.get("MLPLAB_THREADS", "1")))
    rows = []
    for path in args.refit:
        run = Run.open(path)
        name = run.config().data.dataset
        preset = {"usps": "usps", "fashion-mnist": "fashion-best"}[name]
        own = load_dataset(name, data_dir, download=False)
        other = load_dataset(OTHER[preset], data_dir, download=False)
        row = {"preset": preset, "seed": run.config().train.seed}
        rows.append(row | score(preset, run, own, other, refit=True))
        print(json.dumps(rows[-1]), flush=True)
    args.presets = sorted({r["preset"] for r in rows}) if args.refit else args.presets
    for preset in args.presets if not args.refit else []:
        for seed in args.seeds:
            row = measure(preset, seed, args, data_dir)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for preset in args.presets:
        mine = [r for r in rows if r["preset"] == preset]
        for key, value in mine[0].items():
            if isinstance(value, float):
                values = [r[key] for r in mine]
                print(
                    f"{preset:13} {key:24} mean {statistics.mean(values):.4f}  "
                    f"min {min(values):.4f}  max {max(values):.4f}"
                )
    out = Path(args.out or RESULTS / f"rejection-presets-{time.strftime('%Y-%m-%d')}.json")
    record = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__}
    out.write_text(json.dumps(record | {"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
