"""Run directory -> ``report.html`` + ``analysis.json`` (+ ``figures/*.png``).

:class:`RunAnalysis` holds every number of the report for one run, each computed the first
time it is asked for (so ``mlplab plot curves`` never loads the data, and a notebook pays
only for what it looks at)::

    from mlplab.report.run_report import RunAnalysis, report
    a = RunAnalysis("runs/20261121-115815-tutorial")
    a.confusion.counts, a.confusion.per_class(), a.confusion.most_confused(5)
    a.figure("mistakes")                  # a matplotlib Figure
    report("runs/20261121-115815-tutorial")   # -> runs/.../report.html

The report is about the test split and the weights training kept (``train.select``),
the same model and data that ``summary.json``'s test figures come from; ``analysis.json``'s
``test_accuracy`` is the confusion matrix's trace over its total and equals them.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from .. import __version__
from ..analysis import figures as F
from ..analysis.confusion import Confusion, confusion
from ..analysis.curves import Curves, curves
from ..analysis.explanations import Explanations, explain_split
from ..analysis.imagine import Imagined, gradient_ascent, random_search
from ..analysis.mistakes import Picked, most_confident_mistakes, sample_predictions
from ..analysis.predictions import Predictions, predict_split
from ..analysis.rejection import Rejection, rejection_analysis
from ..analysis.representations import Embedding, embed_layers
from ..analysis.robustness import Robustness, read_robustness
from ..analysis.weights import FirstLayer, LayerWeights, first_layer, layer_weights
from ..data import Dataset
from ..data.splits import configured_splits
from ..errors import ConfigError, MlplabError, RunError, did_you_mean
from ..files.atomic import check_folder, check_target, is_figure, os_errors, write_text_atomic
from ..files.jsonsafe import nan_to_null
from ..model.mlp import model_summary
from ..notebook.cards import summary_notes
from ..notebook.svg import confusion_html
from ..progress import logger, progress_bar
from ..run.directory import Run
from ..run.splits import run_dataset
from ..training.augment import Augmentation
from ..training.device import select_device
from ..trust.calibration import Scores, score
from .page import Figure, Page, Section, cards, paragraph, preformatted, table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = ["ANALYSIS_FORMAT", "FIGURES", "RunAnalysis", "plot", "report"]

ANALYSIS_FORMAT = "mlplab-analysis-1"
REPORT, ANALYSIS = "report.html", "analysis.json"
MINIMUMS = {  # the smallest value of each RunAnalysis setting
    "mistakes": 0,
    "samples": 1,
    "explained": 0,
    "tsne_samples": 10,
    "tsne_iterations": 250,  # scikit-learn's t-SNE refuses fewer
    "units": 1,
    "candidates": 1,
    "iterations": 1,
    "ascent_steps": 1,
    "rejection_samples": 1,
}


T = TypeVar("T")


def _timed(name: str) -> Callable[[Callable[[RunAnalysis], T]], Callable[[RunAnalysis], T]]:
    """Record how long a :class:`RunAnalysis` number took in its ``timings`` (logged at debug
    level after the report), under ``name``."""

    def decorate(compute: Callable[[RunAnalysis], T]) -> Callable[[RunAnalysis], T]:
        @functools.wraps(compute)
        def timed(analysis: RunAnalysis) -> T:
            start = time.perf_counter()
            value = compute(analysis)
            analysis.timings[name] = time.perf_counter() - start
            logger.debug(f"report: {name} in {analysis.timings[name]:.2f}s")
            return value

        return timed

    return decorate


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: its section, title, caption and how it is drawn."""

    section: str
    title: str
    caption: str
    draw: Callable[[RunAnalysis], MplFigure]  # needs the data unless it uses only the
    # run directory (curves, weights, histograms, imagine)


