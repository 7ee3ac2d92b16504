"""The written-out training step (mlplab.training.direct) against autograd's, in one process:
for each preset, one session, its training split's first-epoch batches (no augmentation),
both steps alternating pass by pass over the same batches, at the thread count given.
Reported: the median microseconds per step of each over the passes, and their ratio;
with --profile also torch.profiler's table of one more pass of the written-out step
(self time per operator and input shape).

    python benchmarks/direct_step.py --presets tutorial fast --threads 2 --passes 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load
from mlplab import Config
from mlplab.data import load_configured
from mlplab.training.device import isolated
from mlplab.training.direct import not_covered
from mlplab.training.machine import resolve_precision
from mlplab.training.session import build_session, training_step


def measure(preset: str, passes: int, profile: bool = False) -> dict[str, float]:
    config = Config.preset(preset).validate()
    data = load_configured(config.data)
    with isolated("cpu") as device:
        config, _ = resolve_precision(config, data, device)  # `auto`: as training would choose
        s = build_session(config, data, device)
        batches = list(s.batches(False))
        if (reason := not_covered(s)) is not None:
            raise SystemExit(f"{preset}: the written-out step does not cover it ({reason})")
        steps = {"autograd": training_step(s, written_out=False), "direct": training_step(s)}
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(passes):
            for name, step in steps.items():
                start = time.perf_counter()
                for x, y in batches:
                    _, out = step(x, y, len(y))
                    (out.argmax(1) == y).sum()  # as the loop counts hits
                times[name].append((time.perf_counter() - start) / len(batches) * 1e6)
        if profile:  # where the written-out step's time goes, operator by operator
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                        record_shapes=True) as prof:  # fmt: skip
                for x, y in batches:
                    steps["direct"](x, y, len(y))
            averages = prof.key_averages(group_by_input_shape=True)
            print(averages.table(sort_by="self_cpu_time_total", row_limit=12,
                                 max_name_column_width=28, max_shapes_column_width=48))  # fmt: skip
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {**{f"{k}_us": v for k, v in medians.items()}, "ratio": medians["autograd"] / medians["direct"],
            "precision": config.train.precision, "passes": times}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tutorial", "fast"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument(
        "--profile", action="store_true", help="also torch.profiler's table of one pass"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not os.environ.get("MLPLAB_DATA_DIR"):
        parser.error("set MLPLAB_DATA_DIR to the folder with mnist/")
    torch.set_num_threads(args.threads)
    print(f"machine: {describe()}; 1-minute load {load()}; {args.threads} thread(s)", flush=True)
    results = {}
    for preset in args.presets:
        r = results[preset] = measure(preset, args.passes, args.profile)
        print(f"{preset:<10} autograd {r['autograd_us']:7.0f} us/step  direct "
              f"{r['direct_us']:7.0f} us/step  {r['ratio']:.2f}x  ({r['precision']})", flush=True)  # fmt: skip
    if args.json:
        record = {"machine": describe(), "torch": torch.__version__, "threads": args.threads,
                  "load_1min_end": load(), "presets": results}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
