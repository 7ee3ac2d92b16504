"""Every figure draws from small hand-made numbers, at its size, without a warning, and saves
as a PNG of that size; a function anywhere in src/mlplab that returns a matplotlib Figure
without a row in CASES fails :func:`test_every_figure_function_has_a_case`.

Figures are built without pyplot: they render on the Agg canvas whatever the backend."""

from __future__ import annotations

import ast
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import make_images

from mlplab import MLP, Config, train
from mlplab.analysis import confusion, first_layer, layer_weights
from mlplab.analysis import figures as F
from mlplab.analysis.confusion import Confusion
from mlplab.analysis.curves import Curves
from mlplab.analysis.dataset import Correlations
from mlplab.analysis.explanations import Explanations
from mlplab.analysis.figures import base
from mlplab.analysis.imagine import Imagined
from mlplab.analysis.mistakes import Picked
from mlplab.analysis.rejection import EDGES, Rejection, ScoredSet
from mlplab.analysis.representations import Embedding
from mlplab.analysis.robustness import Cell, Robustness
from mlplab.analysis.weights import FirstLayer
from mlplab.errors import ConfigError
from mlplab.report.explore import EXPLORE_FIGURES, DatasetExploration
from mlplab.report.run_report import FIGURES, RunAnalysis
from mlplab.training.lr_find import LRFind
from mlplab.trust.calibration import Scores, score
from mlplab.trust.deletion import Deletion

SRC = Path(__file__).resolve().parents[2] / "src"
PNG = b"\x89PNG\r\n\x1a\n"


# ----- hand-made numbers ------------------------------------------------------------------
def make_curves(
    epochs: int = 3, validation: bool = True, best: int | None = 2, name: str = "run"
) -> Curves:
    e = np.arange(1, epochs + 1)
    val = (1 / e) if validation else np.full(epochs, np.nan)
    return Curves(
        epochs=e.astype(np.int64),
        train_loss=1.2 / e,
        val_loss=val,
        train_accuracy=1 - 0.5 / e,
        val_accuracy=1 - val / 2,
        lr=np.full(epochs, 1e-3),
        best_epoch=best,
        test_loss=0.4 if best else None,
        test_accuracy=0.9 if best else None,
        name=name,
    )


def make_confusion(k: int = 4) -> Confusion:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(k), 5)
    predicted = np.where(rng.random(len(labels)) < 0.7, labels, rng.integers(0, k, len(labels)))
    return confusion(labels, predicted, tuple(f"c{i}" for i in range(k)))


def make_picked(
    n: int = 5, k: int = 4, shape: tuple[int, ...] = (1, 8, 8), right: int = 0
) -> Picked:
    """``n`` samples, the first ``right`` of them predicted right."""
    rng = np.random.default_rng(1)
    labels = np.arange(n) % k
    predicted = np.where(np.arange(n) < right, labels, (labels + 1) % k)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), predicted] += 3  # the predicted class is the most likely
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Picked(
        indices=np.arange(n, dtype=np.int64),
        images=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
        labels=labels.astype(np.int64),
        predicted=predicted.astype(np.int64),
        probabilities=probabilities.astype(np.float32),
        log_probabilities=np.log(probabilities).astype(np.float32),
        classes=tuple(f"class {i}" for i in range(k)),
    )


def make_embedding(
    layer: str = "logits", method: str = "pca", k: int = 4, n: int = 40
) -> Embedding:
    rng = np.random.default_rng(2)
    variance = (0.6, 0.3) if method == "pca" else ()
    return Embedding(
        method,
        layer,
        rng.normal(size=(n, 2)),
        np.arange(n) % k,
        np.arange(n),
        tuple(f"c{i}" for i in range(k)),
        variance,
    )


def empty_embedding() -> Embedding:
    note = "a logistic regression has no hidden layer"
    points, none = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return Embedding("pca", "hidden", points, none, none, ("c0", "c1"), note=note)