class RunAnalysis:
    """Every number of a run's report, computed lazily and kept.

    ``dataset`` replaces the reload recorded in ``dataset.json`` (needed for runs trained
    on an in-memory :class:`~mlplab.Dataset`); the other arguments tune the analyses.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        dataset: Dataset | str | None = None,
        data_dir: str | Path | None = None,
        device: str = "cpu",
        seed: int = 0,  # t-SNE, subsets, random search, sample grid
        mistakes: int = 25,  # most confident mistakes shown
        samples: int = 36,  # random predictions shown
        explained: int = 4,  # mistakes with probability bar charts
        tsne_samples: int = 2000,  # points in each t-SNE map
        tsne_iterations: int = 500,  # t-SNE optimizer steps (>= 250)
        units: int = 25,  # first-layer units drawn as images
        candidates: int = 1000,  # random-noise images per forward pass
        iterations: int = 20,  # forward passes of random search
        ascent_steps: int = 200,  # gradient ascent steps
        rejection_samples: int = 1000,  # images at most per set unlike the test split
    ) -> None:
        settings = {
            "mistakes": mistakes,
            "samples": samples,
            "explained": explained,
            "tsne_samples": tsne_samples,
            "tsne_iterations": tsne_iterations,
            "units": units,
            "candidates": candidates,
            "iterations": iterations,
            "ascent_steps": ascent_steps,
            "rejection_samples": rejection_samples,
        }
        for name, value in settings.items():
            if not isinstance(value, int) or value < MINIMUMS[name]:
                raise ConfigError(
                    f"report setting '{name}' must be a whole number >= {MINIMUMS[name]}; "
                    f"got {value!r}"
                )
        self.run = Run.open(run_dir)
        _check_classifier(self.run)
        self._dataset, self._data_dir = dataset, data_dir
        self.device = select_device(device)
        self.seed = seed
        self.n_mistakes, self.n_samples, self.n_explained = mistakes, samples, explained
        self.tsne_samples, self.tsne_iterations = tsne_samples, tsne_iterations
        self.n_units = units
        self.candidates, self.iterations, self.ascent_steps = candidates, iterations, ascent_steps
        self.rejection_samples = rejection_samples
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"RunAnalysis({str(self.run.path)!r})"

    def _repr_html_(self) -> str:
        """A notebook's card: the run's (:meth:`Run.card_html`) and the test split's confusion
        matrix, computed now if it was not yet (it loads the data and the model once)."""
        try:
            matrix = self.confusion
        except MlplabError as exc:
            return self.run.card_html(notes=(f"No confusion matrix: {exc}",))
        title = (
            f'<div style="font-weight:600;margin-top:6px">Confusion matrix, test split '
            f"({matrix.samples:,} samples, accuracy {matrix.accuracy:.2%})</div>"
        )
        return self.run.card_html(
            extra=title + confusion_html(matrix.counts.tolist(), self.classes)
        )

    # ----- from the run directory alone ---------------------------------------------------
    @functools.cached_property
    def summary(self) -> dict[str, Any]:
        return self.run.summary()

    @functools.cached_property
    def loaded(self) -> tuple[Any, Any, tuple[str, ...]]:
        """(model, normalization, classes) of the kept weights."""
        return self.run.load_model(self.device)

    @property
    def model(self) -> Any:
        return self.loaded[0]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.loaded[2]

    @functools.cached_property
    def temperature(self) -> float:
        """The run's calibration temperature (``model.json``; 1 when it has none)."""
        return self.run.temperature()

    @functools.cached_property
    def curves(self) -> Curves:
        return curves(self.run.metrics(), self.summary, self.run.path.name)

    @functools.cached_property
    def weights(self) -> list[LayerWeights]:
        return layer_weights(self.model)

    @functools.cached_property
    def first_layer(self) -> FirstLayer:
        return first_layer(self.model, self.n_units, classes=self.classes)

    @functools.cached_property
    @_timed("imagine (random search)")
    def random_search(self) -> Imagined:
        model, normalization, classes = self.loaded
        return random_search(
            model,
            normalization,
            classes,
            candidates=self.candidates,
            iterations=self.iterations,
            seed=self.seed,
            temperature=self.temperature,
        )

    @functools.cached_property
    @_timed("imagine (gradient ascent)")
    def gradient_ascent(self) -> Imagined:
        model, normalization, classes = self.loaded
        return gradient_ascent(
            model,
            normalization,
            classes,
            steps=self.ascent_steps,
            seed=self.seed,
            temperature=self.temperature,
        )

    # ----- on the test split ----------------------------------------------------------------
    @functools.cached_property
    @_timed("load data")
    def dataset(self) -> Dataset:
        return run_dataset(self.run, dataset=self._dataset, data_dir=self._data_dir)

    @functools.cached_property
    @_timed("predictions")
    def predictions(self) -> Predictions:
        """The kept model on the test split, in the batches training scored it with, its
        probabilities calibrated by the run's temperature."""
        config = self.run.config()
        _, _, test = configured_splits(self.dataset, config.data)
        model, normalization, classes = self.loaded
        batch = config.train.eval_batch_size
        return predict_split(
            model, test, normalization, classes, batch_size=batch, temperature=self.temperature
        )

    @functools.cached_property
    def calibration(self) -> tuple[Scores, Scores]:
        """The test split's calibration (ECE, NLL, Brier, the bins) with the model's own
        probabilities and with the run's temperature: softmax(logits) and softmax(logits / T)."""
        logits = torch.from_numpy(self.predictions.logits)
        labels = torch.from_numpy(self.predictions.labels)
        return score(logits, labels), score(logits, labels, self.temperature)

    @functools.cached_property
    @_timed("rejection")
    def rejection(self) -> Rejection:
        """The run's ood_score on its test split and on sets unlike it (the other dataset,
        synthetic non-digits): AUROC and rejected fraction of each; or why it has none."""
        return rejection_analysis(
            self.run,
            self.model,
            lambda: self.dataset,  # loaded only for a run with a rejection
            data_dir=self._data_dir,
            samples=self.rejection_samples,
            seed=self.seed,
            batch_size=self.run.config().train.eval_batch_size,
            predicted=lambda: self.predictions.predicted,  # the test split's, computed once
        )

    @functools.cached_property
    def robustness(self) -> Robustness | None:
        """The run's ``robustness.json`` (``mlplab robustness``), or None: read, never computed
        here (all the corruptions take minutes)."""
        return read_robustness(self.run.path)

    @functools.cached_property
    def confusion(self) -> Confusion:
        return confusion(self.predictions.labels, self.predictions.predicted, self.classes)

    @functools.cached_property
    def mistakes(self) -> Picked:
        return most_confident_mistakes(self.predictions, self.n_mistakes)

    @functools.cached_property
    def samples(self) -> Picked:
        return sample_predictions(self.predictions, self.n_samples, self.seed)

    @functools.cached_property
    def explained(self) -> Picked:
        """The first few confident mistakes, for the probability bar charts."""
        from ..analysis.mistakes import pick

        return pick(self.predictions, self.mistakes.indices[: self.n_explained])

    @functools.cached_property
    @_timed("explanations")
    def explanations(self) -> Explanations:
        """Integrated gradients on a sample of the test split: the most confident mistakes,
        the mean attribution per class, the deletion test (:mod:`..analysis.explanations`)."""
        from ..trust.rejection import Rejector

        rejector = Rejector.load(self.run)
        background = None if rejector is None else rejector.tensors["ink.background"] / 255
        model, normalization, _ = self.loaded
        return explain_split(
            model,
            normalization,
            self.temperature,
            self.predictions,
            self.mistakes.indices,
            background,
            seed=self.seed,
        )

    @functools.cached_property
    @_timed("PCA")
    def pca(self) -> dict[str, Embedding]:
        return embed_layers(self.predictions, "pca", seed=self.seed)

    @functools.cached_property
    @_timed("t-SNE")
    def tsne(self) -> dict[str, Embedding]:
        samples, iterations = self.tsne_samples, self.tsne_iterations
        return embed_layers(
            self.predictions, "tsne", samples=samples, seed=self.seed, iterations=iterations
        )

    # ----- figures and JSON -----------------------------------------------------------------------
    def figure(self, name: str) -> MplFigure:
        """The report's figure ``name`` (one of :data:`FIGURES`) as a matplotlib Figure."""
        if name not in FIGURES:
            raise ConfigError(
                f"unknown figure '{name}'; choose one of {', '.join(FIGURES)}"
                f"{did_you_mean(name, FIGURES)}"
            )
        return FIGURES[name].draw(self)

    def to_json(self) -> dict[str, Any]:
        """What ``analysis.json`` holds: confusion counts (rows true, columns predicted, class
        order), per-class scores, most confused pairs, the accuracy they imply, and more."""
        conf = self.confusion
        return {
            "format": ANALYSIS_FORMAT,
            "run": str(self.run.path),
            "dataset": self.dataset.name,
            "split": "test",
            "samples": conf.samples,
            "classes": list(self.classes),
            "test_accuracy": conf.accuracy,
            "test_loss": self.predictions.loss,
            "summary_test_accuracy": self.summary.get("test_accuracy"),
            "confusion_matrix": conf.counts.tolist(),
            "per_class": conf.per_class(),
            "macro_f1": float(conf.f1.mean()),
            "most_confused": conf.most_confused(10),
            "most_confident_mistakes": self.mistakes.rows(),
            "calibration": _calibration_json(*self.calibration),
            "rejection": self.rejection.to_dict(),
            "explanations": self.explanations.to_dict(),
            "robustness": _robustness_json(self.robustness),
            "pca_explained_variance": {
                layer: list(m.explained_variance) for layer, m in self.pca.items() if not m.empty
            },
            "weights": [layer.to_dict() for layer in self.weights],
            "imagine": {
                "random_search": {
                    **self.random_search.settings,
                    "classes": self.random_search.rows(),
                },
                "gradient_ascent": {
                    **self.gradient_ascent.settings,
                    "classes": self.gradient_ascent.rows(),
                },
            },
            "mlplab": __version__,
        }


