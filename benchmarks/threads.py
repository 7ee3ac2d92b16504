"""Seconds per epoch of the tutorial preset under each thread count and OpenMP wait policy,
alone and next to one competing busy process: the evidence for mlplab's defaults.

OpenMP reads its environment once, when torch loads, so each setting runs in a fresh
process (``mlplab train`` itself, as a user runs it). The competitor is a second process
spinning on one core, as a second job on a shared machine would.

    python benchmarks/threads.py --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

SETTINGS = {  # name -> (train.threads, environment); "" leaves a variable unset
    "1 thread": ("1", {}),
    "2 threads, OpenMP's default (unset: spin briefly, then sleep)": ("2", {"OMP_WAIT_POLICY": ""}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": ("2", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "2 threads, OMP_WAIT_POLICY=ACTIVE": ("2", {"OMP_WAIT_POLICY": "ACTIVE"}),
    "2 threads, GOMP_SPINCOUNT=20M": ("2", {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "20000000"}),
    "mlplab default (auto)": ("0", {}),
}
SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def epoch_seconds(threads: str, env: dict[str, str], epochs: int, data_dir: str) -> list[float]:
    with tempfile.TemporaryDirectory() as runs:
        full_env = {**os.environ, "MLPLAB_PROGRESS": "0", **env}
        full_env.pop("OMP_WAIT_POLICY", None) if "OMP_WAIT_POLICY" not in env else None
        for key in [k for k, v in env.items() if v == ""]:
            full_env.pop(key, None)  # "" means: leave the variable unset
        full_env.pop("MLPLAB_THREADS", None)
        cmd = [sys.executable, "-m", "mlplab", "train", "--preset", "tutorial", "--epochs", str(epochs),
               "--threads", threads, "--data-dir", data_dir, "--runs-dir", runs, "-q"]  # fmt: skip
        out = subprocess.run(cmd, env=full_env, capture_output=True, text=True, check=True).stdout
        run = Path(out.strip().splitlines()[-1])
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["epoch_seconds"] for r in history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR", ""))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", nargs="*", default=None, help="settings whose name contains any of these"
    )
    args = parser.parse_args()
    print(f"machine: {describe()}; "
          f"tutorial preset, {args.epochs} epochs per run, median of the epochs after the first, "
          f"{args.repeats} runs")  # fmt: skip
    print("| setting | alone: s/epoch | next to a busy process: s/epoch |\n| --- | --- | --- |")
    for name, (threads, env) in SETTINGS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        cells = []
        for busy in (False, True):
            competitor = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
            try:
                time.sleep(0.5 if busy else 0)
                runs = [
                    epoch_seconds(threads, env, args.epochs, args.data_dir)
                    for _ in range(args.repeats)
                ]
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
            per_run = [statistics.median(r[1:] or r) for r in runs]
            cells.append(
                f"{statistics.median(per_run):.2f} ({min(per_run):.2f}-{max(per_run):.2f})"
            )
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
