"""Calibration of presets, over several seeds: the temperature fitted on each run's validation
split, and the test split's ECE, NLL and Brier score before and after it.

Each run trains as ``mlplab train --preset NAME --seed S`` would (its own validation split
chooses T when training ends); the test figures are then computed once from the kept
weights' outputs, with the validation split's ECE beside them (to tell a shift between
the splits from a temperature that does not suit the model). The predicted class must not
change: the script counts the test images whose calibrated argmax differs (it must be 0).

    MLPLAB_DATA_DIR=/work/shared/datasets python benchmarks/calibration.py --presets tutorial usps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from machine import describe
from mlplab import Config, load_dataset, train
from mlplab.data.splits import configured_splits
from mlplab.model import heads
from mlplab.run.directory import Run
from mlplab.trust.calibration import outputs_on, score


def measure(
    name: str, seed: int, data_dir: str | None, runs: str, dataset: str | None = None
) -> dict[str, float]:
    """One run of preset ``name`` with ``seed`` (on ``dataset`` instead of the preset's):
    its temperature and test calibration."""
    changes = {"train.seed": seed, "run.dir": runs, "run.name": name}
    config = Config.preset(name).override(changes | ({"data.dataset": dataset} if dataset else {}))
    data = load_dataset(config.data.dataset, data_dir)
    started = time.perf_counter()
    result = train(config, dataset=data)
    seconds = time.perf_counter() - started
    run = Run.open(result.run_dir)
    model, normalization, _ = run.load_model()
    _, val, test = configured_splits(data, config.data)
    t = run.temperature()
    val_z, val_labels = outputs_on(model, val, *normalization.affine())
    val_z = heads.to_logits(model.head, val_z)
    outputs, labels = outputs_on(model, test, *normalization.affine())
    z = heads.to_logits(model.head, outputs)
    before, after = score(z, labels), score(z, labels, t)
    moved = int((heads.probabilities(model.head, outputs, t).argmax(1) != outputs.argmax(1)).sum())
    return {
        "seed": seed,
        "temperature": t,
        "accuracy": result.summary["test_accuracy"],
        "ece_before": before.ece,
        "ece_after": after.ece,
        "nll_before": before.nll,
        "nll_after": after.nll,
        "brier_before": before.brier,
        "brier_after": after.brier,
        "argmax_changed": moved,
        "val_ece_before": score(val_z, val_labels).ece,
        "val_ece_after": score(val_z, val_labels, t).ece,
        "seconds": seconds,
    }


def _cell(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    mean = statistics.mean(values) * scale
    spread = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["tutorial"])
    parser.add_argument("--dataset", default=None, help="train on this instead of the preset's")
    parser.add_argument("--json", default=None, help="write every run's figures here")
    args = parser.parse_args()
    print(f"machine: {describe()}, torch {torch.__version__}; seeds {args.seeds}")
    print(
        "| preset | T per seed | test ECE before -> after (%) | NLL before -> after | "
        "Brier before -> after | accuracy (%) | argmax changed | val ECE before -> after (%) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    everything = {}
    with tempfile.TemporaryDirectory() as runs:
        for name in args.presets:
            rows = [measure(name, seed, args.data_dir, runs, args.dataset) for seed in args.seeds]
            name = f"{name} on {args.dataset}" if args.dataset else name
            everything[name] = rows
            col = {key: [r[key] for r in rows] for key in rows[0]}
            print(
                f"| {name} | {' / '.join(f'{t:.3f}' for t in col['temperature'])} | "
                f"{_cell(col['ece_before'], 100)} -> {_cell(col['ece_after'], 100)} | "
                f"{_cell(col['nll_before'], digits=4)} -> {_cell(col['nll_after'], digits=4)} | "
                f"{_cell(col['brier_before'], digits=4)} -> {_cell(col['brier_after'], digits=4)} | "
                f"{_cell(col['accuracy'], 100)} | {sum(col['argmax_changed'])} | "
                f"{_cell(col['val_ece_before'], 100)} -> {_cell(col['val_ece_after'], 100)} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(everything, file, indent=2)


if __name__ == "__main__":
    main()