def _calibration_json(before: Scores, after: Scores) -> dict[str, Any]:
    """analysis.json's calibration: the temperature, ECE/NLL/Brier before and after, the bins."""
    return {
        "temperature": after.temperature,
        **{
            f"{name}_{when}": getattr(scores, name)
            for name in ("ece", "nll", "brier")
            for when, scores in (("before", before), ("after", after))
        },
        "reliability_before": before.reliability.to_dict(),
        "reliability_after": after.reliability.to_dict(),
    }


def _check_classifier(run: Run) -> None:
    """A regression run has no classes: its report would be empty, so it is refused."""
    task = run.model_info().get("task", "classification")
    if task == "classification":
        return
    line = " and line.png draws the fitted line" if (run.path / "line.png").exists() else ""
    raise RunError(
        f"run {run.path} is a {task}: the report's analyses (confusion, mistakes, class "
        f"prototypes) are for classifiers; its summary.json has R², RMSE and MAE{line}"
    )


def _imagine_caption(a: RunAnalysis) -> str:
    total = a.candidates * a.iterations
    return (
        f"Top: of {total:,} uniform-noise images, the one the model scores highest for each class; "
        f"bottom: the input found by {a.ascent_steps} steps of gradient ascent on the class's "
        "logit (with an L2 and a total-variation penalty, clamped to valid pixels): the "
        "strokes the model wants to see. The number is the model's probability for the class; "
        "high on pure noise means the model is sure of things unlike anything it was trained on."
    )