def make_first(units: int = 4, shape: tuple[int, ...] = (1, 5, 5)) -> FirstLayer:
    weights = np.random.default_rng(3).normal(size=(units, *shape)).astype(np.float32)
    names = tuple(f"unit {u}" for u in range(units))
    return FirstLayer(weights, np.arange(units), names, np.ones(units), "hidden.0")


def make_weights(hidden: list[int]) -> list:
    torch.manual_seed(0)
    return layer_weights(MLP((1, 8, 8), hidden, 4))


def make_imagined(method: str, k: int = 4) -> Imagined:
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet(np.ones(k), size=k).astype(np.float32)
    images = rng.random((k, 1, 8, 8)).astype(np.float32)
    classes = tuple(f"c{i}" for i in range(k))
    return Imagined(method, images, np.arange(k), probabilities, classes, {"seed": 0})


def no_imagined() -> Imagined:
    return Imagined(
        "random",
        np.zeros((0, 1, 8, 8)),
        np.zeros(0, np.int64),
        np.zeros((0, 4)),
        ("a", "b", "c", "d"),
        {},
    )


def make_correlations() -> Correlations:
    rng = np.random.default_rng(5)
    return Correlations(rng.uniform(0.2, 0.9, 45), rng.uniform(-0.3, 0.6, 45), 1, 10)


def make_calibration(n: int = 200) -> tuple[Scores, Scores]:
    """An overconfident classifier's test split, before and after a temperature of 2."""
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(n, 4, generator=g) * 4
    labels = torch.where(
        torch.rand(n, generator=g) < 0.8, logits.argmax(1), torch.randint(0, 4, (n,), generator=g)
    )
    return score(logits, labels), score(logits, labels, 2.0)


def make_rejection(sets: int = 8, off: str | None = None) -> Rejection:
    """A test split whose scores spread evenly (ranks), and ``sets`` sets piled near 1."""
    if off is not None:
        return Rejection(None, None, None, (), off=off)
    rng = np.random.default_rng(7)

    def scored(name: str, scores: np.ndarray, area: float | None) -> ScoredSet:
        rejected = scores > 0.98
        counts = np.histogram(scores, bins=EDGES)[0]
        reasons = {"unlike the training images": int(rejected.sum())} if rejected.any() else {}
        return ScoredSet(name, "synthetic", scores, rejected, reasons, counts, area)

    inside = scored("test split", rng.random(500).astype(np.float32), None)
    outside = tuple(
        scored(f"set {i}", (1 - rng.random(100) ** (i + 2) * 0.3).astype(np.float32), 0.9)
        for i in range(sets)
    )
    return Rejection(0.98, 0.98, inside, outside)


def make_robustness(names: int = 15, drop: float = 0.1) -> Robustness:
    """``names`` corruptions, each losing ``drop`` of accuracy per severity."""
    from mlplab.analysis.corruptions import NAMES

    def cell(a: float) -> Cell:
        return Cell(a, 0.1, 0.05)

    table = {n: {s: cell(0.98 - drop * s * (i + 1) / names) for s in range(1, 6)}
             for i, n in enumerate(NAMES[:names])}  # fmt: skip
    return Robustness(cell(0.98), table, "digits", 100, 0)


def make_explanations(mistakes: int = 3, classes: int = 4, off: str | None = None) -> Explanations:
    """``mistakes`` explained mistakes and ``classes`` class means on 8x8 images."""
    if off is not None:
        return Explanations(off=off)
    g = np.random.default_rng(0)
    f = np.linspace(0, 1, 21)
    return Explanations(
        images=g.integers(0, 256, (mistakes, 1, 8, 8)).astype(np.uint8),
        maps=g.normal(size=(mistakes, 8, 8)).astype(np.float32),
        true=("a",) * mistakes, predicted=("b",) * mistakes, probability=(0.9,) * mistakes,
        classes=tuple(f"c{k}" for k in range(classes)),
        class_means=g.normal(size=(classes, 8, 8)).astype(np.float32),
        class_counts=(20,) * classes,
        deletion=Deletion("integrated-gradients", 80, f, 0.9 - 0.8 * f**0.2, 0.9 - 0.8 * f**3),
    )  # fmt: skip


