"""The ``mlplab`` command's flags: one ``add_<command>`` function per command.

Every config key is also a flag (``train.lr`` -> ``--lr``, ``run.dir`` -> ``--runs-dir``),
generated from the config table so the two never drift apart. Every flag's help shows its
default. The parser knows nothing of the handlers: :func:`mlplab.cli.main.main` calls
``commands.cmd_<name>`` for the command ``<name>``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NoReturn

from .. import __version__
from ..analysis.evaluate import SPLITS
from ..config import PRESETS, Key, describe
from ..data.sources import DATASETS
from ..run.outputs import COMPARE, EXPLAIN, LR_FIND, OLD_SWEEPS, ROOT, SWEEPS
from ..serve.settings import LOG_LEVELS, ServeSettings
from ..trust.explain import METHODS, STEPS, STRIDE, WINDOW

Commands = argparse._SubParsersAction  # what add_subparsers returns: argparse has no public name

FLAG_NAMES = {
    "run.dir": "--runs-dir",
    "run.name": "--name",
    "track.to": "--track",
    "track.uri": "--tracking-uri",
}  # the keys whose flag is not --NAME
RUN_DIR = "a run directory made by `mlplab train`"
SERVE = ServeSettings()  # the defaults of `mlplab serve`


class Parser(argparse.ArgumentParser):
    """argparse's parser, but an unknown flag is one line naming the closest flag of its command.

    argparse says ``mlplab: error: unrecognized arguments: --hiden 100`` under the top usage:
    not which command, nor what was meant. Every command's parser is one of these too
    (``add_subparsers`` makes its parsers of the parent's class).
    """

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.unknown(parsed, extras)
        return parsed

    def unknown(self, parsed: argparse.Namespace, extras: list[str]) -> NoReturn:
        """Exit 2 with one line: each unknown flag and the closest flag its command knows."""
        name = getattr(parsed, "command", None)
        found = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        sub = found[0].choices.get(name, self) if found and name else self
        flags = [e.split("=", 1)[0] for e in extras if _FLAG.match(e)]
        if not flags:  # a stray value, not a flag: argparse's own message says which
            sub.error(f"unrecognized arguments: {' '.join(extras)}")
        known = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        unique = list(dict.fromkeys(flags))
        misplaced = [f for f in unique if f in known]  # `mlplab --debug train`: its own flag
        if misplaced and sub is not self:
            print(
                f"{self.prog}: error: {', '.join(misplaced)} goes after the command: "
                f"{sub.prog} {' '.join(misplaced)} ...",
                file=sys.stderr,
            )
            sys.exit(2)
        said = ", ".join(f"{flag}{_closest(flag, known)}" for flag in unique)
        if "did you mean" not in said:
            said += f" (`{sub.prog} --help` lists its flags)"
        plural = "s" if len(unique) > 1 else ""
        print(f"{sub.prog}: error: unknown flag{plural} {said}", file=sys.stderr)
        sys.exit(2)


_FLAG = re.compile(r"-[^\d.]")  # -x, --name, not a negative number (-1, -.5)


def _closest(flag: str, known: list[str]) -> str:
    """`` (did you mean '--x'?)`` for the closest of ``known``, or ''.

    Compared without the dashes, at 0.7 (not errors.did_you_mean's 0.6): the shared "--" and
    "no-" made --no-such-flag "close" to --no-hflip.
    """
    names = {k.lstrip("-"): k for k in known}
    close = difflib.get_close_matches(flag.lstrip("-"), list(names), n=1, cutoff=0.7)
    return f" (did you mean '{names[close[0]]}'?)" if close else ""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order ``mlplab --help`` lists them."""
    parser = Parser(
        prog="mlplab",
        description="The ``mlplab`` command: a thin shell over the Python API.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"mlplab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(commands)
    add_evaluate(commands)
    add_calibrate(commands)
    add_robustness(commands)
    add_datasets(commands)
    add_data(commands)
    add_presets(commands)
    add_machine(commands)
    add_config(commands)
    add_demo(commands)
    # understanding runs and data
    add_report(commands)
    add_card(commands)
    add_plot(commands)
    add_compare(commands)
    add_explore(commands)
    # shipping a model
    add_export(commands)
    add_predict(commands)
    add_explain(commands)
    add_serve(commands)
    # scale: sweeps and ablations, the runs table, TensorBoard, the LR finder
    add_sweep(commands)
    add_runs(commands)
    add_tensorboard(commands)
    add_lr_find(commands)
    return parser


def command(commands: Commands, name: str, help: str) -> argparse.ArgumentParser:
    """A command's parser, with the --debug flag that every command has."""
    sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
    sub.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    return sub


# ----- training and data -----------------------------------------------------------------
def add_train(commands: Commands) -> None:
    p = command(commands, "train", "train an MLP and write a run directory")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN",
        help="continue RUN from its last checkpoint (with --epochs N: extend it to N epochs)",
    )
    add_config_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the run directory")


def add_evaluate(commands: Commands) -> None:
    p = command(commands, "evaluate", "score a run's best weights on a split of its data")
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    p.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="score another dataset of the same image shape and classes (its test split)",
    )
    p.add_argument(
        "--allow-class-mismatch",
        action="store_true",
        help="score a --dataset whose class names differ from the run's (by position)",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_no_reject(p)


def add_calibrate(commands: Commands) -> None:
    p = command(
        commands,
        "calibrate",
        "fit a run's temperature again, so that its probabilities mean what they say",
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--split",
        choices=("val",),
        default="val",
        help="fit on the run's validation split (the test split never fits; default: val)",
    )
    where.add_argument(
        "--dataset",
        default=None,
        metavar="NAME_OR_FILE",
        help="fit on another dataset's test split instead (same image shape and classes)",
    )
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_robustness(commands: Commands) -> None:
    from ..analysis.corruptions import NAMES

    p = command(
        commands,
        "robustness",
        "a run's accuracy under the MNIST-C corruptions at 5 severities: robustness.json",
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="corrupt another dataset's test split (same image shape and classes) instead",
    )
    p.add_argument(
        "--severities",
        default="1-5",
        help="severities to score: N, N-M or N,M,... from 1 to 5 (default: 1-5)",
    )
    p.add_argument(
        "--corruptions",
        default=None,
        metavar="NAMES",
        help=f"comma-separated, of: {', '.join(NAMES)} (default: all)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the corruptions' random draws (default: 0)"
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N test images, for a quick look (default: all)",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument("--json", action="store_true", help="print robustness.json's content")
    add_no_reject(p)


def add_datasets(commands: Commands) -> None:
    p = command(commands, "datasets", "list the datasets, where each was found, which are missing")
    p.add_argument("--data-dir", default=None, help="where to look first")


def add_data(commands: Commands) -> None:
    p = command(
        commands, "data", "look at a dataset before training: `mlplab data inspect PATH|NAME`"
    )
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
        choices=["auto", "255", "1"],
        help="pixel values 0-255 or 0-1 (default: auto, detected)",
    )
    p.add_argument("--images-key", default=None, help="HDF5/npz key of the images")
    p.add_argument("--labels-key", default=None, help="HDF5/npz key or CSV column of the labels")
    p.add_argument("--data-dir", default=None, help="where to look for a registered dataset first")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def add_presets(commands: Commands) -> None:
    command(commands, "presets", "list the presets (recipes of the classic tutorials)")


def add_machine(commands: Commands) -> None:
    p = command(
        commands,
        "machine",
        "the CPU, torch's measured fp32/bf16 GEMM rates at a run's shapes, and the precision "
        "and threads mlplab would choose (cached per machine)",
    )
    add_config_flags(p)
    p.add_argument("--refresh", action="store_true", help="measure again instead of the cache")
    p.add_argument("--json", action="store_true", help="print the record as JSON")


def add_config(commands: Commands) -> None:
    p = command(
        commands, "config", "print the resolved config as YAML (a starting point for --config)"
    )
    add_config_flags(p)
    p.add_argument(
        "--list", action="store_true", help="list every key with its default and meaning"
    )
    p.add_argument(
        "--markdown",
        action="store_true",
        help="with --list: as the Markdown table of docs/config.md",
    )


def add_demo(commands: Commands) -> None:
    p = command(
        commands,
        "demo",
        "train the tutorial MLP on MNIST and evaluate it (digits when MNIST is unavailable)",
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


# ----- understanding runs and data -------------------------------------------------------
def add_report(commands: Commands) -> None:
    p = command(
        commands, "report", "write report.html, analysis.json and figures/ about a trained run"
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument("--open", action="store_true", help="open the report in the web browser")
    add_analysis_flags(p)


def add_card(commands: Commands) -> None:
    p = command(commands, "card", "write a run's model card (README.md) from its own files")
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="where to write it, '-' to print it (default: RUN/README.md, replacing only a card "
        "mlplab wrote there)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out FILE that is not a card (never a run's own files)",
    )
    p.add_argument(
        "--license",
        default="unknown",
        help="the front matter's license, a Hugging Face license id (default: unknown)",
    )


def add_plot(commands: Commands) -> None:
    from ..report.run_report import FIGURES  # light: matplotlib loads only when drawing

    p = command(commands, "plot", "draw one figure of a run's report as a PNG")
    p.add_argument(
        "figure",
        choices=list(FIGURES),
        metavar="FIGURE",
        help=f"which figure: {', '.join(FIGURES)}",
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--out", type=Path, default=None, help="PNG file to write (default: RUN/figures/FIGURE.png)"
    )
    add_analysis_flags(p)


def add_compare(commands: Commands) -> None:
    p = command(
        commands, "compare", "compare runs: results table, overlaid curves, weight statistics"
    )
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN", help="run directories")
    p.add_argument(
        "--out",
        type=Path,
        default=COMPARE,
        help=f"folder for compare.html and its figures (default: {COMPARE})",
    )
    p.add_argument("--open", action="store_true", help="open the page in the web browser")


def add_explore(commands: Commands) -> None:
    p = command(
        commands, "explore", "a page about a dataset itself: classes, samples, means, pixels"
    )
    p.add_argument("dataset", metavar="NAME", help=f"a dataset: {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="where to look for the dataset first")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for explore.html and its figures (default: {ROOT}/explore-NAME)",
    )
    p.add_argument(
        "--class",
        dest="label",
        default=None,
        metavar="CLASS",
        help="class whose pairwise correlations are shown (default: the first)",
    )
    p.add_argument("--per-class", type=int, default=8, help="samples shown per class (default: 8)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")


# ----- shipping a model ------------------------------------------------------------------
def add_export(commands: Commands) -> None:
    p = command(commands, "export", "write a run's model as TorchScript or ONNX, parity-checked")
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--format",
        choices=("torchscript", "onnx"),
        default="torchscript",
        help="torchscript (needs only torch) or onnx (needs mlplab[export]) (default: torchscript)",
    )
    p.add_argument(
        "--out",
        default=None,  # a str: a trailing / means a folder
        help="file, or folder (ending in /), to write (default: model.torchscript.pt / model.onnx "
        "in the run); an existing file is refused unless --force",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing regular file at --out (never a folder, FIFO, device or link, "
        "nor a run's own files; an earlier export at the default path is replaced anyway)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where to look for the test images of the parity check (default: the run's "
        "data.data_dir, then the usual places)",
    )
    p.add_argument(
        "--no-reject",
        action="store_true",
        help="export the class outputs only, without the ood_score and reason_code outputs "
        "(the run's rejection of unfamiliar inputs, exported when the run has one)",
    )


def add_predict(commands: Commands) -> None:
    p = command(
        commands, "predict", "classify image files with a run's model (MNIST-style preprocessing)"
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGE", help="image files, or folders of them"
    )
    p.add_argument("--top-k", type=int, default=3, help="classes to list per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print a JSON array, in input order")
    p.add_argument(
        "--show",
        type=Path,
        default=None,
        metavar="OUTDIR",
        help="write what the model saw, one PNG per image, into OUTDIR (default: off)",
    )
    p.add_argument(
        "--preprocess",
        choices=("auto", "mnist", "resize", "none"),
        default="auto",
        help="auto: mnist for 1-channel models, resize otherwise, none for images already "
        "the model's size (default: auto)",
    )
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=40.0,
        help="largest image accepted, decoded, in millions of pixels; checked from the "
        "header before decoding (default: 40)",
    )
    add_no_reject(p)
    p.add_argument(
        "--explain",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write why (integrated gradients of the predicted class: the model input, "
        "attribution map and overlay PNGs, explanations.json) into DIR; needs "
        "mlplab[explain] (default: off)",
    )


def add_explain(commands: Commands) -> None:
    p = command(
        commands,
        "explain",
        "which pixels made a run's model give its answer: attribution maps (Captum)",
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "images", type=Path, nargs="+", metavar="IMAGE", help="image files, or folders of them"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=EXPLAIN,
        metavar="DIR",
        help="folder for the PNGs (model input, attribution, overlay per image) and "
        "explanations.json; made if missing, its other files never replaced "
        f"(default: {EXPLAIN})",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=METHODS[0],
        help=f"attribution method (default: {METHODS[0]})",
    )
    p.add_argument(
        "--target",
        default=None,
        metavar="CLASS",
        help="class to explain, by name or index (default: each image's predicted class)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=STEPS,
        help=f"integrated gradients: points along the path from the background (default: {STEPS})",
    )
    p.add_argument(
        "--window",
        type=int,
        default=WINDOW,
        metavar="N",
        help=f"occlusion: the side of the background patch, pixels (default: {WINDOW})",
    )
    p.add_argument(
        "--stride",
        type=int,
        default=STRIDE,
        metavar="N",
        help=f"occlusion: how far the patch moves each time, pixels (default: {STRIDE})",
    )
    p.add_argument(
        "--preprocess",
        choices=("auto", "mnist", "resize", "none"),
        default="auto",
        help="as predict's (default: auto)",
    )
    p.add_argument("--json", action="store_true", help="print explanations.json's record")


def add_serve(commands: Commands) -> None:
    d, sizes = SERVE, SERVE.flag_values()  # every default from the one settings object
    p = command(
        commands, "serve", "serve a run's model over HTTP: JSON API, /docs and a drawing page"
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--host",
        default=d.host,
        help="address to listen on; anything but loopback exposes an unauthenticated server "
        f"(default: {d.host})",
    )
    p.add_argument("--port", type=int, default=d.port, help=f"TCP port (default: {d.port})")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=sizes["max_upload_mb"],
        help=f"largest request body, MiB (default: {sizes['max_upload_mb']:g})",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=d.max_batch,
        help=f"images per request and per forward pass (default: {d.max_batch})",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.max_wait_ms,
        help="how long a request waits for others to share its forward pass, ms "
        f"(default: {d.max_wait_ms:g})",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help=f"torch CPU threads, 0: torch's default (default: {d.threads})",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=d.log_level,
        help=f"uvicorn's log level; info logs every request (default: {d.log_level})",
    )
    add_no_reject(p)
    add_serve_limits(p)


def add_serve_limits(p: argparse.ArgumentParser) -> None:
    """The serve flags that bound what clients can make the server hold, and for how long."""
    d, sizes = SERVE, SERVE.flag_values()
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=sizes["max_megapixels"],
        help="largest upload, decoded, in millions of pixels "
        f"(default: {sizes['max_megapixels']:g})",
    )
    p.add_argument(
        "--max-request-megapixels",
        type=float,
        default=sizes["max_request_megapixels"],
        help="all the uploads of one request, decoded, in millions of pixels "
        f"(default: {sizes['max_request_megapixels']:g})",
    )
    p.add_argument(
        "--max-memory-mb",
        type=float,
        default=sizes["max_memory_mb"],
        help="what requests may make the server hold at once, MiB: a quarter for bodies, "
        "the rest for decoding images; requests over it wait their turn "
        f"(default: {sizes['max_memory_mb']:g})",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=d.request_timeout,
        help="seconds for a request's head, and again for its body, to arrive "
        f"(default: {d.request_timeout:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        help="open connections before new requests are answered 503 "
        f"(default: {d.max_connections})",
    )


# ----- scale: sweeps and ablations, the runs table, TensorBoard, the LR finder -----------
def add_sweep(commands: Commands) -> None:
    p = command(
        commands,
        "sweep",
        "search config keys with Optuna (--space), or run an ablation (--grid × --seeds); "
        "`mlplab sweep report SWEEP_DIR` writes its report",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["report"],
        help="report: tables, importance, best.yaml (and the ablation plot) of an existing sweep",
    )
    p.add_argument(
        "sweep_dir",
        nargs="?",
        type=Path,
        metavar="SWEEP_DIR",
        help="with report: the sweep folder (or --storage URL --study NAME)",
    )
    p.add_argument(
        "--space",
        type=Path,
        default=None,
        metavar="FILE",
        help="YAML search space: config key -> {type: float|int|categorical, low, high, log, "
        "step, choices}",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials of a search (default: 20); with --resume, queue this many more",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="ablation: run every value of KEY; several --grid make the cartesian product; "
        "list values in brackets: model.hidden=[128],[256,128]",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="runs of each grid setting, train.seed = base seed + 0, 1, ... (default: 1)",
    )
    add_sweep_study(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="with report: folder for the report files (default: the sweep folder)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also print every trial's training lines (always kept in its train.log)",
    )
    add_config_flags(p)


def add_sweep_study(p: argparse.ArgumentParser) -> None:
    """Where a sweep's study lives, and how it searches."""
    from ..sweep import PRUNERS, SAMPLERS

    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna database URL that several workers share, e.g. postgresql://user@host/db "
        "(default: study.db, SQLite, in the sweep folder)",
    )
    p.add_argument(
        "--study",
        default=None,
        metavar="NAME",
        help="study name (default: the sweep folder's name, <stamp>-<name>)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="SWEEP_DIR",
        help="work on an existing sweep: its folder, or --storage URL --study NAME from any "
        "machine",
    )
    p.add_argument(
        "--sweeps-dir",
        type=Path,
        default=SWEEPS,
        help=f"folder that holds the sweep folders; a study joined again goes on in an "
        f"earlier mlplab's {OLD_SWEEPS}/STUDY if there is one (default: {SWEEPS})",
    )
    p.add_argument(
        "--sampler",
        default=None,
        metavar="NAME",
        help=f"search sampler: {' or '.join(SAMPLERS)} (default: tpe)",
    )
    p.add_argument(
        "--pruner",
        default=None,
        metavar="NAME",
        help=f"search pruner on each epoch's validation score: {' or '.join(PRUNERS)} "
        "(default: median)",
    )
    p.add_argument(
        "--sampler-seed",
        type=int,
        default=None,
        help="seed of the search sampler in the process that creates the sweep (default: 0)",
    )


