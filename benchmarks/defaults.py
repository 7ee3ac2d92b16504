"""Seconds per epoch with no settings at all: `mlplab train --preset tutorial` against the
tutorial's pipeline at its own defaults, in one run.

Each contender runs as a fresh process with the environment this script was started with
less every variable that tunes threads (``MLPLAB_THREADS``, ``OMP_*``, ``GOMP_*``,
``KMP_*``, ``MKL_NUM_THREADS``): mlplab with no option but the preset, the epoch count and
where to write; the tutorial pipeline (``tutorial_pipeline.py``) with torch's own thread
count. Their order alternates across repeats. An epoch is what each one does per epoch by
default: a pass over the 54,000 training images with the preset's augmentation and a
validation pass (mlplab also writes its checkpoint). Reported: the median epoch of every
repeat, the median over the repeats, the ratio pipeline / mlplab, and the thread count
mlplab chose. Run it on an otherwise idle machine.

    python benchmarks/defaults.py --repeats 3 --json defaults.json
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
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load

HERE = Path(__file__).resolve().parent
TUNING = ("MLPLAB_THREADS", "MKL_NUM_THREADS")
TUNING_PREFIXES = ("OMP_", "GOMP_", "KMP_")


def clean_env() -> dict[str, str]:
    """This process's environment without anything that sets threads or OpenMP's behaviour."""
    return {
        k: v for k, v in os.environ.items() if k not in TUNING and not k.startswith(TUNING_PREFIXES)
    }


def run_mlplab(epochs: int, data_dir: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "mlplab", "train", "--preset", "tutorial",
                   "--epochs", str(epochs), "--runs-dir", runs, "--quiet"]  # fmt: skip
        env = clean_env() | ({"MLPLAB_DATA_DIR": data_dir} if data_dir else {})
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        run = Path(out.stdout.strip().splitlines()[-1])
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        summary = json.loads((run / "summary.json").read_text())
    seconds = [h["epoch_seconds"] for h in history]
    return {"epoch_seconds": seconds, "median": statistics.median(seconds),
            "threads": summary["threads"]}  # fmt: skip


def run_pipeline(epochs: int, data_dir: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "pipeline.json"
        command = [sys.executable, str(HERE / "tutorial_pipeline.py"), "--data-dir", data_dir,
                   "--epochs", str(epochs), "--target", "1.01", "--threads", "0",
                   "--json", str(result)]  # fmt: skip
        subprocess.run(command, env=clean_env(), check=True, capture_output=True, text=True)
        record = json.loads(result.read_text())
    seconds = [h["epoch_seconds"] for h in record["history"]]
    return {"epoch_seconds": seconds, "median": statistics.median(seconds),
            "threads": record["threads"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"),
                        help="folder with mnist/ (default: $MLPLAB_DATA_DIR)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlplab-epochs", type=int, default=3)
    parser.add_argument("--pipeline-epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("needs the folder with MNIST: --data-dir or MLPLAB_DATA_DIR")

    print(f"machine: {describe()}; torch {torch.__version__}; default torch threads "
          f"{torch.get_num_threads()}", flush=True)  # fmt: skip
    rows: dict[str, list[dict[str, Any]]] = {"mlplab": [], "pipeline": []}
    for repeat in range(args.repeats):
        order = ["mlplab", "pipeline"] if repeat % 2 == 0 else ["pipeline", "mlplab"]
        for who in order:
            if who == "mlplab":
                row = run_mlplab(args.mlplab_epochs, args.data_dir)
            else:
                row = run_pipeline(args.pipeline_epochs, args.data_dir)
            rows[who].append(row)
            epochs = " ".join(f"{s:.2f}" for s in row["epoch_seconds"])
            print(f"repeat {repeat + 1}  {who:8s}  {row['threads']} thread(s)  "
                  f"s/epoch {epochs}  median {row['median']:.2f}", flush=True)  # fmt: skip
    medians = {who: statistics.median(r["median"] for r in runs) for who, runs in rows.items()}
    spread = {who: (min(r["median"] for r in runs), max(r["median"] for r in runs))
              for who, runs in rows.items()}  # fmt: skip
    ratio = medians["pipeline"] / medians["mlplab"]
    for who in rows:
        print(f"{who:8s} median s/epoch {medians[who]:.2f} "
              f"(repeats {spread[who][0]:.2f}-{spread[who][1]:.2f})")  # fmt: skip
    print(f"pipeline / mlplab per epoch: {ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "torch": torch.__version__,
                                         "load_1min_end": load(),
                                         "runs": rows, "medians": medians, "ratio": ratio},
                                        indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
