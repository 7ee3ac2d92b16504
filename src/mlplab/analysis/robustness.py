"""How a run's accuracy holds up under the MNIST-C corruptions: ``robustness.json``.

:func:`robustness` corrupts the run's test split (:mod:`.corruptions`, each corruption at each
severity asked for, seeded), scores every corrupted copy with the run's model and writes
``robustness.json`` into the run directory (atomically)::

    {"clean": {"accuracy": A, "rejected_fraction": R, "ece": E},
     "corruptions": {"rotate": {"1": {"accuracy": A, "rejected_fraction": R, "ece": E},
                                ..., "5": {...}}, ...},
     "mean_corruption_accuracy": M, "dataset": ..., "samples": N, "seed": S, ...}

Per cell: ``accuracy`` is the model's own (the predicted class is its argmax, as evaluate
scores it), ``rejected_fraction`` the share of images the run's rejection of unfamiliar
inputs (:mod:`mlplab.trust.rejection`) answers "not sure" for (null for a run without one,
or with ``reject=False``), ``ece`` the expected calibration error of its probabilities
calibrated by the run's temperature (:mod:`mlplab.trust.calibration`, as evaluate's ``ece``).
``mean_corruption_accuracy`` is the mean of the cells' accuracies over every corruption and
severity run (MNIST-C's figure over its 15 corruptions is the same mean at one severity).
The clean row is the split as it is (severity 0, the identity), so it equals evaluate's
test accuracy. Corruptions that mean nothing for the images' channels (:func:`.corruptions.
skip_reason`) are left out and listed under ``skipped`` with the reason.

The corrupted images depend on the test split, the corruption, the severity and ``seed``
only, so two runs of one dataset are scored on the very same images (:func:`corrupted`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset, Split
from ..data.splits import configured_splits
from ..errors import ConfigError, RunError, did_you_mean
from ..files.atomic import write_text_atomic
from ..files.jsonsafe import nan_to_null
from ..files.limits import read_text_file
from ..model import heads
from ..progress import logger
from ..run.directory import Run
from ..run.splits import run_dataset
from ..training.device import select_device
from ..trust.calibration import outputs_on, score
from ..trust.rejection import Rejector, why_off
from .corruptions import CORRUPTIONS, NAMES, SEVERITIES, corrupt, skip_reason
from .evaluate import _class_mismatch as class_mismatch

__all__ = [
    "FILE",
    "FORMAT",
    "Cell",
    "Robustness",
    "corrupted",
    "parse_corruptions",
    "parse_severities",
    "read_robustness",
    "robustness",
    "robustness_of_runs",
]

FILE = "robustness.json"
FORMAT = "mlplab-robustness-1"
MAX_BYTES = 1 << 20  # robustness.json is a few kilobytes; more is not ours


@dataclass(frozen=True)
class Cell:
    """The model on one corrupted copy of the split (or the clean one)."""

    accuracy: float
    rejected_fraction: float | None  # None: the run has no rejection (or it was turned off)
    ece: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "accuracy": self.accuracy,
            "rejected_fraction": self.rejected_fraction,
            "ece": self.ece,
        }


@dataclass(frozen=True)
class Robustness:
    """A run's robustness.json: the clean cell, a cell per corruption and severity."""

    clean: Cell
    corruptions: dict[str, dict[int, Cell]]  # name -> severity -> cell, MNIST-C's order
    dataset: str
    samples: int
    seed: int
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    rejection_off: str | None = None  # why there is no rejected fraction
    seconds: float | None = None  # wall time of the whole run
    run: str = ""

    @property
    def mean_corruption_accuracy(self) -> float:
        """The mean accuracy over every corruption and severity scored (NaN: none)."""
        values = [c.accuracy for cells in self.corruptions.values() for c in cells.values()]
        return sum(values) / len(values) if values else math.nan

    def mean_over_severities(self, name: str) -> float:
        cells = self.corruptions[name]
        return sum(c.accuracy for c in cells.values()) / len(cells)

    @property
    def severities(self) -> list[int]:
        return sorted({s for cells in self.corruptions.values() for s in cells})

    def to_dict(self) -> dict[str, Any]:
        """robustness.json's content (NaN and infinities as null)."""
        return nan_to_null(
            {
                "format": FORMAT,
                "run": self.run,
                "dataset": self.dataset,
                "samples": self.samples,
                "seed": self.seed,
                "clean": self.clean.to_dict(),
                "corruptions": {
                    name: {str(s): cell.to_dict() for s, cell in cells.items()}
                    for name, cells in self.corruptions.items()
                },
                "mean_corruption_accuracy": self.mean_corruption_accuracy,
                "skipped": dict(self.skipped),
                "rejection_off": self.rejection_off,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_dict(cls, data: Any, where: str = FILE) -> Robustness:
        """Back from :meth:`to_dict`'s shape; one RunError naming ``where`` otherwise."""
        try:
            corruptions = {
                _name(name, where): {int(s): _cell(c, where) for s, c in cells.items()}
                for name, cells in data["corruptions"].items()
            }
            return cls(
                clean=_cell(data["clean"], where),
                corruptions=corruptions,
                dataset=str(data.get("dataset", "?")),
                samples=int(data.get("samples", 0)),
                seed=int(data.get("seed", 0)),
                skipped={str(k): str(v) for k, v in (data.get("skipped") or {}).items()},
                rejection_off=data.get("rejection_off"),
                seconds=data.get("seconds"),
                run=str(data.get("run", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"{where}: not a robustness.json written by mlplab ({exc!r})") from None

    def rows(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the text table: accuracy per corruption and severity, then the
        mean accuracy, rejected fraction and ECE over the severities."""
        severities = self.severities
        header = ["corruption", *(f"s{s}" for s in severities), "mean", "rejected", "ece"]
        rows = [
            [
                "clean",
                *("" for _ in severities),
                _pct(self.clean.accuracy),
                _pct(self.clean.rejected_fraction),
                _num(self.clean.ece),
            ]
        ]
        for name, cells in self.corruptions.items():
            rejected = [c.rejected_fraction for c in cells.values()]
            mean_rejected = None if None in rejected else sum(rejected) / len(rejected)  # type: ignore[arg-type]
            rows.append(
                [
                    name,
                    *(_pct(cells[s].accuracy) if s in cells else "" for s in severities),
                    _pct(self.mean_over_severities(name)),
                    _pct(mean_rejected),
                    _num(sum(c.ece for c in cells.values()) / len(cells)),
                ]
            )
        return header, rows


def robustness(
    run_dir: str | Path,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    dataset: Dataset | str | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    reject: bool = True,
    limit: int | None = None,
    write: bool = True,
) -> Robustness:
    """Score a run's kept weights on its test split under each corruption and severity.

    ``corruptions``: names from :data:`.corruptions.NAMES` (default: all); ``severities``:
    1 to 5 (0, the identity, is the clean row, always scored). ``dataset`` scores another
    dataset's test split instead (of the run's image shape). ``limit``: the first N test
    images only (a quick look). ``reject=False`` leaves the rejected fraction out. Writes
    ``robustness.json`` into the run directory unless ``write`` is False.
    """
    return robustness_of_runs(
        [run_dir],
        corruptions=corruptions,
        severities=severities,
        seed=seed,
        dataset=dataset,
        data_dir=data_dir,
        device=device,
        reject=reject,
        limit=limit,
        write=write,
    )[0]


def robustness_of_runs(
    run_dirs: Sequence[str | Path],
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    dataset: Dataset | str | None = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    reject: bool = True,
    limit: int | None = None,
    write: bool = True,
) -> list[Robustness]:
    """:func:`robustness` for several runs of one test split, each corrupted copy drawn once
    and scored by every run (RunError when the runs' test splits differ)."""
    names = list(NAMES) if corruptions is None else [_check(name) for name in corruptions]
    levels = sorted(set(severities))
    for level in levels:
        if level not in SEVERITIES:
            raise ConfigError(f"severities must be among 1 to 5; got {level!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(  # a slice would take -5 as "all but the last 5", 0 as none
            f"limit (--limit) must be a whole number >= 1, the first N test images, or None for "
            f"all of them; got {limit!r}"
        )
    start = time.perf_counter()
    runs = [Run.open(d) for d in run_dirs]
    scorers, test, data_name = [], None, ""
    for run in runs:
        scorer, split, data_name = _prepare(run, dataset, data_dir, device, reject, limit)
        if test is not None and not (
            torch.equal(split.images, test.images) and torch.equal(split.labels, test.labels)
        ):
            raise RunError(f"run {run.path} has another test split than run {runs[0].path}")
        scorers.append(scorer)
        test = split
    if test is None:
        raise ConfigError("robustness needs at least one run directory")
    skipped = {n: why for n in names if (why := skip_reason(n, test.images.shape[1]))}
    clean = [scorer(test.images, test.labels) for scorer in scorers]
    cells: list[dict[str, dict[int, Cell]]] = [{} for _ in runs]
    kept = [n for n in names if n not in skipped]
    for name, level, images in corrupted(test.images, kept, levels, seed=seed):
        for scorer, table in zip(scorers, cells, strict=True):
            table.setdefault(name, {})[level] = cell = scorer(images, test.labels)
            logger.debug(f"robustness: {name} {level}: accuracy {cell.accuracy:.4f}")
    seconds = time.perf_counter() - start
    results = []
    for run, scorer, first, table in zip(runs, scorers, clean, cells, strict=True):
        off = None if scorer.rejector is not None or not reject else why_off(run)
        result = Robustness(
            first, table, data_name, len(test), seed, skipped, off, seconds, str(run.path)
        )
        if write:
            text = json.dumps(result.to_dict(), indent=2, allow_nan=False)
            write_text_atomic(run.path / FILE, text + "\n")
        results.append(result)
    return results


def _prepare(
    run: Run,
    dataset: Dataset | str | None,
    data_dir: str | Path | None,
    device: str,
    reject: bool,
    limit: int | None,
) -> tuple[_Scorer, Split, str]:
    """A run's scorer, its test split (on the CPU, the first ``limit``) and its data's name."""
    if run.model_info().get("task", "classification") != "classification":
        raise RunError(
            f"run {run.path} is a regression: robustness scores a classifier's accuracy under "
            "corrupted images"
        )
    config = run.config()
    model, normalization, classes = run.load_model(select_device(device))
    data = run_dataset(run, dataset=dataset, data_dir=data_dir, same_data=False)
    class_mismatch(run, data, list(classes), allow=False)  # another dataset's other classes
    _, _, test = configured_splits(data, config.data)
    test = Split(test.images[:limit].cpu(), test.labels[:limit].cpu())
    if len(test) == 0:
        raise RunError(f"run {run.path} has no test images to corrupt")
    rejector = Rejector.load(run) if reject else None
    scorer = _Scorer(
        model, normalization, run.temperature(), rejector, config.train.eval_batch_size
    )
    return scorer, test, data.name


def corrupted(
    images: torch.Tensor, names: Sequence[str], severities: Sequence[int], *, seed: int = 0
) -> Iterator[tuple[str, int, torch.Tensor]]:
    """``(name, severity, images corrupted)`` for each pair, one corrupted copy at a time (a
    benchmark scoring several runs of one dataset draws each copy once)."""
    for name in names:
        for level in severities:
            yield name, level, corrupt(images, name, level, seed=seed)


def read_robustness(run_dir: str | Path) -> Robustness | None:
    """A run's ``robustness.json``, or None when it has none (RunError when it is damaged)."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return None
    text = read_text_file(path, MAX_BYTES, "robustness file", error=RunError)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RunError(f"{path}: cannot read robustness.json ({exc})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not robustness.json (a JSON object is expected)")
    return Robustness.from_dict(data, str(path))


def parse_severities(text: str) -> list[int]:
    """``"1-5"``, ``"3"`` or ``"1,3,5"`` -> the severities (ConfigError naming the form)."""
    wrong = ConfigError(f"--severities must be 1 to 5 as N, N-M or N,M,...; got {text!r}")
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            levels = list(range(low, high + 1))
        else:
            levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise wrong from None
    if not levels or any(level not in SEVERITIES for level in levels):
        raise wrong
    return sorted(set(levels))


def parse_corruptions(text: str) -> list[str]:
    """``"rotate,shear"`` -> the names (ConfigError for an unknown one, with the list)."""
    return [_check(name.strip().replace("-", "_")) for name in text.split(",") if name.strip()]


# ----- helpers ---------------------------------------------------------------------------
class _Scorer:
    """Accuracy, rejected fraction and ECE of one model on batches of uint8 images."""

    def __init__(
        self,
        model: Any,
        normalization: Any,
        temperature: float,
        rejector: Rejector | None,
        batch_size: int,
    ) -> None:
        self.model, self.rejector, self.batch = model, rejector, batch_size
        self.scale, self.offset = normalization.affine(next(model.parameters()).device)
        self.temperature = temperature

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> Cell:
        split = Split(images, labels)
        outputs, labels = outputs_on(
            self.model, split, self.scale, self.offset, batch_size=self.batch
        )
        hit = outputs.argmax(1) == labels
        logits = heads.to_logits(self.model.head, outputs)
        rejected = None
        if self.rejector is not None:
            verdict = self.rejector.score(self.model, images)
            rejected = float(verdict.rejected.sum()) / len(images)
        return Cell(
            accuracy=int(hit.sum()) / len(labels),
            rejected_fraction=rejected,
            ece=score(logits, labels, self.temperature).ece,
        )


def _check(name: str) -> str:
    if name not in CORRUPTIONS:
        raise ConfigError(
            f"corruption must be one of {', '.join(NAMES)}; got {name!r}{did_you_mean(name, NAMES)}"
        )
    return name


def _name(name: str, where: str) -> str:
    if name not in CORRUPTIONS:
        raise RunError(f"{where}: unknown corruption {name!r}")
    return name


def _cell(data: Any, where: str) -> Cell:
    rejected = data.get("rejected_fraction")
    return Cell(
        accuracy=_float(data["accuracy"]),
        rejected_fraction=None if rejected is None else float(rejected),
        ece=_float(data.get("ece")),
    )


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2%}"


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"