def add_runs(commands: Commands) -> None:
    p = command(
        commands,
        "runs",
        "list run directories: date, name, dataset, architecture, epochs, scores, time, status",
    )
    p.add_argument(
        "root",
        nargs="?",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder of runs (searched four levels down, so a sweep's folder works too), or "
        "one run (default: runs, its sweeps' trials included, and an earlier version's sweeps)",
    )
    p.add_argument(
        "--sort",
        default="date",
        metavar="KEY",
        help="column to sort by: date, name, dataset, architecture, epochs, val, test, time, "
        "status (default: date)",
    )
    p.add_argument("--reverse", action="store_true", help="sort in descending order")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose KEY matches VALUE (wildcards * ?), e.g. dataset=mnist, "
        "status=finished (repeatable)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the rows as JSON (raw numbers, full paths)"
    )
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--tensorboard",
        nargs="?",
        const=Path("tensorboard"),
        default=None,
        type=Path,
        metavar="OUT",
        help="also write TensorBoard event files of every listed run into OUT/<run> "
        "(default OUT: tensorboard)",
    )


def add_tensorboard(commands: Commands) -> None:
    p = command(
        commands,
        "tensorboard",
        "write TensorBoard event files of a run: curves, weight histograms, images",
    )
    p.add_argument("run_dir", type=Path, help=RUN_DIR)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the event files (default: RUN/tensorboard)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=16,
        help="test images to include, when the run's data can be reloaded; 0: none (default: 16)",
    )
    p.add_argument("--data-dir", default=None, help="where to look for the run's dataset first")


