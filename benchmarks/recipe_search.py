"""Candidate recipes of a preset scored on the validation split only: each candidate (the
preset plus overrides) trains on seeds 0, 1, 2 in this one process, candidates alternating
within a seed, and what is kept is each run's last-epoch validation accuracy and its
``train_seconds``. The test split is never read back: the runs' directories are deleted
unread, and nothing about the test split is printed or written.

The rule that picks among them is written down before the deciding runs (docs/presets.md);
this script only measures.

    python benchmarks/recipe_search.py --preset fast --threads 1 \\
        --candidate current '{}' --candidate wide '{"model.hidden": [1024]}' --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load


def run_candidate(preset: str, overrides: dict[str, Any], seed: int, threads: int) -> dict:
    import mlplab

    with tempfile.TemporaryDirectory() as runs:
        config = mlplab.Config.preset(preset).override(
            {**overrides, "train.seed": seed, "train.threads": threads, "run.dir": runs}
        )
        result = mlplab.train(config, progress=False)
        history = result.history
    return {
        "seed": seed,
        "last_val_accuracy": history[-1]["val_accuracy"],
        "best_val_accuracy": max(h["val_accuracy"] for h in history),
        "train_seconds": result.summary["train_seconds"],
        "threads": result.summary["threads"],
        "precision": result.summary.get("precision"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="0: the automatic choice")
    parser.add_argument(
        "--candidate", nargs=2, action="append", metavar=("NAME", "JSON"), required=True,
        help="a name and the overrides of the preset, as a JSON object",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("MLPLAB_PROGRESS", "0")

    print(f"machine: {describe()}; 1-minute load {load()}", flush=True)
    candidates = {name: json.loads(text) for name, text in args.candidate}
    runs: dict[str, list[dict]] = {name: [] for name in candidates}
    for seed in args.seeds:
        for name, overrides in candidates.items():
            row = run_candidate(args.preset, overrides, seed, args.threads)
            runs[name].append(row)
            print(f"{name:<28} seed {seed}  val {row['last_val_accuracy']:.2%}  "
                  f"train_seconds {row['train_seconds']:.2f}", flush=True)  # fmt: skip
    rows = []
    for name, overrides in candidates.items():
        vals = [r["last_val_accuracy"] for r in runs[name]]
        seconds = [r["train_seconds"] for r in runs[name]]
        rows.append({"name": name, "overrides": overrides, "runs": runs[name],
                     "mean_val": statistics.fmean(vals), "worst_val": min(vals),
                     "median_train_seconds": statistics.median(seconds)})  # fmt: skip
    print("\n| candidate | validation accuracy by seed | mean | worst | median train_seconds |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        by_seed = " / ".join(f"{r['last_val_accuracy']:.2%}" for r in row["runs"])
        print(f"| {row['name']} | {by_seed} | {row['mean_val']:.2%} | {row['worst_val']:.2%} | "
              f"{row['median_train_seconds']:.2f} |")  # fmt: skip
    if args.json:
        record = {"what": f"{args.preset} candidates on the validation split; test not read",
                  "machine": describe(), "load_end": load(), "threads": args.threads,
                  "candidates": rows}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