FIGURES: dict[str, FigureSpec] = {
    "curves": FigureSpec(
        "Training",
        "Loss and accuracy per epoch",
        "Training (blue) and validation (orange) per epoch; the dotted line marks the epoch whose "
        "weights were kept (train.select: by default the lowest validation loss) and the star "
        "their test score. Training far better than validation means overfitting; both still "
        "improving means more epochs would help.",
        lambda a: F.curves_figure(a.curves),
    ),
    "confusion": FigureSpec(
        "Test metrics",
        "Confusion matrix",
        "Rows are true classes, columns predicted classes; the colour is the fraction of the true "
        "class and the number the count. The diagonal is right; every other cell is a kind of "
        "mistake, darker meaning more frequent.",
        lambda a: F.confusion_figure(a.confusion),
    ),
    "per-class": FigureSpec(
        "Test metrics",
        "Precision, recall and F1 per class",
        "Precision: of the samples predicted as the class, the fraction that are; recall: of the "
        "class's samples, the fraction found; F1: their harmonic mean. Short bars are the weak "
        "classes (the y axis starts near the lowest score).",
        lambda a: F.per_class_figure(a.confusion),
    ),
    "reliability": FigureSpec(
        "Calibration",
        "Reliability: how often the model is right at each confidence",
        "The test samples in 15 equal-width bins of confidence (the predicted class's "
        "probability): the bars are the fraction predicted right in each bin, the hatched red box the "
        "gap to the bin's mean confidence; on the dashed diagonal a probability of 0.9 is right "
        "9 times in 10. Left: the model's own probabilities; right: calibrated by the "
        "temperature fitted on the validation split (model.json), the probabilities predict, "
        "serve and the exports give. Under each, how many samples fall in each bin (log scale). "
        "ECE is the gap averaged over the bins, weighted by their samples; the temperature "
        "never changes the predicted class.",
        lambda a: F.reliability_figure(*a.calibration),
    ),
    "rejection": FigureSpec(
        "Rejection",
        "The ood_score: the test split against images unlike it",
        "",  # set per run by _rejection_caption
        lambda a: F.rejection_figure(a.rejection),
    ),
    "robustness": FigureSpec(
        "Robustness",
        "Accuracy under the MNIST-C corruptions",
        "",  # set per run by _robustness_caption
        lambda a: (
            F.robustness_figure(a.robustness)
            if a.robustness
            else F.base.empty_figure(_robustness_caption(a))
        ),
    ),
    "mistakes": FigureSpec(
        "Mistakes",
        "The most confident mistakes",
        "The wrong predictions the model was surest of, surest first: the title gives the true "
        "class with the model's probability for it, then the predicted class with its. Many are "
        "ambiguous or mislabelled images. Probabilities here and below are calibrated by the "
        "run's temperature (model.json), as predict and serve give them.",
        lambda a: F.mistakes_figure(a.mistakes),
    ),
    "samples": FigureSpec(
        "Mistakes",
        "Random test predictions",
        "A seeded random sample of the test split: green titles are right, red wrong (with the "
        "true class beneath); the number is the model's (calibrated) probability for its "
        "prediction.",
        lambda a: F.samples_figure(a.samples),
    ),
    "probabilities": FigureSpec(
        "Mistakes",
        "What the model thought, for a few mistakes",
        "For the most confident mistakes: the probability (middle) and log-probability (right) "
        "of every class; green is the true class, red the prediction. The log scale shows how far "
        "behind the true class was.",
        lambda a: F.probabilities_figure(
            a.explained, empty="no mistakes: every test sample was predicted right"
        ),
    ),
    "explanations": FigureSpec(
        "Explanations",
        "Where the model looked",
        "Integrated gradients of the calibrated log-odds of the predicted class, against the "
        "run's background in pixel space (docs/explain.md). Top: the most confident mistakes, "
        "red where pixels pushed toward the wrong answer, blue where they held it back; middle: "
        "each class's mean map over its sampled test images, what the model looks for in it; "
        "bottom: the deletion test, the probability of the predicted class as the most "
        "attributed pixels are set to the background, against random pixels: the lower the "
        "area, the more faithful the maps. 20 test images a class (seeded) and the 8 surest "
        "mistakes, 64 steps a path.",
        lambda a: F.explanations_figure(a.explanations),
    ),
    "pca": FigureSpec(
        "Representations",
        "PCA of the output logits and the last hidden layer",
        "One point per test sample, coloured by its true class, projected on the two directions "
        "of largest variance (share in the axis labels). Separate clusters are classes the layer "
        "tells apart; overlaps are where its mistakes come from.",
        lambda a: F.embedding_figure(a.pca),
    ),
    "tsne": FigureSpec(
        "Representations",
        "t-SNE of the output logits and the last hidden layer",
        "A seeded non-linear map of a class-stratified subset: points close together are close in "
        "the layer; the sizes of clusters and the distances between them mean little.",
        lambda a: F.embedding_figure(a.tsne),
    ),
    "weights": FigureSpec(
        "Weights",
        "The first layer's units as images",
        "Each panel is one unit's weights over the input pixels (units with the largest weight "
        "norms): red pixels raise its activation, blue lower it, white are ignored. Noise-like "
        "panels are units that learned little.",
        lambda a: F.first_layer_figure(a.first_layer),
    ),
    "histograms": FigureSpec(
        "Weights",
        "Weight histograms per layer",
        "The distribution of each Linear layer's weights with its mean, standard deviation, "
        "range and L2 norm; heavy tails or a growing L2 norm point to too little regularization.",
        lambda a: F.weight_histograms_figure(a.weights),
    ),
    "imagine": FigureSpec(
        "Imagining a class",
        "What the model takes for each class",
        "",  # set per run by _imagine_caption
        lambda a: F.imagine_figure(a.random_search, a.gradient_ascent),
    ),
}


