"""The `fast` preset's time to 98%: `mlplab train --preset fast --seed S` for each seed, with
no other setting (a fresh process each, the environment stripped of thread settings as in
`defaults.py`), and what its `summary.json` says: `train_seconds` (every epoch's training,
validation pass and checkpoint; not the data loading) and the test accuracy.

    python benchmarks/fast.py --seeds 0 1 2 --json fast.json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    print(f"machine: {describe()}; 1-minute load {load()}", flush=True)
    load_start, rows = load(), []
    env = clean_env() | ({"MLPLAB_DATA_DIR": args.data_dir} if args.data_dir else {})
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as runs:
            command = [sys.executable, "-m", "mlplab", "train", "--preset", args.preset,
                       "--seed", str(seed), "--runs-dir", runs, "--quiet"]  # fmt: skip
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            run = Path(out.stdout.strip().splitlines()[-1])
            summary = json.loads((run / "summary.json").read_text())
            config = yaml.safe_load((run / "config.yaml").read_text())
            metrics = (run / "metrics.jsonl").read_text().splitlines()
            epochs = [json.loads(line)["epoch_seconds"] for line in metrics]
        row = {"seed": seed, "train_seconds": summary["train_seconds"],
               "test_accuracy": summary["test_accuracy"], "threads": summary["threads"],
               "precision": config["train"]["precision"],
               "batch_size": config["train"]["batch_size"], "epoch_seconds": epochs}  # fmt: skip
        rows.append(row)
        print(f"seed {seed}  train_seconds {row['train_seconds']:.2f}  test accuracy "
              f"{row['test_accuracy']:.2%}  ({row['threads']} thread(s); epochs "
              f"{' '.join(f'{s:.2f}' for s in epochs)} s)", flush=True)  # fmt: skip
    median = statistics.median(r["train_seconds"] for r in rows)
    reached = sum(r["test_accuracy"] >= args.target for r in rows)
    print(f"median train_seconds {median:.2f}; {reached} of {len(rows)} seeds at or above "
          f"{args.target:.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "preset": args.preset,
                                         "load_1min": {"start": load_start, "end": load()},
                                         "rows": rows, "median": median}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
