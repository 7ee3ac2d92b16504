"""What test-time views (``model.tta``) buy on validation runs, without training anything.

For each run directory (trained with a validation split), the weights of its last epoch
(from ``checkpoint.pt``: the record presets keep the last epoch, so that is what they
would ship) score the run's own validation split on the images alone and with each set
of views; the table gives the images right of the split's and each set's gain. Views do
not change training, so this is the whole effect. The test split is never read.

    python benchmarks/tta_views.py RUN [RUN ...] --views shift,rotate flip
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from mlplab.data.splits import run_splits
from mlplab.model.mlp import MLP
from mlplab.run.directory import Run
from mlplab.run.splits import run_dataset
from mlplab.training.metrics import evaluate_split


def score(run_dir: Path, view_sets: list[list[str]]) -> dict:
    run = Run.open(run_dir)
    config = run.config()
    if not config.data.val_size:
        sys.exit(f"{run_dir}: trained without a validation split (data.val_size=0)")
    trained, normalization, _ = run.load_model()
    state = run.load_checkpoint()
    data = run_dataset(run)
    _, val, _ = run_splits(data, config.data.limit, config.data.val_size, config.data.split_seed)
    scale, offset = normalization.affine()
    right = {}
    for views in [[], *view_sets]:
        model = MLP.from_spec({**trained.spec(), "tta": views})
        model.load_state_dict(state["model"])
        scores = evaluate_split(model, val, scale, offset, batch_size=1000)
        right["+".join(views) or "images alone"] = round(scores.accuracy * scores.samples)
    return {"run": str(run_dir), "epoch": state["epoch"], "samples": len(val), "right": right}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a val split")
    parser.add_argument("--views", nargs="+", default=["shift,rotate"],
                        help="view sets, each a comma-separated model.tta (default: shift,rotate)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    view_sets = [v.split(",") for v in args.views]
    rows = [score(run, view_sets) for run in args.runs]
    names = list(rows[0]["right"])
    print(f"{'run':<40} {'epoch':>5} " + " ".join(f"{n:>16}" for n in names))
    for row in rows:
        base = row["right"]["images alone"]
        cells = [f"{base:>16}"] + [f"{row['right'][n] - base:>+16}" for n in names[1:]]
        print(f"{Path(row['run']).name:<40} {row['epoch']:>5} " + " ".join(cells))
    for name in names[1:]:
        gains = [r["right"][name] - r["right"]["images alone"] for r in rows]
        print(f"{name}: mean gain {statistics.mean(gains):+.1f} images of {rows[0]['samples']}, "
              f">= 0 in {sum(g >= 0 for g in gains)} of {len(gains)} runs")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
