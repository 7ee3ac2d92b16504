"""The `fast` preset's time to 98%: `mlplab train --preset fast --seed S` for each seed, with
no other setting (a fresh process each, the environment stripped of thread settings as in
`defaults.py`), and what its `summary.json` says: `train_seconds` (every epoch's training,
validation pass and checkpoint; not the data loading) and the test accuracy.

With `--baseline NAME KEY=VALUE...` each seed also trains the preset with those `--set`
overrides (an earlier recipe, say), alternating with the preset run by run, and the ratio
of the two `train_seconds` is reported: the figure that holds when the VM's speed drifts
from hour to hour, as only a ratio measured in one run does.

    python benchmarks/fast.py --seeds 0 1 2 --json fast.json
    python benchmarks/fast.py --repeats 2 --baseline before model.deskew=false \\
        model.center=false model.crop=2 model.hidden=[384] train.batch_size=256 \\
        train.lr=6e-3 train.epochs=3 --json fast-vs-before.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defaults import clean_env
from machine import describe, load


def train(preset: str, seed: int, sets: list[str], env: dict[str, str]) -> dict:
    """One `mlplab train --preset P --seed S [--set K=V ...]` in a fresh process."""
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "mlplab", "train", "--preset", preset,
                   "--seed", str(seed), "--runs-dir", runs, "--quiet"]  # fmt: skip
        for item in sets:
            command += ["--set", item]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        run = Path(out.stdout.strip().splitlines()[-1])
        summary = json.loads((run / "summary.json").read_text())
        config = yaml.safe_load((run / "config.yaml").read_text())
        metrics = (run / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(line)["epoch_seconds"] for line in metrics]
    return {"seed": seed, "train_seconds": summary["train_seconds"],
            "test_accuracy": summary["test_accuracy"], "threads": summary["threads"],
            "precision": config["train"]["precision"],
            "batch_size": config["train"]["batch_size"], "epoch_seconds": epochs}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="passes over the seeds")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument(
        "--baseline", nargs="+", metavar=("NAME", "KEY=VALUE"), default=None,
        help="a name and the --set overrides of a recipe to alternate with, run by run",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    print(f"machine: {describe()}; 1-minute load {load()}", flush=True)
    load_start = load()
    env = clean_env() | ({"MLPLAB_DATA_DIR": args.data_dir} if args.data_dir else {})
    recipes = [(args.preset, [])]
    if args.baseline:
        recipes.insert(0, (args.baseline[0], args.baseline[1:]))
    rows: dict[str, list[dict]] = {name: [] for name, _ in recipes}
    for _ in range(args.repeats):
        for seed in args.seeds:
            for name, sets in recipes:
                row = train(args.preset, seed, sets, env)
                rows[name].append(row)
                print(f"{name:<10} seed {seed}  train_seconds {row['train_seconds']:.2f}  test "
                      f"accuracy {row['test_accuracy']:.2%}  ({row['threads']} thread(s); "
                      f"epochs {' '.join(f'{s:.2f}' for s in row['epoch_seconds'])} s)",
                      flush=True)  # fmt: skip
    medians = {
        name: statistics.median(r["train_seconds"] for r in runs) for name, runs in rows.items()
    }
    for name, runs in rows.items():
        reached = sum(r["test_accuracy"] >= args.target for r in runs)
        print(f"{name}: median train_seconds {medians[name]:.2f}; {reached} of {len(runs)} runs "
              f"at or above {args.target:.1%}")  # fmt: skip
    record = {"machine": describe(), "preset": args.preset,
              "load_1min": {"start": load_start, "end": load()},
              "rows": rows[args.preset], "median": medians[args.preset]}  # fmt: skip
    if args.baseline:
        base = args.baseline[0]
        ratios = [b["train_seconds"] / p["train_seconds"]
                  for b, p in zip(rows[base], rows[args.preset], strict=True)]  # fmt: skip
        print(f"{base} / {args.preset}: median ratio {statistics.median(ratios):.2f} "
              f"({' '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
        record["baseline"] = {"name": base, "sets": args.baseline[1:], "rows": rows[base],
                              "median": medians[base], "ratios": ratios,
                              "median_ratio": statistics.median(ratios)}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