def lr_figure(result: LRFind) -> object:
    from mlplab.report.lr_find import lr_find_figure  # here: it is moving while this is written

    return lr_find_figure(result)


def make_lr_find() -> LRFind:
    lrs = list(np.geomspace(1e-5, 1, 30))
    losses = [2.3 - 0.5 * np.log10(lr / 1e-5) / 5 if lr < 0.1 else 5.0 for lr in lrs]
    setup = {
        "dataset": "digits",
        "model": "64-16-10",
        "steps": 30,
        "optimizer": "adam",
        "batch_size": 64,
    }
    return LRFind(lrs, losses, losses, 1e-2, "steepest descent", 1e-2, 0.05, "loss diverged", setup)


def sweep_figure(regression: bool = False) -> object:
    """The ablation figure of a hand-made 3 x 2 grid, two seeds each (sweep is imported here:
    it moves while the rest of the figures stay put)."""
    from mlplab.sweep.report import AblationRow, SweepReport, ablation_figure

    rows = []
    for lr in (1e-3, 1e-2, 1e-1):
        for hidden in ("[16]", "[32]"):
            values = (0.8 + lr, 0.82 + lr)
            stats = (
                float(np.mean(values)),
                float(np.std(values, ddof=1)),
                min(values),
                max(values),
            )
            rows.append(
                AblationRow(
                    {"train.lr": lr, "model.hidden": hidden}, 2, 2, stats, stats, values, values
                )
            )
    keys = ["train.lr", "model.hidden"]
    report = SweepReport(
        name="grid",
        path=Path("sweep"),
        kind="grid",
        regression=regression,
        keys=keys,
        trials=[],
        requested=12,
        counts={"complete": 12},
        best=None,
        best_config=None,
        ablation=rows,
    )
    return ablation_figure(report)


# ----- the table: every figure function, with the size and axes it must have ----------------
@dataclass(frozen=True)
class Case:
    id: str
    function: str  # "module:qualname", as the source scan names it
    draw: Callable[[], object]
    inches: tuple[float, float]  # width, height
    axes: int  # every Axes of the figure, hidden ones and colour bars included


def case(function: str, id: str, draw: Callable[[], object], inches: tuple, axes: int) -> Case:
    return Case(id, function, draw, inches, axes)


