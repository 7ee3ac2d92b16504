"""How close mlplab's training comes to this machine's matrix-multiply rate.

1. The limit: the best rate torch's matrix product reaches on square float32 (and bfloat16,
   where the CPU does it natively) matrices of 512-2048, at the thread count used below.
2. The work: FLOPs of one training step of the model (``mlplab.training.threads.step_flops``: forward,
   backward, no input gradient for the first layer), times the steps of an epoch.
3. The achieved rate, per batch size: that work divided by the median ``epoch_seconds`` of
   a real ``mlplab.train`` run, whose epoch also holds the augmentation, the batching, the
   optimizer, the validation pass and the checkpoint (none of which is counted as work),
   with the tutorial preset's rotation and shift and without them;
   beside it a bare loop (forward, backward, fused Adam on one fixed batch, no data at all),
   the most any PyTorch loop over this model can do.

Reported as a fraction of the float32 limit (the issue's first measure), of the run's own
precision's limit, and of the best precision's limit (the highest measured peak: bfloat16
where the CPU does it natively, 6x fp32 on an AMX Xeon), the real ceiling of this machine.
Run on an otherwise idle machine; the 1-minute load average is recorded at the start and end.

    python benchmarks/roofline.py --threads 2 --batches 64 256 1024 --json roofline.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load
from mlplab import Config, load_dataset, train
from mlplab.model.mlp import MLP
from mlplab.training.threads import step_flops


def matmul_rate(dtype: torch.dtype, seconds: float = 0.5) -> float:
    """The best FLOP/s of ``a @ b`` over square sizes 512-2048 (each timed for ~``seconds``)."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        for _ in range(3):
            a @ b
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            a @ b
            runs += 1
        best = max(best, 2 * n**3 * runs / elapsed)
    return best


def bare_rate(hidden: list[int], batch: int, bf16: bool, steps: int = 200) -> float:
    """FLOP/s of forward + backward + fused Adam on one fixed batch: no data, no bookkeeping."""
    model = MLP((1, 28, 28), hidden, 10)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(20):
        step()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append(time.perf_counter() - start)
    return step_flops(784, hidden, 10, batch) * steps / statistics.median(times)


def mlplab_rate(
    dataset: Any,
    hidden: list[int],
    batch: int,
    bf16: bool,
    epochs: int,
    threads: int,
    augment: bool = True,
) -> tuple[float, list[float]]:
    """FLOP/s of an mlplab training run (the tutorial preset, with or without its rotation
    and shift, at this batch size), over the median epoch; and the epochs' seconds."""
    config = Config.preset("tutorial").override(
        {
            **({} if augment else {"augment.rotation": 0.0, "augment.shift": 0}),
            "model.hidden": hidden,
            "train.batch_size": batch,
            "train.epochs": epochs,
            "train.threads": threads,
            "train.precision": "bf16" if bf16 else "fp32",
            "run.dir": tempfile.mkdtemp(prefix="roofline-"),
        }
    )
    result = train(config, dataset=dataset)
    seconds = [r["epoch_seconds"] for r in result.history]
    steps = math.ceil(result.summary["samples"]["train"] / batch)
    return step_flops(784, hidden, 10, batch) * steps / statistics.median(seconds), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--hidden", type=int, nargs="+", default=[250, 100])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per mlplab run")
    parser.add_argument("--no-bf16", action="store_true", help="float32 only")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    bf16_native = (
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    precisions = [False] + ([True] if bf16_native and not args.no_bf16 else [])
    limit = {False: matmul_rate(torch.float32)}
    if True in precisions:
        limit[True] = matmul_rate(torch.bfloat16)
    print(f"machine: {describe()}; torch {torch.__version__}; {args.threads} thread(s)")
    print(f"matmul limit: fp32 {limit[False] / 1e9:.0f} GFLOP/s"
          + (f", bf16 {limit[True] / 1e9:.0f} GFLOP/s" if True in limit else ""))  # fmt: skip
    print(f"model 784-{'-'.join(map(str, args.hidden))}-10: "
          f"{step_flops(784, args.hidden, 10, 1) / 1e6:.2f} MFLOP per sample per step")  # fmt: skip

    best_limit = max(limit.values())
    best_name = "bf16" if limit.get(True, 0.0) > limit[False] else "fp32"
    print(f"best precision's limit: {best_name} {best_limit / 1e9:.0f} GFLOP/s")
    load_start = load()
    dataset = load_dataset("mnist")
    rows = []
    header = (
        "| batch | precision | bare loop GFLOP/s (of fp32 limit) | mlplab GFLOP/s | of fp32 limit "
        "| of own-precision limit | of best limit | s/epoch | without augmentation: GFLOP/s "
        "| of fp32 limit | of best limit | s/epoch |"
    )
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for batch in args.batches:
        for bf16 in precisions:
            bare = bare_rate(args.hidden, batch, bf16)
            achieved, seconds = mlplab_rate(
                dataset, args.hidden, batch, bf16, args.epochs, args.threads
            )
            plain, plain_seconds = mlplab_rate(
                dataset, args.hidden, batch, bf16, args.epochs, args.threads, augment=False
            )
            row = {
                "batch": batch,
                "precision": "bf16" if bf16 else "fp32",
                "bare_gflops": bare / 1e9,
                "mlplab_gflops": achieved / 1e9,
                "of_fp32_limit": achieved / limit[False],
                "of_own_limit": achieved / limit[bf16],
                "of_best_limit": achieved / best_limit,
                "bare_of_fp32_limit": bare / limit[False],
                "epoch_seconds": seconds,
                "no_augmentation_gflops": plain / 1e9,
                "no_augmentation_of_fp32_limit": plain / limit[False],
                "no_augmentation_of_best_limit": plain / best_limit,
                "no_augmentation_epoch_seconds": plain_seconds,
            }
            rows.append(row)
            print(f"| {batch} | {row['precision']} | {bare / 1e9:.0f} ({row['bare_of_fp32_limit']:.0%}) | "
                  f"{achieved / 1e9:.0f} | {row['of_fp32_limit']:.0%} | {row['of_own_limit']:.0%} | "
                  f"{row['of_best_limit']:.0%} | {statistics.median(seconds):.2f} | "
                  f"{plain / 1e9:.0f} | {plain / limit[False]:.0%} | {plain / best_limit:.0%} | "
                  f"{statistics.median(plain_seconds):.2f} |", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "torch": torch.__version__,
                                         "threads": args.threads, "best_precision": best_name,
                                         "load_1min": {"start": load_start, "end": load()},
                                         "limit_gflops": {("bf16" if k else "fp32"): v / 1e9
                                                          for k, v in limit.items()},
                                         "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
