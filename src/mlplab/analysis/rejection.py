"""Rejection on the report: the run's ood_score on its own test split and on images that are
not of its kind, with how well the score tells them apart (AUROC) and how many it rejects.

The sets, each scored by the run's :class:`~mlplab.trust.rejection.Rejector` as predict and
serve score an input:

- **inside**: the run's test split, whole (its validation split when it holds out no test
  split), so its rejected fraction is ``summary.json``'s ``test_rejected_fraction``;
- **the other dataset**: Fashion-MNIST's test split for a run on digits (MNIST, USPS, the
  bundled digits), MNIST's for a run on Fashion-MNIST, reduced by area averaging (torch, no
  torchvision) to the run's image size when it differs (USPS: 16x16). It is looked for where
  the run's own data is (``data_dir``, the run's ``data.data_dir``, ``$MLPLAB_DATA_DIR``, the
  cache) and never downloaded; when absent, or for a run on other data, it is skipped with
  the reason;
- **synthetic non-digits** of :mod:`mlplab.trust.negatives`: uniform noise, blank frames,
  smooth gradients, pen strokes, shapes, textures and letters, of the run's image shape.

Every set but the inside one holds at most ``samples`` images (a seeded subset of the other
dataset). The AUROC is that of telling the inside set from each other set by the ood_score
(:func:`mlplab.trust.rejection.auroc`: 1 separates them, 0.5 is chance); the rejected
fraction is the share whose ood_score is above the run's threshold. A run without a
rejection (trained before it, a regression, no validation split) gets :func:`off`: the one
line of :func:`mlplab.trust.rejection.why_off`, no error.

Numbers only: :func:`mlplab.analysis.figures.rejection_figure` draws them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset, load_dataset
from ..data.splits import Normalization, configured_splits
from ..errors import MlplabError
from ..model.mlp import MLP
from ..run.directory import Run
from ..run.splits import run_dataset
from ..trust.negatives import KINDS, negatives
from ..trust.rejection import Rejector, auroc, why_off
from .predictions import predict_split

__all__ = [
    "BINS",
    "COUNTERPARTS",
    "EDGES",
    "KIND_TITLES",
    "SAMPLES",
    "Rejection",
    "ScoredSet",
    "counterpart",
    "off",
    "rejection_analysis",
    "resize",
    "score_sets",
]

SAMPLES = 1000  # images at most per outside set (the report's rejection_samples)
# The histograms' bins: equal steps of -log10(1 - ood_score) from 0 to DECADES (the score 0
# to 0.999), STEPS a decade, then one bin for the rest up to 1 (above every validation image,
# or a rule fired). The scores of the run's own images spread evenly over [0, 1] (they are
# ranks among the validation images'), so equal-width bins would leave the threshold's
# neighbourhood, where the decisions are, one or two bins wide.
DECADES, STEPS = 3, 10
BINS = DECADES * STEPS + 1
# the dataset whose images a run on the key has never seen, and its name for people
COUNTERPARTS = {
    "mnist": "fashion-mnist",
    "usps": "fashion-mnist",
    "digits": "fashion-mnist",
    "fashion-mnist": "mnist",
}
EDGES = np.append(1 - 10.0 ** -np.linspace(0, DECADES, BINS), 1.0)  # 0, 0.206, ..., 0.999, 1
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
KIND_TITLES = {  # trust.negatives' kinds, as the report names them
    "noise": "uniform noise",
    "blank": "blank",
    "gradient": "smooth gradients",
    "strokes": "pen strokes",
    "shapes": "shapes",
    "textures": "textures",
    "glyphs": "letters",
}


@dataclass(frozen=True)
class ScoredSet:
    """One set of images as the run's rejection sees them."""

    name: str  # for people: "test split", "Fashion-MNIST test", "uniform noise", ...
    source: str  # "split" (the run's own), "dataset" (the other one) or "synthetic"
    scores: np.ndarray  # float32 (n,): the ood_score, 0 to 1
    rejected: np.ndarray  # bool (n,): ood_score above the threshold
    reasons: dict[str, int]  # the rejected images' reasons, most frequent first
    counts: np.ndarray  # int64 (BINS,): the histogram of scores over EDGES
    auroc: float | None  # the inside set against this one; None for the inside set
    # the model's accuracy on the images it accepts: the labelled inside set only; None for
    # the others and when it accepts none (JSON null, never NaN)
    accepted_accuracy: float | None = None

    @property
    def samples(self) -> int:
        return len(self.scores)

    @property
    def rejected_fraction(self) -> float | None:
        """The share rejected; None for an empty set."""
        return float(self.rejected.mean()) if self.samples else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "samples": self.samples,
            "auroc": self.auroc,
            "rejected_fraction": self.rejected_fraction,
            "accepted_accuracy": self.accepted_accuracy,
            "reasons": self.reasons,
            "histogram": self.counts.tolist(),
        }