FIG = "mlplab.analysis.figures."
# A table, aligned by hand: one case (or two lines) per row reads better than the formatter's
# five lines per call.
CASES = [
    case(FIG + "base:new_figure", "blank", lambda: F.new_figure(3, 2), (3, 2), 0),
    case(FIG + "base:empty_figure", "nothing", lambda: base.empty_figure("none"), (6, 1.5), 0),
    case(FIG + "base:empty", "text", lambda: base.empty(F.new_figure(4, 1), "x"), (4, 1), 0),
    case(FIG + "curves:curves_figure", "3-epochs", lambda: F.curves_figure(make_curves()), (10, 3.8), 2),
    case(FIG + "curves:curves_figure", "25-epochs-no-val",
         lambda: F.curves_figure(make_curves(25, validation=False, best=None)), (10, 3.8), 2),
    case(FIG + "curves:curves_figure", "no-epochs", lambda: F.curves_figure(make_curves(0, best=None)),
         (10, 3.8), 0),
    case(FIG + "curves:compare_curves_figure", "two-runs",
         lambda: F.compare_curves_figure([make_curves(), make_curves(4, False, None, "b")]),
         (11, 4.2), 2),
    case(FIG + "confusion:confusion_figure", "4-classes", lambda: F.confusion_figure(make_confusion()),
         (5.7, 4.5), 2),
    case(FIG + "confusion:confusion_figure", "25-classes",
         lambda: F.confusion_figure(make_confusion(25)), (12.2, 11), 2),
    case(FIG + "confusion:per_class_figure", "4-classes", lambda: F.per_class_figure(make_confusion()),
         (6, 3.6), 1),
    case(FIG + "confusion:per_class_figure", "45-classes",
         lambda: F.per_class_figure(make_confusion(45)), (16, 3.6), 1),
    case(FIG + "calibration:reliability_figure", "before-after",
         lambda: F.reliability_figure(*make_calibration()), (10, 5.2), 4),
    case(FIG + "calibration:reliability_figure", "no-samples",
         lambda: F.reliability_figure(*make_calibration(0)), (6, 1.5), 0),
    case(FIG + "rejection:rejection_figure", "8-sets",
         lambda: F.rejection_figure(make_rejection()), (12.4, 5.4), 8),
    case(FIG + "rejection:rejection_figure", "7-sets-one-hidden",
         lambda: F.rejection_figure(make_rejection(7)), (12.4, 5.4), 8),
    case(FIG + "rejection:rejection_figure", "2-sets",
         lambda: F.rejection_figure(make_rejection(2)), (6.2, 2.9), 2),
    case(FIG + "rejection:rejection_figure", "off",
         lambda: F.rejection_figure(make_rejection(off="rejection off: an older run")), (6, 1.5), 0),
    case(FIG + "rejection:rejection_figure", "no-sets",
         lambda: F.rejection_figure(make_rejection(0)), (6, 1.5), 0),
    case(FIG + "robustness:robustness_figure", "15-corruptions",
         lambda: F.robustness_figure(make_robustness()), (12.5, 6.2), 15),
    case(FIG + "robustness:robustness_figure", "2-runs-3-corruptions",
         lambda: F.robustness_figure({"a": make_robustness(3), "b": make_robustness(2, 0.2)}),
         (7.5, 2.4), 3),
    case(FIG + "robustness:robustness_figure", "none",
         lambda: F.robustness_figure(make_robustness(0)), (6, 1.5), 0),
    case(FIG + "explanations:explanations_figure", "3-mistakes-4-classes",
         lambda: F.explanations_figure(make_explanations()), (6.0, 5.57), 9),
    case(FIG + "explanations:explanations_figure", "12-classes-no-mistakes",
         lambda: F.explanations_figure(make_explanations(0, 12)), (11.0, 4.085), 11),
    case(FIG + "explanations:explanations_figure", "off",
         lambda: F.explanations_figure(make_explanations(off="needs captum")), (6, 1.5), 0),
    case(FIG + "mistakes:mistakes_figure", "5", lambda: F.mistakes_figure(make_picked()), (4.05, 3.68), 6),
    case(FIG + "mistakes:mistakes_figure", "none", lambda: F.mistakes_figure(make_picked(0)), (6, 1.5), 0),
    case(FIG + "mistakes:samples_figure", "5-rgb",
         lambda: F.samples_figure(make_picked(5, shape=(3, 6, 10), right=3)), (5.75, 1.33), 5),
    case(FIG + "mistakes:samples_figure", "none", lambda: F.samples_figure(make_picked(0)), (6, 1.5), 0),
    case(FIG + "mistakes:probabilities_figure", "2x4",
         lambda: F.probabilities_figure(make_picked(2)), (11, 4.1), 6),
    case(FIG + "mistakes:probabilities_figure", "1x25-top-20",
         lambda: F.probabilities_figure(make_picked(1, k=25)), (11, 2.2), 3),
    case(FIG + "mistakes:probabilities_figure", "none",
         lambda: F.probabilities_figure(make_picked(0)), (6, 1.5), 0),
    case(FIG + "representations:embedding_figure", "pca-and-empty",
         lambda: F.embedding_figure({"logits": make_embedding(), "hidden": empty_embedding()}),
         (12, 5.6), 2),
    case(FIG + "representations:embedding_figure", "tsne-25-classes",
         lambda: F.embedding_figure([make_embedding("hidden", "tsne", k=25, n=100)]), (6, 5.6), 1),
    case(FIG + "weights:first_layer_figure", "gray", lambda: F.first_layer_figure(make_first()),
         (2.5, 3.14), 4),
    case(FIG + "weights:first_layer_figure", "rgb",
         lambda: F.first_layer_figure(make_first(shape=(3, 6, 10))), (2.5, 2.14), 4),
    case(FIG + "weights:first_layer_figure", "channels",
         lambda: F.first_layer_figure(make_first(shape=(3, 6, 10)), mode="channels"), (7.5, 2.14), 12),
    case(FIG + "weights:first_layer_figure", "no-units",
         lambda: F.first_layer_figure(make_first(0)), (6, 1.5), 0),
    case(FIG + "weights:weight_histograms_figure", "3-layers",
         lambda: F.weight_histograms_figure(make_weights([16, 12])), (12.6, 3.2), 3),
    case(FIG + "weights:weight_histograms_figure", "4-layers",
         lambda: F.weight_histograms_figure(make_weights([16, 12, 8])), (12.6, 6.4), 6),
    case(FIG + "weights:compare_weights_figure", "2-and-3-layers",
         lambda: F.compare_weights_figure({"a": make_weights([16]), "b": make_weights([16, 8])}),
         (13.2, 3.8), 3),
    case(FIG + "imagine:imagine_figure", "two-methods",
         lambda: F.imagine_figure(make_imagined("random"), make_imagined("ascent")), (4.6, 2.94), 8),
    case(FIG + "imagine:imagine_figure", "12-classes-wrap",
         lambda: F.imagine_figure(make_imagined("ascent", 12)), (11.5, 2.94), 20),
    case(FIG + "imagine:imagine_figure", "nothing", lambda: F.imagine_figure(no_imagined()), (6, 1.5), 0),
    case(FIG + "dataset:class_counts_figure", "train-and-test",
         lambda: F.class_counts_figure(np.array([5, 7, 3, 9]), np.array([1, 2, 1, 3]), "abcd"),
         (6, 3.4), 1),
    case(FIG + "dataset:class_counts_figure", "train-only",
         lambda: F.class_counts_figure(np.arange(30) + 1, None, [f"k{i}" for i in range(30)]),
         (14, 3.4), 1),
    case(FIG + "dataset:class_samples_figure", "4x3-with-a-gap",
         lambda: F.class_samples_figure(make_picked(20).images, np.array(
             [[0, 1, 2], [3, 4, 5], [6, 7, -1], [8, 9, 10]]), "abcd"), (3.9, 3.9), 12),
    case(FIG + "dataset:class_means_figure", "rgb",
         lambda: F.class_means_figure(np.full((4, 3, 6, 10), 128.0), "abcd"), (5, 1.22), 4),
    case(FIG + "dataset:intensity_figure", "gray",
         lambda: F.intensity_figure(np.arange(256)[None] + 1), (7, 3.4), 1),
    case(FIG + "dataset:intensity_figure", "rgb",
         lambda: F.intensity_figure(np.ones((3, 256), np.int64)), (7, 3.4), 1),
    case(FIG + "dataset:intensity_figure", "2-channels",
         lambda: F.intensity_figure(np.ones((2, 256), np.int64)), (7, 3.4), 1),
    case(FIG + "dataset:correlations_figure", "one-class",
         lambda: F.correlations_figure(make_correlations(), "abcd"), (7, 3.4), 1),
    case("mlplab.report.lr_find:lr_find_figure", "range-test", lambda: lr_figure(make_lr_find()),
         (7, 4.2), 1),
    case("mlplab.sweep.report:ablation_figure", "lr-by-hidden", lambda: sweep_figure(),
         (10, 4), 2),
    case("mlplab.sweep.report:ablation_figure", "regression",
         lambda: sweep_figure(regression=True), (10, 4), 2),
]  # fmt: skip

