"""The ``mlplab`` command: a thin shell over the Python API.

Every config key is also a flag (``train.lr`` -> ``--lr``, ``run.dir`` -> ``--runs-dir``),
generated from the config table so the two never drift apart. Later sources win:
preset, ``--config`` file, flags, ``--set key=value``. Errors print one line and exit 2
(1 when training itself fails); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import PRESETS, Config, describe
from .data import load_dataset
from .data.sources import DATASETS, BundledSource, cache_dir
from .errors import DataError, MlplabError, TrainingError
from .loop import train
from .metrics import evaluate
from .progress import logger

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
        print(f"mlplab: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, TrainingError) else 2
    except KeyboardInterrupt:
        print("mlplab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mlplab config --list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
    _add_config_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the run directory")
    p.set_defaults(handler=cmd_train)

    p = command("evaluate", "score a run's best weights on the test split")
    p.add_argument("run_dir", type=Path, help="a run directory made by `mlplab train`")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=cmd_evaluate)

    p = command("datasets", "list the datasets, where each was found, which are missing")
    p.add_argument("--data-dir", default=None, help="where to look first")
    p.set_defaults(handler=cmd_datasets)

    p = command("presets", "list the presets (recipes of the classic tutorials)")
    p.set_defaults(handler=cmd_presets)

    p = command("config", "print the resolved config as YAML (a starting point for --config)")
    _add_config_flags(p)
    p.add_argument(
        "--list", action="store_true", help="list every key with its default and meaning"
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
    return parser


# ----- commands -----------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    result = train(config_from_args(args))
    if args.quiet:
        print(result.run_dir)  # the one line a script needs
    else:
        logger.info(f"run directory: {result.run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = evaluate(args.run_dir, data_dir=args.data_dir)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"{args.run_dir}: {metrics['dataset']} test, {metrics['samples']:,} samples")
    print(f"  loss {metrics['loss']:.4f}   accuracy {metrics['accuracy']:.2%}")
    print(f"  {'class':<14} accuracy")
    for name, acc in zip(metrics["classes"], metrics["per_class_accuracy"], strict=True):
        print(f"  {name:<14} {acc:7.2%}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print(f"{'dataset':<14} {'status':<9} where / description")
    for name, source in DATASETS.items():
        if isinstance(source, BundledSource):
            status, where = "bundled", source.find()
        else:
            folder = source.find(args.data_dir)
            status, where = (
                ("found", str(folder))
                if folder
                else ("missing", f"downloads to {cache_dir() / name}")
            )
        print(f"{name:<14} {status:<9} {where}")
        print(f"{'':<24} {source.description}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    for name, preset in PRESETS.items():
        print(f"{name:<11} {preset['help']}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
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
        flag = FLAG_NAMES.get(k.key, "--" + k.name.replace("_", "-"))
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


def config_from_args(args: argparse.Namespace) -> Config:
    config = Config.preset(args.preset) if args.preset else Config()
    if args.config:
        config = config.merge_file(args.config)
    flags: dict[str, Any] = {
        k.key: getattr(args, k.key) for k in describe() if getattr(args, k.key) is not None
    }
    return config.override(flags, source="command line").with_overrides(args.set)


def _log_to_stdout(quiet: bool) -> logging.Handler:
    """Show mlplab's log lines on stdout, bare, for the length of one command."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    return handler