def _weights_caption(a: RunAnalysis) -> str:
    first = a.first_layer
    if first.layer == "output":
        text = (
            "This model is a logistic regression: its only layer maps pixels to classes, so each "
            "panel is one class's template: red pixels are evidence for the class, blue against."
        )
    else:
        text = FIGURES["weights"].caption
    if first.weights.shape[1] == 3:
        text += " Colour inputs: each unit is drawn as an RGB image, min-max normalized per unit."
    return text


def _rejection_caption(a: RunAnalysis) -> str:
    r = a.rejection
    if r.off is not None:  # the one line the report shows instead of the section
        return r.off[:1].upper() + r.off[1:] + "."
    inside = r.inside.name if r.inside is not None else "test split"
    return (
        "The ood_score (0 to 1) says how unlike the training images an input is: its "
        "detectors (the pixels against a PCA of the training images, the last hidden layer "
        "against the nearest class, the model's energy) combined into one rank among the "
        "validation images' (the fraction of them it exceeds), and 1 for an image with no ink "
        "or ink everywhere. The threshold (red, "
        f"{r.threshold:.3f}) is the {r.accept:g} quantile of the validation split's scores "
        f"(train.accept): {r.accept:.0%} of validation images score at or below it, and above "
        "it predict, evaluate and serve answer 'not sure' instead of a class. Each panel "
        f"shows the {inside} (gray) against one set of images unlike it: the share of each "
        "in each bin of the score (log scale). AUROC: how well the score tells the set from "
        f"the {inside} (1: perfectly, 0.5: chance); rejected: the share of the set above the "
        f"threshold. At most {a.rejection_samples:,} images per set, seed {a.seed}; the test "
        "split chose nothing."
    )