# The report's and the explore page's figures by name: drawn from a run and a dataset below.
BY_NAME = {
    "mlplab.report.run_report:RunAnalysis.figure",
    "mlplab.report.explore:DatasetExploration.figure",
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return struct.unpack(">II", data[16:24])


def check_figure(figure: object, inches: tuple[float, float], axes: int | None) -> None:
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    assert tuple(figure.get_size_inches()) == pytest.approx(inches)
    if axes is not None:
        assert len(figure.axes) == axes
    width, height = png_size(F.save_png(figure, None))
    assert abs(width - inches[0] * 100) <= 1 and abs(height - inches[1] * 100) <= 1


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("c", CASES, ids=[f"{c.function.split(':')[1]}-{c.id}" for c in CASES])
def test_figure_renders_at_its_size_without_warnings(c: Case) -> None:
    check_figure(c.draw(), c.inches, c.axes)


# ----- every figure function has a case -----------------------------------------------------
def figure_functions() -> set[str]:
    """Every function in src/mlplab annotated to return matplotlib's Figure (under any name
    its module imports it as), as "module:qualname"."""
    found = set()
    for path in (SRC / "mlplab").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "matplotlib.figure"
            for alias in node.names
            if alias.name == "Figure"
        }
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found |= {f"{module}:{q}" for q in _returning(tree, names)}
    return found


