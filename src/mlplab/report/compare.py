"""Several runs side by side: a table of results, overlaid curves, weight statistics.

Works from the run directories alone (``summary.json``, ``metrics.jsonl``, the weights):
no data is reloaded, so comparing is quick whatever the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import figures as F
from ..analysis.curves import Curves, curves
from ..analysis.robustness import Robustness, read_robustness
from ..analysis.weights import LayerWeights, layer_weights
from ..errors import ConfigError
from ..files.atomic import check_outputs, is_page, os_errors
from ..model.mlp import MLP, alignment
from ..notebook.cards import comparison_card
from ..notebook.svg import Curves as Curve
from ..run.directory import Run
from ..run.outputs import COMPARE as OUT  # runs/compare: the one output root (run.outputs)
from ..tables import format_table
from .page import Figure, Page, Section, paragraph, table

__all__ = ["Comparison", "check_out", "compare", "compare_runs"]

COMPARE = "compare.html"
# the page's figures, figures/<name>.png (compare-robustness: when a run has robustness.json)
FIGURES = ("compare-curves", "compare-weights", "compare-robustness")
KEPT_NOTE = (
    "kept: the epoch whose weights were kept (train.select); test figures are those weights on "
    "the test split."
)
CURVES_CAPTION = (
    "Each run has one colour: validation solid (its kept epoch marked with a dot), training "
    "dashed. The run whose solid curves sit lowest (loss) or highest (accuracy) generalizes "
    "best; a wide solid-dashed gap means overfitting."
)
WEIGHTS_CAPTION = (
    "Each layer's weights as a density, one colour per run, layers matched by position; "
    "narrower and smaller-norm weights usually mean more regularization."
)
ROBUSTNESS_CAPTION = (
    "Accuracy against severity (0: the clean test split) under each MNIST-C corruption, one "
    "colour per run, from each run's robustness.json (`mlplab robustness RUN`; runs without "
    "one are left out). Runs of one dataset and seed are scored on the very same corrupted "
    "images. mCA in the table: the mean corruption accuracy over every corruption and severity."
)
COLUMNS = (  # (key, header, format)
    ("dataset", "dataset", "{}"),
    ("model", "model", "{}"),
    ("parameters", "params", "{:,}"),
    ("recipe", "recipe", "{}"),
    ("epochs", "epochs", "{}"),
    ("best_epoch", "kept", "{}"),
    ("best_val_accuracy", "val acc", "{:.2%}"),
    ("test_accuracy", "test acc", "{:.2%}"),
    ("test_loss", "test loss", "{:.4f}"),
    ("train_seconds", "train s", "{:.2f}"),
    ("mean_corruption_accuracy", "mCA", "{:.2%}"),
)


@dataclass(frozen=True)
class Comparison:
    """The numbers behind a comparison: one row, curves and weight statistics per run."""

    names: tuple[str, ...]
    rows: list[dict[str, Any]]
    curves: list[Curves]
    weights: dict[str, list[LayerWeights]]
    robustness: dict[str, Robustness] = field(default_factory=dict)  # runs that have one

    def results(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the results table, one row per run, formatted."""
        header = ["run", *(h for _, h, _ in COLUMNS)]
        return header, [[r["run"], *(_cell(r.get(k), f) for k, _, f in COLUMNS)] for r in self.rows]

    def weight_statistics(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows): each layer's shape, mean, std, min, max and L2 norm, one column
        per run, layers matched by position."""
        depth = max(len(v) for v in self.weights.values())
        rows = []
        for i in range(depth):
            for stat in ("shape", "mean", "std", "min", "max", "l2"):
                label = f"layer {i + 1}" if stat == "shape" else f"  {stat}"
                cells = [_stat(self.weights[n], i, stat) for n in self.names]
                rows.append([label, *cells])
        return ["layer", *self.names], rows

    def table(self) -> str:
        """The results as a fixed-width text table, one run per line."""
        return format_table(*self.results()).rstrip("\n")

    def weight_table(self) -> str:
        """The weight statistics as a fixed-width text table, runs side by side."""
        return format_table(*self.weight_statistics()).rstrip("\n")

    def _repr_html_(self) -> str:
        """A notebook's view: the results table and everyone's curves overlaid."""
        runs = [
            Curve(
                c.name,
                c.epochs.tolist(),
                *(_listed(a) for a in (c.train_loss, c.val_loss, c.train_accuracy, c.val_accuracy)),
                c.best_epoch,
            )
            for c in self.curves
        ]
        return comparison_card(*self.results(), runs, note=KEPT_NOTE)


def compare_runs(run_dirs: Sequence[str | Path]) -> Comparison:
    """Read each run's summary, history and weights (no data is loaded)."""
    if len(run_dirs) < 1:
        raise ConfigError("compare needs at least one run directory (two or more to compare)")
    runs = [Run.open(d) for d in run_dirs]
    names = _names([r.path for r in runs])
    rows, all_curves, weights, robust = [], [], {}, {}
    for name, run in zip(names, runs, strict=True):
        model, _, _ = run.load_model("cpu")
        rows.append(_row(name, run, model))
        all_curves.append(curves(run.metrics(), run.summary(), name))
        weights[name] = layer_weights(model)
        if (measured := read_robustness(run.path)) is not None:
            robust[name] = measured
            rows[-1]["mean_corruption_accuracy"] = measured.mean_corruption_accuracy
    return Comparison(tuple(names), rows, all_curves, weights, robust)