def _robustness_caption(a: RunAnalysis) -> str:
    r = a.robustness
    if r is None:  # the one line the report shows instead of the section
        return (
            f"No robustness.json: `mlplab robustness {a.run.path}` scores the run on its test "
            "split under the MNIST-C corruptions (a few minutes) and the report shows it here."
        )
    skipped = "".join(f" {why[:1].upper()}{why[1:]}." for why in r.skipped.values())
    return (
        f"The test split ({r.samples:,} images of {r.dataset}) corrupted as MNIST-C does "
        f"(Mu & Gilmer 2019), each corruption at severities 1 to 5 (seed {r.seed}), scored by "
        "the kept weights: accuracy against severity, 0 being the clean split "
        f"({r.clean.accuracy:.2%}); the panel's title gives its mean over the severities. "
        f"Mean corruption accuracy: {r.mean_corruption_accuracy:.2%}. The table adds the share "
        "rejected as unfamiliar (the run's rejection) and the ECE with the run's temperature, "
        f"averaged over the severities. From robustness.json (`mlplab robustness`).{skipped}"
    )


def _robustness_json(r: Robustness | None) -> dict[str, Any] | None:
    """analysis.json's robustness: the headline figures of robustness.json, or None."""
    if r is None:
        return None
    return {
        "clean_accuracy": r.clean.accuracy,
        "mean_corruption_accuracy": r.mean_corruption_accuracy,
        "per_corruption": {name: r.mean_over_severities(name) for name in r.corruptions},
        "skipped": dict(r.skipped),
    }


def _curves_caption(a: RunAnalysis) -> str:
    """The curves' caption with why validation can beat training: how each is measured
    (training.loop._train_epoch vs Session.score), and which of the reasons this run has."""
    config = a.run.config()
    text = FIGURES["curves"].caption + (
        " The training figures are the mean over the epoch's batches, each scored as it was "
        "trained on (before its update, while the weights still change), so they lag about "
        "half an epoch; validation is scored once, after the epoch, in eval mode on the "
        "images as they are."
    )
    reasons = []
    if config.model.dropout:
        reasons.append(f"dropout {config.model.dropout:g} drops units while training only")
    augment = config.augment
    switched = [name for name in Augmentation.SWITCHES if getattr(augment, name)]
    if switched:
        clean = augment.clean_epochs
        last = f", but not in the last {clean} epochs" if clean > 1 else ""
        last = ", but not in the last epoch" if clean == 1 else last
        reasons.append(f"training images are augmented ({', '.join(switched)}{last})")
    if config.train.label_smoothing:
        reasons.append(
            f"the training loss includes label smoothing {config.train.label_smoothing:g} "
            "(validation's does not)"
        )
    if config.train.ema:
        reasons.append(f"validation scores the weight average (train.ema {config.train.ema:g})")
    if reasons:
        text += (
            f" In this run: {'; '.join(reasons)}. So validation above training is expected "
            "here, not a bug."
        )
    return text


def _caption(a: RunAnalysis, name: str) -> str:
    if name == "curves":
        return _curves_caption(a)
    if name == "imagine":
        return _imagine_caption(a)
    if name == "rejection":
        return _rejection_caption(a)
    if name == "robustness":
        return _robustness_caption(a)
    if name == "weights":
        return _weights_caption(a)
    return FIGURES[name].caption