def _returning(tree: ast.Module, names: set[str], prefix: str = "") -> list[str]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found += _returning(node, names, f"{prefix}{node.name}.")  # type: ignore[arg-type]
        elif isinstance(node, ast.FunctionDef) and _annotation(node) in names:
            found.append(prefix + node.name)
    return found


def _annotation(node: ast.FunctionDef) -> str:
    return ast.unparse(node.returns).strip("'\"") if node.returns is not None else ""


def test_every_figure_function_has_a_case() -> None:
    functions = figure_functions()
    assert {f"{FIG}curves:curves_figure", "mlplab.report.lr_find:lr_find_figure"} <= functions
    exported = {  # by introspection: each figure the package exports, where it is defined
        f"{getattr(F, n).__module__}:{n}" for n in F.__all__ if n.endswith("_figure")
    }
    assert len(exported) >= 17 and exported <= functions  # the scan sees them all
    covered = {c.function for c in CASES} | BY_NAME
    assert sorted(functions - covered) == [], "a figure function without a row in CASES"
    assert sorted(covered - functions) == [], "a row in CASES names no figure function"


def test_the_package_exports_each_figure_function() -> None:
    """``from mlplab.analysis import figures as F`` reaches every figure of the package."""
    ours = {f.split(":")[1] for f in figure_functions() if f.startswith(FIG) and "_figure" in f}
    assert ours - {"empty_figure"} <= set(F.__all__)
    for name in F.__all__:
        assert getattr(F, name) is not None


# ----- what some figures draw ------------------------------------------------------------------
def test_first_layer_rgb_and_per_channel() -> None:
    torch.manual_seed(0)
    first = first_layer(MLP((3, 6, 10), [12], 3), n=4)
    rgb = F.first_layer_figure(first)
    channels = F.first_layer_figure(first, mode="channels")
    assert len([ax for ax in rgb.axes if ax.images]) == 4
    assert len([ax for ax in channels.axes if ax.images]) == 12  # 4 units x 3 channels
    shown = next(ax for ax in rgb.axes if ax.images).images[0].get_array()
    assert shown.shape == (6, 10, 3) and shown.min() >= 0 and shown.max() <= 1  # per-unit min-max
    with pytest.raises(ConfigError, match="must be one of auto, rgb, channels; got 'hsv'"):
        F.first_layer_figure(first, mode="hsv")