def compare(runs: Sequence[str | Path] | Comparison, out: str | Path = OUT) -> Path:
    """Write ``compare.html`` (and ``figures/``) about ``runs`` (run directories, or the
    :class:`Comparison` of :func:`compare_runs`) into the folder ``out``; return its path.

    Replaces only an earlier compare page there (and its figures): any other file with those
    names (e.g. a run's report figures, with ``out`` a run directory), or anything but a
    regular file, is refused before any work (WriteError).
    """
    path = Path(out) / COMPARE
    _check_out(path)
    c = runs if isinstance(runs, Comparison) else compare_runs(runs)
    page = Page(f"Comparing {len(c.names)} runs", ", ".join(c.names))
    page.sections = _sections(c)
    _check_out(path)
    with os_errors(path, "choose another --out"):  # a full disk: one line
        return page.write(path)


def check_out(out: str | Path = OUT) -> None:
    """Refuse (WriteError) an ``out`` folder that :func:`compare` would refuse, before any work."""
    _check_out(Path(out) / COMPARE)


def _check_out(path: Path) -> None:
    """``path`` may take compare.html, and its folder the figures (see check_outputs)."""
    figures = [path.parent / "figures" / f"{name}.png" for name in FIGURES]
    check_outputs(path, figures, ours=is_page, ours_is="an earlier mlplab page")


# ----- helpers -------------------------------------------------------------------------
def _row(name: str, run: Run, model: MLP) -> dict[str, Any]:
    """One run's row of the results table (the keys of COLUMNS, unformatted)."""
    summary, train = run.summary(), run.config().train
    kind = model.activation if model.hidden_sizes else "linear"
    widths = "-".join(map(str, model.widths))
    return {
        "run": name,
        "path": str(run.path),
        "dataset": summary.get("dataset", "?"),
        "model": " ".join([widths, kind, *alignment(model.deskew, model.center, model.tta)]),
        "parameters": model.num_parameters,
        "recipe": f"{train.optimizer} lr {train.lr:g} bs {train.batch_size}",
        "epochs": summary.get("epochs_run", len(run.metrics())),
        "best_epoch": summary.get("best_epoch"),
        "best_val_accuracy": summary.get("best_val_accuracy"),
        "test_accuracy": summary.get("test_accuracy"),
        "test_loss": summary.get("test_loss"),
        "train_seconds": summary.get("train_seconds"),
    }


def _sections(c: Comparison) -> list[Section]:
    """The page: the results table, the overlaid curves, the weights."""
    curves_png = F.save_png(F.compare_curves_figure(c.curves), None)
    weights_png = F.save_png(F.compare_weights_figure(c.weights), None)
    curves = Figure(FIGURES[0], "Loss and accuracy per epoch, all runs", CURVES_CAPTION, curves_png)
    weights = Figure(
        FIGURES[1], "Weight distributions per layer, all runs", WEIGHTS_CAPTION, weights_png
    )
    sections = [
        Section("Results", [table(*c.results()), paragraph(KEPT_NOTE)]),
        Section("Curves", [curves]),
        Section("Weights", [weights, table(*c.weight_statistics())]),
    ]
    if c.robustness:
        png = F.save_png(F.robustness_figure(c.robustness), None)
        title = "Accuracy under the MNIST-C corruptions, all runs"
        figure = Figure(FIGURES[2], title, ROBUSTNESS_CAPTION, png)
        sections.append(Section("Robustness", [figure]))
    return sections


def _names(paths: list[Path]) -> list[str]:
    """Each run's folder name, or more of its path where two would read the same."""
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def _stat(layers: list[LayerWeights], i: int, stat: str) -> str:
    """Layer ``i``'s statistic ``stat`` as a cell ("-" where the run has no such layer)."""
    if i >= len(layers):
        return "-"
    cells = layers[i].cells()
    return f"{layers[i].name} {cells['shape']}" if stat == "shape" else cells[stat]


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _listed(values: Any) -> list[float | None]:
    """An array of a curve as a list, NaN (not recorded) as None."""
    return [None if v != v else float(v) for v in values.tolist()]
