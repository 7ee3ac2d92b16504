"""Wall time to 98.0% MNIST test accuracy: mlplab's tutorial preset vs the tutorial's pipeline.

Both contenders train the same recipe (784-250-100-10 ReLU, Adam 1e-3 with the preset's
cosine decay over 10 epochs, batch 64, rotation ±5° + 2-pixel shift, 90/10 split) in the
same process, on the same machine, with the same torch thread count, and evaluate the
test split after every epoch; the clock of each stops at the end of the first epoch whose
test accuracy reaches the target. The baseline (``tutorial_pipeline.py``) is the classic
per-sample pipeline: a DataLoader over a Dataset applying PIL rotation/crop, ToTensor and
Normalize to one image at a time. mlplab keeps the split as uint8 tensors and augments
whole chunks with one gather.

Reported: per seed, the seconds and epochs of each contender; then medians and the ratio
of medians (baseline / mlplab). Run alone: on 2 cores another busy process distorts it.

    python benchmarks/time_to_accuracy.py --threads 2 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from mlplab import Config, Epoch, load_dataset, train
from mlplab.training.device import select_device
from tutorial_pipeline import train_to_accuracy


def mlplab_to_accuracy(
    dataset: Any, seed: int, target: float, max_epochs: int, runs_dir: str
) -> dict[str, Any]:
    """Train the preset; after each epoch score the test split with the run's own scorer
    (its normalization, on its device); stop at the target."""
    config = Config.preset("tutorial").override(
        {
            "train.seed": seed,
            "train.epochs": max_epochs,
            "train.threads": torch.get_num_threads(),
            "run.dir": runs_dir,
        }
    )
    state: dict[str, Any] = {"reached": False, "history": []}

    def score_test(epoch: Epoch) -> bool:
        test = epoch.score("test")
        state["seconds"] = time.perf_counter() - start
        state["epochs"] = epoch.record["epoch"]
        state["test_accuracy"] = test.accuracy
        state["history"].append(
            {
                "epoch": epoch.record["epoch"],
                "test_accuracy": test.accuracy,
                "elapsed": state["seconds"],
            }
        )
        state["reached"] = test.accuracy >= target
        return state["reached"]

    start = time.perf_counter()
    train(config, dataset=dataset, on_epoch=score_test)
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MLPLAB_DATA_DIR"),
        help="folder with mnist/ (default: $MLPLAB_DATA_DIR, else the usual places)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads for both contenders (default 2: both cores)",
    )
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = load_dataset("mnist", args.data_dir)  # read once, outside both clocks
    # Warm-up: the first optimizer constructed in a process imports torch._dynamo (~1 s);
    # pay it here so that neither contender is charged for it.
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())
    machine = f"{describe()}, torch {torch.__version__}, {args.threads} thread(s)"
    print(
        f"machine: {machine}\ntarget: {args.target:.1%} test accuracy, at most {args.max_epochs} epochs, seeds {args.seeds}"
    )
    print(
        f"{'seed':>4} {'mlplab s':>9} {'epochs':>6} {'baseline s':>11} {'epochs':>6} {'ratio':>6}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in args.seeds:
            ours = mlplab_to_accuracy(dataset, seed, args.target, args.max_epochs, runs_dir)
            theirs = train_to_accuracy(
                dataset.train.images[:, 0], dataset.train.labels, dataset.test.images[:, 0], dataset.test.labels,
                seed=seed, target=args.target, max_epochs=args.max_epochs, cosine=True,
                device=select_device("auto"),  # the device mlplab's run picks
            )  # fmt: skip
            rows.append({"seed": seed, "mlplab": ours, "baseline": theirs})
            flag = lambda r: "" if r["reached"] else "*"  # noqa: E731
            print(
                f"{seed:>4} {ours['seconds']:>8.1f}{flag(ours):1} {ours['epochs']:>6} "
                f"{theirs['seconds']:>10.1f}{flag(theirs):1} {theirs['epochs']:>6} {theirs['seconds'] / ours['seconds']:>6.1f}",
                flush=True,
            )
    ours_median = statistics.median(r["mlplab"]["seconds"] for r in rows)
    theirs_median = statistics.median(r["baseline"]["seconds"] for r in rows)
    print(
        f"median {ours_median:>8.1f}  {'':>6} {theirs_median:>10.1f}  {'':>6} {theirs_median / ours_median:>6.1f}"
    )
    print(
        f"mlplab reaches {args.target:.1%} {theirs_median / ours_median:.1f}x faster (ratio of medians over {len(rows)} seeds)"
    )
    # Per epoch (setup and the per-epoch test pass included): free of how many epochs a seed needs.
    ours_epoch = statistics.median(r["mlplab"]["seconds"] / r["mlplab"]["epochs"] for r in rows)
    theirs_epoch = statistics.median(
        r["baseline"]["seconds"] / r["baseline"]["epochs"] for r in rows
    )
    print(
        f"seconds per epoch (median): mlplab {ours_epoch:.2f}, baseline {theirs_epoch:.2f}, ratio {theirs_epoch / ours_epoch:.1f}"
    )
    if any(not (r["mlplab"]["reached"] and r["baseline"]["reached"]) for r in rows):
        print("* did not reach the target within the epoch limit: the time shown is the whole run")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "target": args.target, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