def test_png_bytes_and_atomic_file(tmp_path) -> None:
    figure = F.intensity_figure(np.ones((1, 256), dtype=np.int64))
    data = F.save_png(figure, tmp_path / "i.png")
    assert data.startswith(PNG) and (tmp_path / "i.png").read_bytes() == data
    assert type(figure).__module__ == "matplotlib.figure"


def test_probability_bars_keep_the_true_class_beyond_the_top() -> None:
    picked = make_picked(1, k=25)
    picked.probabilities[0, 0] = 0.0  # the true class (0) is the least likely of all
    figure = F.probabilities_figure(picked, top=5)
    bars = figure.axes[1].patches
    labels = [t.get_text() for t in figure.axes[1].get_xticklabels()]
    assert len(bars) == 5 and labels[0] == "class 0"  # in class order, the true one first
    assert bars[0].get_facecolor()[:3] == pytest.approx((0x1A / 255, 0x7F / 255, 0x37 / 255))


def test_confusion_counts_are_written_in_non_empty_cells() -> None:
    c = make_confusion()
    texts = [t.get_text() for t in F.confusion_figure(c).axes[0].texts]
    assert sorted(map(int, texts)) == sorted(c.counts[c.counts > 0].tolist())
    assert len(F.confusion_figure(make_confusion(25)).axes[0].texts) == 0  # too many classes


def test_embedding_legend_or_note() -> None:
    few = F.embedding_figure([make_embedding()])
    assert [t.get_text() for t in few.legends[0].get_texts()] == ["c0", "c1", "c2", "c3"]
    many = F.embedding_figure([make_embedding(k=25, n=100)])
    assert not many.legends and "25 classes" in many.get_suptitle()


# ----- the report's and the explore page's figures, by name ----------------------------------
@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> RunAnalysis:
    """One tiny run on the bundled digits (a second or two), analysed with small settings."""
    root = tmp_path_factory.mktemp("figures")
    config = Config().override(
        {
            "data.dataset": "digits",
            "model.hidden": [8],
            "train.epochs": 1,
            "train.threads": 1,
            "run.dir": str(root),
            "run.name": "f",
        }
    )
    run = train(config).run_dir
    return RunAnalysis(
        run,
        tsne_samples=40,
        candidates=16,
        iterations=2,
        ascent_steps=5,
        mistakes=6,
        samples=8,
        units=6,
    )


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(FIGURES))
def test_report_figure_by_name(analysis: RunAnalysis, name: str) -> None:
    figure = analysis.figure(name)
    check_figure(figure, tuple(figure.get_size_inches()), None)
    # no mistakes, no robustness.json: a note
    assert figure.axes or name in ("mistakes", "probabilities", "robustness")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(EXPLORE_FIGURES))
def test_explore_figure_by_name(name: str) -> None:
    data = make_images(classes=3, channels=3, height=6, width=10, n_train=60, n_test=12)
    figure = DatasetExploration(data, per_class=4, correlation_samples=6).figure(name)
    check_figure(figure, tuple(figure.get_size_inches()), None)
    assert len(figure.axes) >= 1


def test_rejection_figure_marks_the_threshold_and_names_each_set() -> None:
    r = make_rejection(3)
    figure = F.rejection_figure(r)
    expected = [f"{s.name}\nAUROC 0.9000   rejected {s.rejected_fraction:.1%}" for s in r.outside]
    assert [ax.get_title() for ax in figure.axes] == expected
    for ax in figure.axes:  # the threshold, on the stretched axis: -log10(1 - 0.98)
        (line,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert line.get_xdata()[0] == pytest.approx(-np.log10(0.02))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.9", "0.99", "0.999", "1"]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["test split (500)", "the panel's set", "threshold 0.9800: above it, rejected"]