def add_lr_find(commands: Commands) -> None:
    p = command(
        commands,
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
    p.add_argument(
        "--stop-factor",
        type=float,
        default=4.0,
        help="stop once the smoothed loss exceeds this many times its best (default: 4)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=LR_FIND,
        help=f"the plot (PNG); the numbers go next to it as .json (default: {LR_FIND})",
    )
    add_config_flags(p)


# ----- flags shared by several commands --------------------------------------------------
def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """--preset, --config, --set, and one flag per config key (dest: the key itself)."""
    parser.add_argument("--preset", default=None, help=f"start from a preset: {', '.join(PRESETS)}")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML config file applied after the preset"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key, e.g. --set train.epochs=3 (repeatable; applied last)",
    )
    group = parser.add_argument_group("config keys (each flag sets the key in brackets)")
    for k in describe():
        choices = f" ({'|'.join(k.choices)})" if k.choices else ""
        help_text = f"{k.help}{choices} [{k.key}; default {k.default}]".replace("%", "%%")
        if isinstance(k.default, bool):
            group.add_argument(
                flag_name(k),
                dest=k.key,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            group.add_argument(
                flag_name(k), dest=k.key, default=None, metavar=k.name.upper(), help=help_text
            )


def add_no_reject(parser: argparse.ArgumentParser) -> None:
    """--no-reject: answer every input, without the run's rejection of unfamiliar ones."""
    parser.add_argument(
        "--no-reject",
        action="store_true",
        help="answer every input: no check against the training images (the run's rejection "
        "of unfamiliar inputs, on when the run has one)",
    )


def add_analysis_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that analyse a run: report and plot."""
    parser.add_argument(
        "--data-dir", default=None, help="where to look for the run's dataset first"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    parser.add_argument(
        "--tsne-samples", type=int, default=2000, help="points in each t-SNE map (default: 2000)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of t-SNE, samples and imagined inputs (default: 0)",
    )


def recipe_flags(args: argparse.Namespace, but: Collection[str] = ()) -> list[str]:
    """The recipe options given (config flags but the keys ``but``, --preset, --config, --set)."""
    given = [
        flag_name(k) for k in describe() if getattr(args, k.key) is not None and k.key not in but
    ]
    sources = (("--preset", args.preset), ("--config", args.config), ("--set", args.set))
    return given + [flag for flag, value in sources if value]


def flag_name(k: Key) -> str:
    """The flag of a config key: ``--lr`` for ``train.lr``, ``--runs-dir`` for ``run.dir``."""
    return FLAG_NAMES.get(k.key, "--" + k.name.replace("_", "-"))