def plot(run_dir: str | Path, name: str, out: str | Path | None = None, **settings: Any) -> Path:
    """Draw one report figure of a run as a PNG; ``out`` defaults to
    ``<run>/figures/<name>.png``. ``settings`` are :class:`RunAnalysis`'s.

    ``out`` may replace a figure mlplab wrote (an earlier one), never another file (a photo,
    a training image), anything but a regular file, or a run's own files (WriteError, before
    drawing)."""
    analysis = RunAnalysis(run_dir, **settings)
    path = Path(out) if out is not None else analysis.run.path / "figures" / f"{name}.png"
    _check_plot(path, default=out is None)
    figure = analysis.figure(name)
    _check_plot(path, default=out is None)
    with os_errors(path, "choose another --out"):  # a full disk, a read-only folder: one line
        path.parent.mkdir(parents=True, exist_ok=True)
        F.save_png(figure, path)
    return path


def _check_plot(path: Path, *, default: bool) -> None:
    """The figure may go to ``path``: a user's ``--out`` replaces only a figure mlplab
    wrote."""
    check_folder(path.parent, link_ok=not default)
    check_target(
        path, replaceable=default or is_figure, ours_is="a figure mlplab wrote", force_flag=None
    )


def report(run_dir: str | Path | RunAnalysis, **settings: Any) -> Path:
    """Write ``report.html``, ``analysis.json`` and ``figures/*.png`` into the run directory;
    return the report's path. ``settings`` are :class:`RunAnalysis`'s."""
    a = run_dir if isinstance(run_dir, RunAnalysis) else RunAnalysis(run_dir, **settings)
    _check_report(a.run.path)
    page = Page(f"Report: {a.run.path.name}", f"{a.run.path}")
    page.header = _header(a)
    sections: dict[str, Section] = {}
    bar = progress_bar(total=len(FIGURES), desc="report", unit="figure")
    try:
        for name, spec in FIGURES.items():
            if name == "rejection" and a.rejection.off is not None:  # an older run: one line
                sections.setdefault(spec.section, Section(spec.section)).items.append(
                    paragraph(_rejection_caption(a), "note")
                )
                bar.update()
                continue
            if name == "robustness" and a.robustness is None:  # not measured: one line
                sections.setdefault(spec.section, Section(spec.section)).items.append(
                    paragraph(_robustness_caption(a), "note")
                )
                bar.update()
                continue
            start = time.perf_counter()
            figure = spec.draw(a)
            png = F.save_png(figure, None)
            a.timings[f"figure {name}"] = time.perf_counter() - start
            section = sections.setdefault(spec.section, Section(spec.section))
            section.items.append(Figure(name, spec.title, _caption(a, name), png))
            section.items.extend(_tables_after(a, name))
            bar.update()
    finally:
        bar.close()
    page.sections = list(sections.values())
    _check_report(a.run.path)
    with os_errors(a.run.path / REPORT, "copy the run to another disk and report there"):
        path = page.write(a.run.path / REPORT)
        text = json.dumps(nan_to_null(a.to_json()), indent=2, allow_nan=False)
        write_text_atomic(a.run.path / ANALYSIS, text + "\n")
    logger.debug("report timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in a.timings.items()))
    return path


def _check_report(run: Path) -> None:
    """The run's report files are its own (replaced each time), but only regular files: a FIFO,
    a device or a link planted in a shared run directory is refused, and figures/ must be a
    real folder there (not a link sending the figures elsewhere)."""
    check_folder(run / "figures", link_ok=False, flag=None)
    for path in (run / REPORT, run / ANALYSIS, *(run / "figures" / f"{n}.png" for n in FIGURES)):
        check_target(path, replaceable=True, flag=None, force_flag=None)


# ----- the page's text parts -------------------------------------------------------------------
def _header(a: RunAnalysis) -> list[str]:
    """The page's top: the headline figures, the run's facts, notes, the config and layers."""
    s, config = a.summary, a.run.config()
    first = [
        ("test accuracy", _pct(s.get("test_accuracy"))),
        ("test loss", _num(s.get("test_loss"), 4)),
        ("kept epoch", f"{s.get('best_epoch', '?')} of {s.get('epochs_run', '?')}"),
        ("best val accuracy", _pct(s.get("best_val_accuracy"))),
        ("parameters", f"{s['parameters']:,}" if "parameters" in s else "?"),
        ("training time", _seconds(s.get("train_seconds"))),
    ]
    notes = [paragraph(text, "note") for text in summary_notes(s)]
    return [
        cards(first),
        table(None, _facts(a)),
        *notes,
        preformatted(config.to_yaml(), "full config (config.yaml)"),
        preformatted(model_summary(a.model), "layers"),
    ]


def _facts(a: RunAnalysis) -> list[tuple[str, str]]:
    """(name, value) rows about the run: its data, model, recipe and device."""
    s, info, t = a.summary, a.run.dataset_info(), a.run.config().train
    samples = s.get("samples") or info.get("samples") or {}
    shape = "x".join(map(str, info["image_shape"]))
    classes = len(info["classes"])
    recipe = (
        f"{t.optimizer} lr {t.lr:g}, batch {t.batch_size}, {t.epochs} epochs, "
        f"{t.scheduler} schedule, seed {t.seed}"
    )
    device = (
        f"{s.get('device', '?')} ({s.get('device_name', '?')}), {s.get('threads', '?')} thread(s)"
    )
    return [
        ("dataset", f"{info['name']}: {shape}, {classes} classes; {info.get('origin', '?')}"),
        ("samples", ", ".join(f"{k} {v:,}" for k, v in samples.items()) or "?"),
        ("model", a.model.extra_repr()),
        ("recipe", recipe),
        ("device", device),
    ]


def _tables_after(a: RunAnalysis, name: str) -> list[str]:
    """Tables that belong right after a figure."""
    tables = {
        "confusion": _confused_pairs,
        "per-class": _per_class,
        "histograms": _weight_stats,
        "rejection": _rejection_table,
        "robustness": _robustness_table,
    }
    return tables[name](a) if name in tables else []


def _confused_pairs(a: RunAnalysis) -> list[str]:
    pairs = a.confusion.most_confused(10)
    if not pairs:
        return [
            "<h3>Most confused pairs</h3>",
            paragraph("No mistakes at all on the test split.", "note"),
        ]
    rows = [(p["true"], p["predicted"], p["count"], f"{p['fraction']:.2%}") for p in pairs]
    header = ["true class", "predicted as", "count", "of the true class"]
    return ["<h3>Most confused pairs</h3>", table(header, rows, left=2)]


def _per_class(a: RunAnalysis) -> list[str]:
    c = a.confusion
    scores = [
        (r["class"], r["precision"], r["recall"], r["f1"], r["support"]) for r in c.per_class()
    ]
    scores.append(
        ("macro average", c.precision.mean(), c.recall.mean(), c.f1.mean(), c.support.sum())
    )
    rows = [
        (name, f"{p:.4f}", f"{r:.4f}", f"{f1:.4f}", f"{int(n):,}") for name, p, r, f1, n in scores
    ]
    header = ["class", "precision", "recall", "F1", "support"]
    return [table(header, rows, scroll=len(rows) > 16)]


def _robustness_table(a: RunAnalysis) -> list[str]:
    """Accuracy per corruption and severity, with the means of accuracy, rejection and ECE."""
    return [] if a.robustness is None else [table(*a.robustness.rows())]


def _rejection_table(a: RunAnalysis) -> list[str]:
    """Per set: its images, the AUROC against the test split, the share rejected, the
    accuracy on the accepted (the split's own images only) and why they were rejected."""
    r = a.rejection  # a run without one has no table: report() writes one line instead
    rows = [
        (
            s.name,
            f"{s.samples:,}",
            "-" if s.auroc is None else f"{s.auroc:.4f}",
            "-" if s.rejected_fraction is None else f"{s.rejected_fraction:.2%}",
            "-" if s.accepted_accuracy is None else f"{s.accepted_accuracy:.2%}",
            ", ".join(f"{reason} {n:,}" for reason, n in s.reasons.items()) or "-",
        )
        for s in r.sets
    ]
    header = ["set", "images", "AUROC vs the split", "rejected", "accuracy on the accepted",
              "why (images)"]  # fmt: skip
    notes = [paragraph(why, "note") for why in r.skipped.values()]
    return [table(header, rows), *notes]


def _weight_stats(a: RunAnalysis) -> list[str]:
    columns = ("shape", "mean", "std", "min", "max", "l2")
    rows = [(w.name, *(w.cells()[c] for c in columns)) for w in a.weights]
    return [table(["layer", "shape", "mean", "std", "min", "max", "L2 norm"], rows)]


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.2%}"


def _num(value: float | None, digits: int) -> str:
    return "?" if value is None else f"{value:.{digits}f}"