@dataclass(frozen=True)
class Rejection:
    """The report's rejection numbers: the inside set, the others, what was skipped and why.

    ``off`` is the one line saying why a run has no rejection; then there are no sets.
    """

    threshold: float | None  # reject when the ood_score is above it
    accept: float | None  # the validation split's accepted fraction asked for (train.accept)
    inside: ScoredSet | None
    outside: tuple[ScoredSet, ...]
    skipped: dict[str, str] = field(default_factory=dict)  # set name -> why it is absent
    off: str | None = None
    settings: dict[str, int] = field(default_factory=dict)  # samples per set, seed

    @property
    def edges(self) -> np.ndarray:
        """The histograms' bin edges (:data:`EDGES`)."""
        return EDGES.copy()

    @property
    def sets(self) -> tuple[ScoredSet, ...]:
        """The inside set first, then the others."""
        return ((self.inside,) if self.inside is not None else ()) + self.outside

    def to_dict(self) -> dict[str, Any]:
        """analysis.json's ``"rejection"``: NaN never appears (JSON has none): null instead."""
        return {
            "off": self.off,
            "threshold": self.threshold,
            "accept": self.accept,
            **self.settings,
            "bins": [round(float(e), 6) for e in self.edges],
            "sets": [s.to_dict() for s in self.sets],
            "skipped": self.skipped,
        }


def off(reason: str, settings: dict[str, int] | None = None) -> Rejection:
    """The numbers of a run without a rejection: only why."""
    return Rejection(None, None, None, (), off=reason, settings=dict(settings or {}))


def score_sets(
    rejector: Rejector,
    model: MLP,
    inside: tuple[str, torch.Tensor],
    outside: dict[str, tuple[str, torch.Tensor]],
    *,
    right: np.ndarray | None = None,
    skipped: dict[str, str] | None = None,
    settings: dict[str, int] | None = None,
    batch_size: int = 256,
) -> Rejection:
    """Score ``inside`` (name, images) and each of ``outside`` (name -> (source, images)),
    uint8 ``(N, C, H, W)``, with the run's ``rejector`` over ``model``; ``right``: whether
    the model predicts each inside image right (bool, their order), for the accuracy on the
    accepted ones."""
    name, images = inside
    inner = _scored(rejector, model, name, "split", images, None, batch_size)
    if right is not None:
        accepted = ~inner.rejected
        if len(right) != len(accepted):
            raise ValueError(f"right holds {len(right)} values for {len(accepted)} images")
        value = float(np.asarray(right)[accepted].mean()) if accepted.any() else None
        inner = replace(inner, accepted_accuracy=value)
    others = tuple(
        _scored(rejector, model, other, source, pixels, inner.scores, batch_size)
        for other, (source, pixels) in outside.items()
    )
    return Rejection(
        rejector.threshold,
        rejector.accept,
        inner,
        others,
        dict(skipped or {}),
        settings=dict(settings or {}),
    )


def _scored(
    rejector: Rejector,
    model: MLP,
    name: str,
    source: str,
    images: torch.Tensor,
    inside: np.ndarray | None,
    batch_size: int,
) -> ScoredSet:
    verdict = rejector.score(model, images, batch_size=batch_size)
    scores = verdict.scores.numpy().astype(np.float32)
    reasons = Counter(r for r in verdict.reasons if r is not None)
    counts, _ = np.histogram(scores, bins=EDGES)
    area = None
    if inside is not None:
        value = auroc(torch.from_numpy(inside), verdict.scores)
        area = value if np.isfinite(value) else None
    return ScoredSet(
        name,
        source,
        scores,
        verdict.rejected.numpy().astype(bool),
        dict(reasons.most_common()),
        counts.astype(np.int64),
        area,
    )


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images at ``size`` (height, width): area averaging to reduce
    (each new pixel the mean of the old ones it covers), bilinear to enlarge."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    smaller = size[0] <= images.shape[-2] and size[1] <= images.shape[-1]
    mode = "area" if smaller else "bilinear"
    extra = {} if smaller else {"align_corners": False}
    out = torch.nn.functional.interpolate(images.float(), size=size, mode=mode, **extra)
    return out.round().clamp(0, 255).to(torch.uint8)


