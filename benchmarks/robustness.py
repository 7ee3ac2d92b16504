"""Mean corruption accuracy of trained runs (the MNIST-C corruptions, mlplab robustness).

Takes run directories already trained on one dataset (``mlplab train --preset NAME --seed S
--name NAME-sS``), draws each corrupted copy of the test split once and scores every run on
it (:func:`mlplab.analysis.robustness.robustness_of_runs`), writes each run's
``robustness.json`` and prints, per recipe (the run name without its ``-sN`` seed suffix),
the mean corruption accuracy over the seeds (mean and spread) and the accuracy on the
geometric corruptions augmentation should help with.

    MLPLAB_DATA_DIR=/work/shared/datasets python benchmarks/robustness.py runs/*-s0 \
        --out benchmarks/results/robustness-mnist.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import torch

from machine import describe
from mlplab.analysis.robustness import robustness_of_runs

GEOMETRIC = ("rotate", "shear", "scale", "translate")


def recipe(run: Path) -> str:
    """The recipe of a run folder named ``<stamp>-<recipe>-s<seed>``."""
    name = run.name.split("-", 2)[-1]
    return re.sub(r"-s\d+$", "", name)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="JSON of the figures")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-reject", action="store_true", help="leave the rejection out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = robustness_of_runs(args.runs, reject=not args.no_reject)
    seconds = time.perf_counter() - start
    per_recipe: dict[str, list] = {}
    for run, result in zip(args.runs, results, strict=True):
        per_recipe.setdefault(recipe(run), []).append(result)
    summary = {}
    for name, rs in per_recipe.items():
        summary[name] = {
            "runs": [r.run for r in rs],
            "clean_accuracy": spread([r.clean.accuracy for r in rs]),
            "mean_corruption_accuracy": spread([r.mean_corruption_accuracy for r in rs]),
            "per_corruption": {
                c: spread([r.mean_over_severities(c) for r in rs]) for c in rs[0].corruptions
            },
        }
    record = {
        "machine": describe(),
        "threads": args.threads,
        "seconds": seconds,
        "samples": results[0].samples,
        "dataset": results[0].dataset,
        "recipes": summary,
    }
    print(f"{describe()}, {args.threads} thread(s); {len(args.runs)} runs in {seconds:.0f} s")
    head = f"{'recipe':24s} {'runs':>4s} {'clean':>14s} {'mCA':>14s}"
    print(head + "".join(f" {g:>14s}" for g in GEOMETRIC))
    for name, s in summary.items():
        cells = [s["clean_accuracy"], s["mean_corruption_accuracy"]]
        cells += [s["per_corruption"][g] for g in GEOMETRIC if g in s["per_corruption"]]
        text = " ".join(f"{c['mean']:8.2%} ±{c['sd']:.2%}" for c in cells)
        print(f"{name:24s} {len(s['runs']):4d} {text}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
