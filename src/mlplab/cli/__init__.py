"""The ``mlplab`` command: a thin shell over the Python API.

Every config key is also a flag (``train.lr`` -> ``--lr``, ``run.dir`` -> ``--runs-dir``),
generated from the config table so the two never drift apart. Later sources win:
preset, ``--config`` file, flags, ``--set key=value``; the merged result is validated once.
Errors print one line and exit 2 (1 when training itself or the file system fails, 130 on
Ctrl-C); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..analysis.evaluate import SPLITS, evaluate
from ..config import PRESETS, Config, describe
from ..data import load_dataset
from ..data.filesources import FileSource
from ..data.sources import DATASETS, BundledSource, cache_dir
from ..errors import ConfigError, DataError, MlplabError
from ..files.limits import printable
from ..progress import logger
from ..training.loop import resume, train

FLAG_NAMES = {"run.dir": "--runs-dir", "run.name": "--name"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = logger.level, logger.propagate
    handler = _log_to_stdout(quiet=getattr(args, "quiet", False))
    try:
        return args.handler(args) or 0
    except MlplabError as exc:
        if args.debug:
            raise
        print(f"mlplab: error: {printable(exc)}", file=sys.stderr)  # one line, whatever it names
        return exc.exit_code  # 1 when training or the machine failed, 2 for usage and data
    except KeyboardInterrupt:
        if args.debug:
            raise
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: no traceback either
            print("mlplab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mlplab config --list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the last line of defence: a full disk, a read-only folder, ...
        if args.debug:
            raise
        where = f" ({printable(exc.filename)})" if exc.filename else ""
        print(f"mlplab: error: {exc.strerror or exc}{where}; check that the folder exists, "
              "is writable and has free space (--debug shows where it failed)", file=sys.stderr)  # fmt: skip
        return 1
    except Exception as exc:  # a bug, not a user's mistake: still one line, and how to report it
        if args.debug:
            raise
        print(f"mlplab: internal error: {type(exc).__name__}: {printable(exc)} (a bug in mlplab: run again "
              "with --debug for the traceback and report it)", file=sys.stderr)  # fmt: skip
        return 1
    finally:  # main() may run again in this process (tests, notebooks): leave logging as it was
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlplab", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"mlplab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
        sub.add_argument(
            "--debug", action="store_true", help="show tracebacks instead of one-line errors"
        )
        return sub

    p = command("train", "train an MLP and write a run directory")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN",
                   help="continue RUN from its last checkpoint (with --epochs N: extend it to N epochs)")  # fmt: skip
    _add_config_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the run directory")
    p.set_defaults(handler=cmd_train)

    p = command("evaluate", "score a run's best weights on a split of its data")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help="score another dataset of the same image shape and classes (its test split)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=cmd_evaluate)

    p = command("datasets", "list the datasets, where each was found, which are missing")
    p.add_argument("--data-dir", default=None, help="where to look first")
    p.set_defaults(handler=cmd_datasets)

    p = command("data", "look at a dataset before training: `mlplab data inspect PATH|NAME`")
    p.add_argument(
        "action", choices=["inspect"], help="inspect: what was detected, and every problem found"
    )
    p.add_argument(
        "source", help="a file or folder (any format of docs/formats.md) or a registered dataset"
    )
    p.add_argument(
        "--format", default=None, help="the file format, when detection should not decide"
    )
    p.add_argument("--image-shape", default=None, metavar="C,H,W", help="shape of flat pixel rows")
    p.add_argument(
        "--pixel-scale",
        default=None,
        choices=["255", "1"],
        help="pixel values 0-255 or 0-1 (default: detected)",
    )
    p.add_argument("--images-key", default=None, help="HDF5/npz key of the images")
    p.add_argument("--labels-key", default=None, help="HDF5/npz key or CSV column of the labels")
    p.add_argument("--data-dir", default=None, help="where to look for a registered dataset first")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_data)

    p = command("presets", "list the presets (recipes of the classic tutorials)")
    p.set_defaults(handler=cmd_presets)

    p = command("config", "print the resolved config as YAML (a starting point for --config)")
    _add_config_flags(p)
    p.add_argument(
        "--list", action="store_true", help="list every key with its default and meaning"
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="with --list: as the Markdown table of docs/config.md",
    )
    p.set_defaults(handler=cmd_config)

    p = command(
        "demo", "train the tutorial MLP on MNIST and evaluate it (digits when MNIST is unavailable)"
    )
    p.add_argument("--data-dir", default=None, help="where to look for MNIST first")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="override the preset's epochs (default: the preset's)",
    )
    p.add_argument(
        "--runs-dir", default="runs", help="folder for the run directory (default: runs)"
    )
    p.set_defaults(handler=cmd_demo)

    # ----- understanding runs and data (report.py, compare.py, explore.py) -----
    from ..report.run_report import (
        FIGURES,  # light: matplotlib and scikit-learn load only when drawing
    )

    p = command("report", "write report.html, analysis.json and figures/ about a trained run")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--open", action="store_true", help="open the report in the web browser")
    _add_analysis_flags(p)
    p.set_defaults(handler=cmd_report)

    p = command("plot", "draw one figure of a run's report as a PNG")
    p.add_argument("figure", choices=list(FIGURES), metavar="FIGURE",
                   help=f"which figure: {', '.join(FIGURES)}")  # fmt: skip
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--out", type=Path, default=None,
                   help="PNG file to write (default: RUN/figures/FIGURE.png)")  # fmt: skip
    _add_analysis_flags(p)
    p.set_defaults(handler=cmd_plot)

    p = command("compare", "compare runs: results table, overlaid curves, weight statistics")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--out", type=Path, default=Path("compare"),
                   help="folder for compare.html and its figures (default: compare)")  # fmt: skip
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(handler=cmd_compare)

    p = command("explore", "a page about a dataset itself: classes, samples, means, pixels")
    p.add_argument("dataset", metavar="NAME", help=f"a dataset: {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for explore.html and its figures (default: explore-NAME)")  # fmt: skip
    p.add_argument("--class", dest="label", default=None, metavar="CLASS",
                   help="class whose pairwise correlations are shown (default: the first)")  # fmt: skip
    p.add_argument("--per-class", type=int, default=8, help="samples shown per class (default: 8)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(handler=cmd_explore)

    p = command("export", "write a run's model as TorchScript or ONNX, parity-checked")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript",
                   help="torchscript (needs only torch) or onnx (needs mlplab[export]) (default: torchscript)")  # fmt: skip
    p.add_argument("--out", default=None,  # a str: a trailing / means a folder
                   help="file, or folder (ending in /), to write (default: model.torchscript.pt / model.onnx in the run); "
                        "an existing file is refused unless --force")  # fmt: skip
    p.add_argument("--force", action="store_true",
                   help="replace an existing regular file at --out (never a folder, FIFO, device or link, "
                        "nor a run's own files; an earlier export at the default path is replaced anyway)")  # fmt: skip
    p.add_argument("--data-dir", default=None,
                   help="where to look for the test images of the parity check (default: the run's data.data_dir, then the usual places)")  # fmt: skip
    p.set_defaults(handler=cmd_export)

    p = command("predict", "classify image files with a run's model (MNIST-style preprocessing)")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files, or folders of them")  # fmt: skip
    p.add_argument("--top-k", type=int, default=3, help="classes to list per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print a JSON array, in input order")
    p.add_argument("--show", type=Path, default=None, metavar="OUTDIR",
                   help="write what the model saw, one PNG per image, into OUTDIR (default: off)")  # fmt: skip
    p.add_argument("--preprocess", choices=("auto", "mnist", "resize", "none"), default="auto",
                   help="auto: mnist for 1-channel models, resize otherwise, none for images already "
                        "the model's size (default: auto)")  # fmt: skip
    p.add_argument("--max-megapixels", type=float, default=40.0,
                   help="largest image accepted, decoded, in millions of pixels; checked from the "
                        "header before decoding (default: 40)")  # fmt: skip
    p.set_defaults(handler=cmd_predict)

    p = command("serve", "serve a run's model over HTTP: JSON API, /docs and a drawing page")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback exposes an unauthenticated server (default: 127.0.0.1)")  # fmt: skip
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--max-upload-mb", type=float, default=4.0, help="largest request body, MiB (default: 4)")  # fmt: skip
    p.add_argument("--max-batch", type=int, default=64, help="images per request and per forward pass (default: 64)")  # fmt: skip
    p.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="how long a request waits for others to share its forward pass, ms (default: 2)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads, 0: torch's default (default: 1)")  # fmt: skip
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                   help="uvicorn's log level; info logs every request (default: info)")  # fmt: skip
    p.add_argument("--max-megapixels", type=float, default=12.0,
                   help="largest upload, decoded, in millions of pixels (default: 12)")  # fmt: skip
    p.add_argument("--max-request-megapixels", type=float, default=24.0,
                   help="all the uploads of one request, decoded, in millions of pixels (default: 24)")  # fmt: skip
    p.add_argument("--max-memory-mb", type=float, default=1024.0,
                   help="what requests may make the server hold at once, MiB: a quarter for bodies, "
                        "the rest for decoding images; requests over it wait their turn (default: 1024)")  # fmt: skip
    p.add_argument("--request-timeout", type=float, default=15.0,
                   help="seconds for a request's head, and again for its body, to arrive (default: 15)")  # fmt: skip
    p.add_argument("--max-connections", type=int, default=512,
                   help="open connections before new requests are answered 503 (default: 512)")  # fmt: skip
    p.set_defaults(handler=cmd_serve)

    # ----- scale: sweeps and ablations, the runs table, TensorBoard, the LR finder -----
    from ..sweep import PRUNERS, SAMPLERS

    p = command("sweep", "search config keys with Optuna (--space), or run an ablation (--grid × --seeds); "
                         "`mlplab sweep report SWEEP_DIR` writes its report")  # fmt: skip
    p.add_argument("action", nargs="?", choices=["report"],
                   help="report: tables, importance, best.yaml (and the ablation plot) of an existing sweep")  # fmt: skip
    p.add_argument("sweep_dir", nargs="?", type=Path, metavar="SWEEP_DIR",
                   help="with report: the sweep folder (or --storage URL --study NAME)")  # fmt: skip
    p.add_argument("--space", type=Path, default=None, metavar="FILE",
                   help="YAML search space: config key -> {type: float|int|categorical, low, high, log, step, choices}")  # fmt: skip
    p.add_argument("--trials", type=int, default=None,
                   help="trials of a search (default: 20); with --resume, queue this many more")  # fmt: skip
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="ablation: run every value of KEY; several --grid make the cartesian product; "
                        "list values in brackets: model.hidden=[128],[256,128]")  # fmt: skip
    p.add_argument("--seeds", type=int, default=None,
                   help="runs of each grid setting, train.seed = base seed + 0, 1, ... (default: 1)")  # fmt: skip
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna database URL that several workers share, e.g. postgresql://user@host/db "
                        "(default: study.db, SQLite, in the sweep folder)")  # fmt: skip
    p.add_argument("--study", default=None, metavar="NAME",
                   help="study name (default: the sweep folder's name, <stamp>-<name>)")  # fmt: skip
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="SWEEP_DIR",
                   help="work on an existing sweep: its folder, or --storage URL --study NAME from any machine")  # fmt: skip
    p.add_argument("--sweeps-dir", type=Path, default=Path("sweeps"),
                   help="folder that holds the sweep folders (default: sweeps)")  # fmt: skip
    p.add_argument("--sampler", default=None, metavar="NAME",
                   help=f"search sampler: {' or '.join(SAMPLERS)} (default: tpe)")  # fmt: skip
    p.add_argument("--pruner", default=None, metavar="NAME",
                   help=f"search pruner on each epoch's validation score: {' or '.join(PRUNERS)} (default: median)")  # fmt: skip
    p.add_argument("--sampler-seed", type=int, default=None,
                   help="seed of the search sampler in the process that creates the sweep (default: 0)")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help="with report: folder for the report files (default: the sweep folder)")  # fmt: skip
    p.add_argument("--verbose", action="store_true",
                   help="also print every trial's training lines (always kept in its train.log)")  # fmt: skip
    _add_config_flags(p)
    p.set_defaults(handler=cmd_sweep)

    p = command(
        "runs",
        "list run directories: date, name, dataset, architecture, epochs, scores, time, status",
    )
    p.add_argument("root", nargs="?", type=Path, default=Path("runs"), metavar="DIR",
                   help="a folder of runs (searched four levels down, so sweeps/ works too), or one run (default: runs)")  # fmt: skip
    p.add_argument("--sort", default="date", metavar="KEY",
                   help="column to sort by: date, name, dataset, architecture, epochs, val, test, time, status (default: date)")  # fmt: skip
    p.add_argument("--reverse", action="store_true", help="sort in descending order")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep runs whose KEY matches VALUE (wildcards * ?), e.g. dataset=mnist, status=finished (repeatable)")  # fmt: skip
    p.add_argument(
        "--json", action="store_true", help="print the rows as JSON (raw numbers, full paths)"
    )
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--tensorboard", nargs="?", const=Path("tensorboard"), default=None, type=Path, metavar="OUT",
                   help="also write TensorBoard event files of every listed run into OUT/<run> (default OUT: tensorboard)")  # fmt: skip
    p.set_defaults(handler=cmd_runs)

    p = command(
        "tensorboard", "write TensorBoard event files of a run: curves, weight histograms, images"
    )
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the event files (default: RUN/tensorboard)",
    )
    p.add_argument("--samples", type=int, default=16,
                   help="test images to include, when the run's data can be reloaded; 0: none (default: 16)")  # fmt: skip
    p.add_argument("--data-dir", default=None, help="where to look for the run's dataset first")
    p.set_defaults(handler=cmd_tensorboard)

    p = command(
        "lr-find",
        "learning-rate range test: loss against an exponentially growing rate, and a suggestion",
    )
    p.add_argument("--start", type=float, default=1e-7, help="first learning rate (default: 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last learning rate (default: 10)")
    p.add_argument(
        "--steps",
        type=int,
        default=200,
        help="optimizer steps from --start to --end (default: 200)",
    )
    p.add_argument("--stop-factor", type=float, default=4.0,
                   help="stop once the smoothed loss exceeds this many times its best (default: 4)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("lr_find.png"),
                   help="the plot (PNG); the numbers go next to it as .json (default: lr_find.png)")  # fmt: skip
    _add_config_flags(p)
    p.set_defaults(handler=cmd_lr_find)
    return parser


# ----- commands -----------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        result = resume(args.resume, epochs=_resume_epochs(args))
    else:
        try:
            result = train(config_from_args(args))
        except KeyboardInterrupt:
            logger.warning("interrupted before the first epoch ended: no run directory was kept")
            raise
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 speaks for all
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(
            f"mlplab: interrupted; continue with: mlplab train --resume {result.run_dir}",
            file=sys.stderr,
        )
        return 130
    if args.quiet:
        print(result.run_dir)  # the one line a script needs
    else:
        logger.info(f"run directory: {result.run_dir}")
    return 0


def _resume_epochs(args: argparse.Namespace) -> int | None:
    """--epochs is the one recipe flag --resume takes; anything else would change the run."""
    changed = [
        _flag(k) for k in describe() if getattr(args, k.key) is not None and k.key != "train.epochs"
    ]
    changed += (
        ["--preset"] * bool(args.preset)
        + ["--config"] * bool(args.config)
        + ["--set"] * bool(args.set)
    )
    if changed:
        raise ConfigError(
            f"--resume continues a run with its own recipe; {', '.join(changed)} would change it "
            "(only --epochs N, to extend the run to N epochs, goes with --resume)"
        )
    epochs = getattr(args, "train.epochs")
    return (
        None
        if epochs is None
        else Config().override({"train.epochs": epochs}, source="--epochs").train.epochs
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = evaluate(args.run_dir, split=args.split, dataset=args.dataset, data_dir=args.data_dir,
                       device=args.device)  # fmt: skip
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(
        f"{printable(args.run_dir)}: {printable(metrics['dataset'])} {metrics['split']}, "
        f"{metrics['samples']:,} samples"
    )
    loss = f"loss {metrics['loss']:.4f} ({metrics['loss_function']})"
    if metrics["task"] == "regression":  # no accuracy, no classes: the regression's figures
        print(f"  {loss}   R² {metrics['r2']:.4f}   RMSE {metrics['rmse']:.4g}   MAE {metrics['mae']:.4g}")  # fmt: skip
        return 0
    print(f"  {loss}   accuracy {metrics['accuracy']:.2%}")
    print(f"  {'class':<14} accuracy")
    for name, acc in zip(metrics["classes"], metrics["per_class_accuracy"], strict=True):
        print(f"  {printable(name):<14} {acc:7.2%}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print(f"{'dataset':<16} {'status':<9} where / description")
    for name, source in DATASETS.items():
        if isinstance(source, BundledSource):
            status, where = "bundled", source.find()
        elif isinstance(source, FileSource):
            found = source.find(args.data_dir)
            status, where = (("found", str(found)) if found else
                             ("missing", f"downloads to {cache_dir() / name}" if source.url else "not downloadable: see docs/formats.md"))  # fmt: skip
        else:
            folder = source.find(args.data_dir)
            status, where = (
                ("found", str(folder))
                if folder
                else ("missing", f"downloads to {cache_dir() / name}")
            )
        print(f"{name:<16} {status:<9} {where}")
        print(f"{'':<26} {source.description}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from ..data.inspection import inspect_data
    from ..data.raw import RawSplits

    if args.source in DATASETS:
        data = load_dataset(args.source, args.data_dir)
        if data.task != "classification":
            raise ConfigError(
                f"'{args.source}' is a {data.task} dataset; inspect reports on image classes"
            )
        splits = [(s.images.numpy(), s.labels.numpy()) for s in (data.train, data.test)]
        report = inspect_data(
            RawSplits(splits[0], splits[1], data.classes, data.origin, args.source)
        )
    else:
        report = inspect_data(args.source, None if args.format in (None, "auto") else args.format,
                              image_shape=args.image_shape, pixel_scale=args.pixel_scale,
                              images_key=args.images_key, labels_key=args.labels_key)  # fmt: skip
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.to_text())
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    for name, preset in PRESETS.items():
        print(f"{name:<11} {preset['help']}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.list and args.markdown:
        print("| key | default | meaning |\n| --- | --- | --- |")
        for k in describe():
            print(f"| `{k.key}` | `{k.default}` | {k.help} |")
        return 0
    if args.list:
        for k in describe():
            print(f"{k.key:<22} {k.default!s:<12} {k.help}")
        return 0
    print(config_from_args(args).to_yaml(), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    config = Config.preset("tutorial").override(
        {"data.data_dir": args.data_dir, "run.dir": args.runs_dir}, source="demo"
    )
    try:
        dataset = load_dataset("mnist", args.data_dir)
    except DataError as exc:
        logger.info(f"MNIST is not available here: {exc}")
        logger.info("running the same pipeline on scikit-learn's bundled 8x8 digits instead")
        # On 8x8 images even a 1-pixel shift moves an eighth of the frame (94.7% test, against
        # 98.0% without); the set is 1/45 the size of MNIST, so it gets 40 short epochs.
        config = config.override(
            {
                "data.dataset": "digits",
                "augment.shift": 0,
                "train.epochs": 40,
                "run.name": "demo-digits",
            },
            source="demo",
        )
        dataset = load_dataset("digits")
    if args.epochs:
        config = config.override({"train.epochs": args.epochs}, source="--epochs")
    result = train(config, dataset=dataset)
    metrics = evaluate(result.run_dir, data_dir=args.data_dir)
    logger.info(
        f"evaluate: test accuracy {metrics['accuracy']:.2%} on {metrics['samples']:,} {metrics['dataset']} images"
    )
    logger.info(f"run directory: {result.run_dir}  (try: mlplab evaluate {result.run_dir})")
    return 0


def _add_analysis_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", default=None, help="where to look for the run's dataset first"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    parser.add_argument("--tsne-samples", type=int, default=2000,
                        help="points in each t-SNE map (default: 2000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of t-SNE, samples and imagined inputs (default: 0)")  # fmt: skip


def _analysis_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"data_dir": args.data_dir, "device": args.device,
            "tsne_samples": args.tsne_samples, "seed": args.seed}  # fmt: skip


def _open_in_browser(path: Path) -> None:
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        logger.warning(f"could not open a web browser here; open {path} yourself")


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.run_report import report

    path = report(args.run_dir, **_analysis_settings(args))
    print(path)
    if args.open:
        _open_in_browser(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ..report.run_report import plot

    print(plot(args.run_dir, args.figure, args.out, **_analysis_settings(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..report.compare import check_out, compare, compare_runs

    check_out(args.out)  # before the tables are printed: a bad --out is the only line
    comparison = compare_runs(args.run_dirs)
    print(comparison.table())
    print()
    print(comparison.weight_table())
    path = compare(comparison, args.out)
    print(f"\n{path}")
    if args.open:
        _open_in_browser(path)
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from ..report.explore import explore

    label = args.label if args.label is not None else 0
    path = explore(args.dataset, args.out, data_dir=args.data_dir, label=label,
                   per_class=args.per_class)  # fmt: skip
    print(path)
    if args.open:
        _open_in_browser(path)


def cmd_export(args: argparse.Namespace) -> int:
    from ..inference.export import export  # torch.onnx and friends load only when asked for

    result = export(args.run_dir, args.format, args.out, data_dir=args.data_dir, force=args.force)
    print(result.path)
    print(
        f"parity: max |{result.format} - eager| = {result.max_abs_diff:.2e} (outputs up to "
        f"{result.max_abs_output:.3g}) over {result.images} images at batch sizes "
        f"{', '.join(map(str, result.batch_sizes))}: {result.inputs}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import warnings

    from ..errors import ConfigError
    from ..inference.predict import predict

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1; got {args.top_k}")
    if not 0 < args.max_megapixels <= 1e6:
        raise ConfigError(f"--max-megapixels must be > 0; got {args.max_megapixels:g}")
    with warnings.catch_warnings():  # Pillow's own (bomb, corrupt EXIF): mlplab says one line
        warnings.filterwarnings("ignore", module=r"PIL\.")
        results = predict(args.run_dir, args.images, args.top_k, style=args.preprocess,
                          show=args.show, max_pixels=int(args.max_megapixels * 1e6))  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    files = [printable(r["file"]) for r in results]  # a name may hold escape codes
    width = max(map(len, files))
    for name, r in zip(files, results, strict=True):
        top = "  ".join(f"{printable(t['class'])} {t['probability']:6.1%}" for t in r["top"])
        shown = f"  (model input: {printable(r['shown'])})" if "shown" in r else ""
        print(f"{name:<{width}}  {printable(r['class']):>5}  {r['probability']:6.1%}   top {len(r['top'])}: {top}{shown}")  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..serve import serve

    if args.max_upload_mb <= 0 or args.max_batch < 1 or args.batch_wait_ms < 0 or args.threads < 0:
        raise ConfigError(
            "--max-upload-mb must be > 0, --max-batch >= 1, --batch-wait-ms >= 0 and --threads >= 0; "
            f"got {args.max_upload_mb:g}, {args.max_batch}, {args.batch_wait_ms:g}, {args.threads}"
        )
    sizes = (args.max_megapixels, args.max_request_megapixels, args.max_memory_mb, args.request_timeout)  # fmt: skip
    if not all(0 < x <= 1e6 for x in sizes) or args.max_connections < 1:
        raise ConfigError(
            "--max-megapixels, --max-request-megapixels, --max-memory-mb and --request-timeout "
            f"must be > 0, --max-connections >= 1; got {', '.join(f'{x:g}' for x in sizes)} and "
            f"{args.max_connections}"
        )
    serve(args.run_dir, args.host, args.port, log_level=args.log_level, threads=args.threads,
          max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_batch=args.max_batch,
          max_wait_ms=args.batch_wait_ms, max_pixels=int(args.max_megapixels * 1e6),
          max_request_pixels=int(args.max_request_megapixels * 1e6),
          max_memory_bytes=int(args.max_memory_mb * 1024 * 1024),
          request_timeout=args.request_timeout, max_connections=args.max_connections)  # fmt: skip
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..sweep import add_trials, create_sweep, describe_sweep, open_sweep, run_sweep
    from ..sweep.report import summarize, sweep_report

    recipe = [
        _flag(k) for k in describe() if getattr(args, k.key) is not None
    ]  # recipe options given
    recipe += (
        ["--preset"] * bool(args.preset)
        + ["--config"] * bool(args.config)
        + ["--set"] * bool(args.set)
    )
    new_sweep = [flag for flag, value in (("--space", args.space), ("--grid", args.grid), ("--seeds", args.seeds),
                                          ("--sampler", args.sampler), ("--pruner", args.pruner),
                                          ("--sampler-seed", args.sampler_seed)) if value]  # fmt: skip
    if args.action == "report":
        extra = (
            recipe
            + new_sweep
            + ["--trials"] * bool(args.trials)
            + ["--resume"] * (args.resume is not None)
        )
        if extra:
            raise ConfigError(
                f"sweep report reads an existing sweep; {', '.join(extra)} would make a new one "
                "(report takes SWEEP_DIR or --storage URL --study NAME, and --out DIR)"
            )
        if args.sweep_dir is None and args.storage is None:
            raise ConfigError("sweep report needs SWEEP_DIR, or --storage URL (and --study NAME)")
        report = sweep_report(args.sweep_dir, args.out, storage=args.storage, study=args.study)
        print(report.text(), end="")
        print(f"wrote    {', '.join(str(f) for f in report.files)}")
        return 0
    if args.out is not None:
        raise ConfigError(
            "--out goes with `mlplab sweep report`; a sweep's runs go into its folder under --sweeps-dir"
        )
    if getattr(args, "run.dir") is not None:
        raise ConfigError(
            "--runs-dir: a sweep keeps its trials' runs in its own folder (SWEEP/runs); "
            "choose where sweep folders go with --sweeps-dir"
        )
    if args.resume is not None:
        if recipe or new_sweep:
            raise ConfigError(
                f"--resume works on the sweep's own recipe (kept in its study); {', '.join(recipe + new_sweep)} "
                "would change it (only --trials N, to queue N more trials of a search, goes with --resume)"
            )
        sweep = open_sweep(
            args.resume or None, storage=args.storage, study=args.study, sweeps_dir=args.sweeps_dir
        )
        if args.trials:
            add_trials(sweep, args.trials)
    else:
        sweep = create_sweep(config_from_args(args), space=args.space, grid=args.grid or None,
                             seeds=1 if args.seeds is None else args.seeds, trials=args.trials,
                             storage=args.storage, study=args.study, sweeps_dir=args.sweeps_dir,
                             sampler=args.sampler or "tpe", pruner=args.pruner or "median",
                             seed=0 if args.sampler_seed is None else args.sampler_seed)  # fmt: skip
    logger.info(describe_sweep(sweep))
    try:
        done = run_sweep(sweep, verbose=args.verbose)
    except KeyboardInterrupt:
        logger.warning(
            f"interrupted; the stopped trial is queued again. Continue with: {sweep.join_command()}"
        )
        raise
    report = summarize(sweep)
    logger.info(f"done     {len(done)} trial{'s' * (len(done) != 1)} here; {report._counts()}")
    logger.info(f"best     {report._best_line()}")
    logger.info(f"report   {sweep.report_command()}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from ..run.table import filter_runs, list_runs, runs_table, sort_runs, to_json

    rows = sort_runs(filter_runs(list_runs(args.root), args.filter), args.sort, args.reverse)
    if args.json:
        print(to_json(rows))
    elif args.markdown:
        print(runs_table(rows, "markdown", root=args.root), end="")
    elif rows:
        print(runs_table(rows, root=args.root), end="")
    else:
        print(
            f"no runs under {args.root}{' match ' + ', '.join(args.filter) if args.filter else ''}"
        )
    if args.tensorboard is not None:
        from ..report.tensorboard import write_events

        for row in rows:
            if row.status in ("empty", "unreadable"):
                continue
            target = args.tensorboard / (Path(row.path).relative_to(args.root) if Path(row.path) != args.root
                                         else Path(row.path).name)  # fmt: skip
            try:
                write_events(row.path, target, samples=0)
            except MlplabError as exc:  # one damaged run is said and skipped, not the end
                print(f"mlplab: warning: {printable(exc)}; its events are skipped", file=sys.stderr)
        print(
            f"tensorboard: {args.tensorboard} (view with: tensorboard --logdir {args.tensorboard})",
            file=sys.stderr,
        )
    return 0


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from ..report.tensorboard import write_events

    if args.samples < 0:
        raise ConfigError(f"--samples must be >= 0; got {args.samples}")
    out = write_events(args.run_dir, args.out, samples=args.samples, data_dir=args.data_dir)
    print(out)
    print(f"view with: tensorboard --logdir {out}", file=sys.stderr)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from ..extras import require
    from ..training.lr_find import lr_find

    require("matplotlib.figure", "report", "the lr-find plot")  # before minutes of work, not after
    result = lr_find(config_from_args(args), start=args.start, end=args.end, steps=args.steps,
                     stop_factor=args.stop_factor)  # fmt: skip
    png, data = result.save(args.out)
    print(result.describe())
    print(f"wrote    {png}, {data}")
    return 0


# ----- config from the command line ---------------------------------------------------
def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=None, help=f"start from a preset: {', '.join(PRESETS)}")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML config file applied after the preset"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any key, e.g. --set train.epochs=3 (repeatable; applied last)")  # fmt: skip
    group = parser.add_argument_group("config keys (each flag sets the key in brackets)")
    for k in describe():
        flag = _flag(k)
        choices = f" ({'|'.join(k.choices)})" if k.choices else ""
        help_text = f"{k.help}{choices} [{k.key}; default {k.default}]".replace("%", "%%")
        if isinstance(k.default, bool):
            group.add_argument(
                flag,
                dest=k.key,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            group.add_argument(
                flag, dest=k.key, default=None, metavar=k.name.upper(), help=help_text
            )


def _flag(k: Any) -> str:
    return FLAG_NAMES.get(k.key, "--" + k.name.replace("_", "-"))


def config_from_args(args: argparse.Namespace) -> Config:
    """Preset, then --config, then flags, then --set; validated once, on the merged result."""
    config = Config.preset(args.preset) if args.preset else Config()
    if args.config:
        config = config.merge_file(args.config, validate=False)
    flags: dict[str, Any] = {
        k.key: getattr(args, k.key) for k in describe() if getattr(args, k.key) is not None
    }
    config = config.override(flags, source="command line", validate=False)
    return config.with_overrides(args.set, validate=False).validate()


def _log_to_stdout(quiet: bool) -> logging.Handler:
    """Show mlplab's log lines on stdout, bare, for the length of one command."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING if quiet else logging.INFO)  # train.log still gets INFO
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
