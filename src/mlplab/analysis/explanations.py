"""Explanations on the test split, for the report: where the model looked for its most
confident mistakes, what it looks for in each class on average, and how faithful those maps
are (the deletion test).

Integrated gradients of the calibrated log-odds of the predicted class, against the run's
background in pixel space (:mod:`mlplab.trust.explain`); the deletion test of
:mod:`mlplab.trust.deletion` on the same maps. To stay within seconds the split is sampled:
:data:`PER_CLASS` images of each class (seeded), which give both the class means and the
deletion curves, plus the :data:`MISTAKES` most confident mistakes; :data:`STEPS` points per
path (the completeness error is reported, so the choice can be judged).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import MissingExtraError
from ..model.raw_image import RawImageModel
from ..trust.deletion import Deletion, deletion_curve
from ..trust.explain import LogOdds, attribute, baseline_images
from .predictions import Predictions

__all__ = ["MISTAKES", "PER_CLASS", "STEPS", "Explanations", "explain_split"]

PER_CLASS = 20  # test images per class for the class means and the deletion test
MISTAKES = 8  # most confident mistakes explained
STEPS = 64  # integrated gradients' points per path, as the command's default


@dataclass(frozen=True)
class Explanations:
    """The report's explanations; ``off`` says why there are none (no Captum)."""

    off: str | None = None
    images: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1, 1), np.uint8))
    maps: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.float32))  # (M, H, W)
    true: tuple[str, ...] = ()
    predicted: tuple[str, ...] = ()
    probability: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()
    class_means: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.float32))
    class_counts: tuple[int, ...] = ()
    deletion: Deletion | None = None
    completeness_error: float = float("nan")  # largest relative error over the explained images
    steps: int = STEPS
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        if self.off is not None:
            return {"off": self.off}
        return {
            "method": "integrated-gradients",
            "attributed": "the calibrated log-odds of the predicted class",
            "steps": self.steps,
            "per_class": list(self.class_counts),
            "max_relative_completeness_error": round(self.completeness_error, 6),
            "mistakes": [
                {"true": t, "predicted": p, "probability": round(q, 6)}
                for t, p, q in zip(self.true, self.predicted, self.probability, strict=True)
            ],
            "deletion": None if self.deletion is None else self.deletion.to_json(),
            "seconds": round(self.seconds, 3),
        }


def explain_split(
    model: torch.nn.Module,
    normalization: Any,
    temperature: float,
    predictions: Predictions,
    mistakes: np.ndarray,
    background: torch.Tensor | None,
    *,
    per_class: int = PER_CLASS,
    n_mistakes: int = MISTAKES,
    steps: int = STEPS,
    seed: int = 0,
) -> Explanations:
    """The explanations of a split's ``predictions`` (:func:`.predictions.predict_split`)
    by ``model`` (an MLP, with its ``normalization`` and calibration ``temperature``);
    ``mistakes``: indices of the most confident mistakes, surest first; ``background``:
    ``(C,)`` in [0, 1], the run's (None: each image's border)."""
    labels, predicted, classes = predictions.labels, predictions.predicted, predictions.classes
    probability, images = predictions.confidence, torch.from_numpy(predictions.images)
    start = time.perf_counter()
    device = next(model.parameters()).device  # the buffers join the model where it is
    raw = RawImageModel(model, normalization, temperature).to(device).eval()
    f = LogOdds(raw, model.head)
    g = np.random.default_rng(seed)
    sample = np.concatenate(
        [g.permutation(np.flatnonzero(labels == k))[:per_class] for k in range(len(classes))]
    ).astype(np.int64)
    picked = np.asarray(mistakes[:n_mistakes], dtype=np.int64)
    chosen = torch.from_numpy(np.concatenate([sample, picked]))
    x = images[chosen]
    try:
        found = attribute(f, x, background=background, steps=steps)
    except MissingExtraError as exc:
        return Explanations(off=str(exc))
    maps = found.maps.sum(1).numpy()  # (n, H, W): channels together
    ours = maps[: len(sample)]
    counts = tuple(int((labels[sample] == k).sum()) for k in range(len(classes)))
    means = np.stack(
        [
            ours[labels[sample] == k].mean(0) if counts[k] else np.zeros(ours.shape[1:])
            for k in range(len(classes))
        ]
    ).astype(np.float32)
    gap = (found.log_odds - found.baseline_log_odds).abs().clamp_min(1)
    error = float((found.completeness_error.abs() / gap).max()) if len(x) else float("nan")
    xs = x[: len(sample)]
    deletion = deletion_curve(
        f,
        xs,
        found.maps[: len(sample)],
        baseline_images(xs.float() / 255, background),
        method="integrated-gradients",
        seed=seed,
    )
    return Explanations(
        images=x[len(sample) :].numpy(),
        maps=maps[len(sample) :],
        true=tuple(classes[int(labels[i])] for i in picked),
        predicted=tuple(classes[int(predicted[i])] for i in picked),
        probability=tuple(float(probability[i]) for i in picked),
        classes=tuple(classes),
        class_means=means,
        class_counts=counts,
        deletion=deletion,
        completeness_error=error,
        steps=steps,
        seconds=time.perf_counter() - start,
    )
