"""scikit-learn's own ``MLPClassifier`` vs ``mlplab.sklearn.MLPClassifier`` on MNIST, in one run.

Both get the same estimator call: ``MLPClassifier(hidden_layer_sizes=(100,),
max_iter=EPOCHS, random_state=SEED)`` and scikit-learn's other defaults (adam, lr 1e-3,
batch 200, alpha 1e-4), on the same arrays: the 60,000 training images flattened to 784
floats in [0, 1] (``X / 255``, as scikit-learn's examples do), scored on the 10,000 test
images. A first fit of each on 200 images (one epoch) comes before the clock: torch's
one-time imports are reported apart, not in the rows. ``tol=0`` keeps both training for all ``EPOCHS`` epochs, so each fits as many. Each
row gives the fit time (the clock around ``fit`` alone), the epochs run, the test accuracy
and the time of ``predict_proba`` on the test set; ratios are mlplab's time over
scikit-learn's, from the same run. The contenders run in turn, ``--repeats`` times each
(in alternating order), and the median is reported with the range.

Everything runs on the CPU with ``--threads`` threads (numpy's BLAS and torch alike, set
before they load). What mlplab does that scikit-learn does not, by default: it standardizes
the inputs on the training data (``normalize='standard'``), and its epochs are mlplab's own
training loop (device tensors, a seeded permutation, fused Adam); docs/sklearn.md.

    MLPLAB_DATA_DIR=/work/shared/datasets python benchmarks/sklearn_vs_mlplab.py --epochs 10
    python benchmarks/sklearn_vs_mlplab.py --limit 5000 --epochs 2          # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys

_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--threads", type=int, default=1)
_THREADS = max(1, _early.parse_known_args()[0].threads)
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = str(_THREADS)
os.environ["MLPLAB_THREADS"] = str(_THREADS)
os.environ.setdefault("MLPLAB_PROGRESS", "0")

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SklearnMLP  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402
from mlplab import load_dataset  # noqa: E402
from mlplab.sklearn import MLPClassifier as MlplabMLP  # noqa: E402

torch.set_num_threads(_THREADS)


def measure(estimator, X_train, y_train, X_test, y_test) -> dict:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit = time.perf_counter() - start
    start = time.perf_counter()
    proba = estimator.predict_proba(X_test)
    predict = time.perf_counter() - start
    accuracy = float((estimator.classes_[proba.argmax(1)] == y_test).mean())
    return {
        "fit_seconds": fit,
        "epochs": estimator.n_iter_,
        "accuracy": accuracy,
        "predict_seconds": predict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--epochs", type=int, default=10, help="max_iter of both (default 10)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100], help="hidden_layer_sizes (default 100)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1, help="fits of each (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    parser.add_argument("--limit", type=int, default=None, help="first N training images only")
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"), help="folder with mnist/ (default $MLPLAB_DATA_DIR)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    data = load_dataset("mnist", args.data_dir)
    pixels_train = data.train.images[: args.limit, 0].numpy()  # (N, 28, 28) uint8
    pixels_test = data.test.images[:, 0].numpy()
    X_train = pixels_train.reshape(len(pixels_train), -1) / np.float32(255)
    X_test = pixels_test.reshape(len(pixels_test), -1) / np.float32(255)
    y_train, y_test = data.train.labels.numpy()[: args.limit], data.test.labels.numpy()
    params = {
        "hidden_layer_sizes": tuple(args.hidden),
        "max_iter": args.epochs,
        "random_state": args.seed,
        "tol": 0.0,
    }
    # name -> (make the estimator, its training and test inputs)
    contenders = {
        "scikit-learn": (lambda: SklearnMLP(**params), X_train, X_test),
        "mlplab": (lambda: MlplabMLP(**params, device="cpu"), X_train, X_test),
        # the same estimator on the images as MNIST stores them: (N, 28, 28) uint8 pixels
        "mlplab, uint8": (lambda: MlplabMLP(**params, device="cpu"), pixels_train, pixels_test),
    }
    # the first fit in a process pays one-time costs (torch imports its compiler when the
    # first optimizer is made): measured apart, on 200 images for one epoch, then excluded
    warm = {}
    for name, (make, train, test) in contenders.items():
        estimator = make().set_params(max_iter=1)
        warm[name] = measure(estimator, train[:200], y_train[:200], test[:10], y_test[:10])
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for repeat in range(args.repeats):
        order = list(contenders) if repeat % 2 == 0 else list(reversed(contenders))
        for name in order:
            make, train, test = contenders[name]
            runs[name].append(measure(make(), train, y_train, test, y_test))

    print(f"machine  {describe()}, {_THREADS} thread(s); torch {torch.__version__}")
    print(
        f"data     MNIST: {len(X_train):,} training images (784 floats in [0, 1]), "
        f"{len(X_test):,} test (the 'uint8' row: the same images as (N, 28, 28) uint8 pixels); MLPClassifier(hidden_layer_sizes={params['hidden_layer_sizes']}, "
        f"max_iter={args.epochs}, random_state={args.seed}, tol=0), other defaults; "
        f"{args.repeats} fit(s) each, median [min-max]"
    )
    summary = {}
    for name, rows in runs.items():
        fit = [r["fit_seconds"] for r in rows]
        summary[name] = {
            "fit_seconds": statistics.median(fit),
            "fit_range": [min(fit), max(fit)],
            "accuracy": statistics.median(r["accuracy"] for r in rows),
            "epochs": rows[0]["epochs"],
            "predict_seconds": statistics.median(r["predict_seconds"] for r in rows),
            "runs": rows,
        }
    base = summary["scikit-learn"]
    print(f"{'':14}{'fit (s)':>18}{'epochs':>8}{'s/epoch':>9}{'test acc':>10}{'predict (s)':>13}{'fit ratio':>11}")  # fmt: skip
    for name, s in summary.items():
        lo, hi = s["fit_range"]
        spread = (
            f"{s['fit_seconds']:.1f} [{lo:.1f}-{hi:.1f}]"
            if len(s["runs"]) > 1
            else f"{s['fit_seconds']:.1f}"
        )
        ratio = s["fit_seconds"] / base["fit_seconds"]
        print(
            f"{name:14}{spread:>18}{s['epochs']:>8}{s['fit_seconds'] / s['epochs']:>9.2f}"
            f"{s['accuracy']:>10.2%}{s['predict_seconds']:>13.3f}{ratio:>10.2f}x"
        )
    first = ", ".join(f"{name} {w['fit_seconds']:.2f} s" for name, w in warm.items())
    print(f"first fit in the process (200 images, 1 epoch; not in the rows above): {first}")
    if args.json:
        record = {"machine": describe(), "threads": _THREADS, "params": {**params, "hidden_layer_sizes": list(params["hidden_layer_sizes"])}, "train_samples": len(X_train), "first_fit": warm, "results": summary}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