def _subset(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """At most ``n`` of ``images``: a seeded random choice, kept in their order."""
    if len(images) <= n:
        return images
    g = torch.Generator().manual_seed(seed)
    return images[torch.randperm(len(images), generator=g)[:n].sort().values]


def counterpart(
    dataset: str,
    image_shape: tuple[int, ...],
    data_dir: str | Path | None,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
) -> tuple[str, torch.Tensor] | str:
    """The other dataset's test images for a run on ``dataset`` of ``image_shape`` (C, H, W):
    ``(name, images)``, at most ``samples`` of them resized to the run's size, or why there
    are none (one line). Never downloads."""
    other = COUNTERPARTS.get(dataset)
    if other is None:
        return (
            f"no other dataset: MNIST and Fashion-MNIST stand in for each other (and "
            f"Fashion-MNIST for USPS and digits); a run on '{dataset}' has neither"
        )
    title = f"{TITLES[other]} test"
    if image_shape[0] != 1:
        return f"{title} skipped: the run's images have {image_shape[0]} channels, it has 1"
    try:
        data = load_dataset(other, data_dir, download=False)
    except MlplabError as exc:
        found = str(exc).split(";")[0]  # its first part: where it was looked for
        return (
            f"{title} skipped: {found}; the report never downloads: put its files into "
            f"<dir>/{other}/ and pass --data-dir <dir>, or set MLPLAB_DATA_DIR=<dir>"
        )
    images = resize(_subset(data.test.images, samples, seed), tuple(image_shape[1:]))
    if tuple(data.image_shape[1:]) != tuple(image_shape[1:]):
        title += f", resized to {image_shape[1]}x{image_shape[2]}"
    return title, images


def _synthetic(shape: tuple[int, ...], samples: int, seed: int) -> dict[str, torch.Tensor]:
    """Every kind of :mod:`mlplab.trust.negatives`, ``samples`` images each."""
    return {KIND_TITLES.get(k, k): negatives(k, samples, shape, seed=seed) for k in KINDS}


def rejection_analysis(
    run: Run,
    model: MLP,
    dataset: Dataset | Callable[[], Dataset] | None = None,
    *,
    data_dir: str | Path | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
    batch_size: int = 256,
    predicted: np.ndarray | Callable[[], np.ndarray] | None = None,
) -> Rejection:
    """The report's rejection numbers for ``run`` (its kept ``model``): see the module.

    ``dataset`` is the run's data, or a function giving it (called only when the run has a
    rejection), or None: reloaded as the run records it; ``data_dir`` where to
    look for the other dataset first (then the run's ``data.data_dir``, ``$MLPLAB_DATA_DIR``
    and the cache); ``predicted``: the model's classes for the test split (or a function
    giving them), when already at hand: used only when the inside set is the test split,
    computed otherwise."""
    settings = {"samples": samples, "seed": seed}
    rejector = Rejector.load(run)
    if rejector is None:
        return off(why_off(run), settings)
    if dataset is None:
        dataset = run_dataset(run, data_dir=data_dir)
    elif callable(dataset):
        dataset = dataset()
    config = run.config().data
    _, val, test = configured_splits(dataset, config)
    split = test if len(test) else val
    inside = ("test split" if len(test) else "validation split", split.images)
    if predicted is not None and len(test):
        classes = np.asarray(predicted() if callable(predicted) else predicted)
    else:
        normalization = Normalization.from_dict(run.model_info()["normalization"])
        classes = predict_split(model, split, normalization, batch_size=batch_size).predicted
    right = classes == split.labels.cpu().numpy()
    shape = tuple(dataset.image_shape)
    outside: dict[str, tuple[str, torch.Tensor]] = {}
    skipped: dict[str, str] = {}
    other = counterpart(
        run.dataset_info()["name"], shape, data_dir or config.data_dir, samples=samples, seed=seed
    )
    if isinstance(other, str):
        skipped["other dataset"] = other
    else:
        outside[other[0]] = ("dataset", other[1])
    for name, images in _synthetic(shape, samples, seed).items():
        outside[name] = ("synthetic", images)
    return score_sets(
        rejector,
        model,
        inside,
        outside,
        right=right,
        skipped=skipped,
        settings=settings,
        batch_size=batch_size,
    )
