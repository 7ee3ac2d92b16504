"""2-D maps of what the model computes: PCA and t-SNE of the output logits and the last hidden
layer.

:func:`embed` maps one layer's features with one method; :func:`embed_layers` does the
logits and the last hidden layer of a :class:`Predictions` (a logistic regression has no
hidden layer: its entry is empty and carries a ``note`` saying so). Both methods are
scikit-learn's and seeded; t-SNE runs on a class-stratified subset (default 2,000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.splits import stratified_pick
from ..errors import ConfigError
from ..progress import progress_bar
from .predictions import Predictions

__all__ = ["LAYERS", "METHODS", "Embedding", "embed", "embed_layers"]

METHODS = ("pca", "tsne")
LAYERS = ("logits", "hidden")
TSNE_SAMPLES = 2000  # points in a t-SNE map: its cost grows like n log n, PCA uses all
TSNE_ITERATIONS = 500  # optimizer steps, the first 250 with early exaggeration: clusters settle
# well before scikit-learn's default of 1,000 on a few thousand points, at half the time
NO_HIDDEN = (
    "no hidden layer: this model is a logistic regression (inputs go straight to the outputs)"
)
TSNE_PCA_DIMS = 50  # wider features are first reduced by PCA (the usual t-SNE practice)


@dataclass(frozen=True)
class Embedding:
    """Points in 2-D, one per sample, with their classes."""

    method: str  # pca | tsne
    layer: str  # logits | hidden
    points: np.ndarray  # float (n, 2); (0, 2) when the layer does not exist
    labels: np.ndarray  # int64 (n,)
    indices: np.ndarray  # int64 (n,): positions in the split
    classes: tuple[str, ...]
    explained_variance: tuple[float, ...] = ()  # PCA: fraction of variance per axis
    note: str = ""  # why there are no points, or how the points were chosen
    kl_divergence: float | None = None  # t-SNE: the final KL divergence (lower fits better)

    @property
    def empty(self) -> bool:
        return len(self.points) == 0

    def __repr__(self) -> str:
        note = f", {self.note}" if self.note else ""
        return f"Embedding({self.method} of {self.layer}, {len(self.points)} points{note})"


def embed(
    features: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    *,
    method: str = "pca",
    layer: str = "features",
    samples: int | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
    iterations: int = TSNE_ITERATIONS,
) -> Embedding:
    """Map ``features`` (n, d) to 2-D with ``method``; ``samples`` picks a stratified subset
    (default: all for PCA, 2,000 for t-SNE)."""
    from sklearn.decomposition import PCA  # slow imports: only when a map is made
    from sklearn.manifold import TSNE

    if method not in METHODS:
        raise ConfigError(f"embedding method must be one of {', '.join(METHODS)}; got '{method}'")
    n = len(features)
    if samples is None:
        samples = TSNE_SAMPLES if method == "tsne" else n
    indices = np.arange(n)
    if samples < n:
        indices = stratified_pick(torch.from_numpy(labels), samples, seed).numpy()
    x = np.asarray(features[indices], dtype=np.float64)
    note = f"{len(indices):,} of {n:,} samples" if len(indices) < n else ""
    if len(x) < 3 or x.shape[1] < 2:
        raise ConfigError(
            f"a 2-D map needs at least 3 samples with 2 features; got {x.shape[0]} x {x.shape[1]}"
        )
    if method == "pca":
        model = PCA(n_components=2, random_state=seed)
        points = model.fit_transform(x)
        variance = tuple(float(v) for v in model.explained_variance_ratio_)
        return Embedding(method, layer, points, labels[indices], indices, classes, variance, note)
    if x.shape[1] > TSNE_PCA_DIMS and len(x) > TSNE_PCA_DIMS:
        x = PCA(n_components=TSNE_PCA_DIMS, random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (len(x) - 1) / 3),  # scikit-learn needs perplexity < n
        init="pca",
        learning_rate="auto",
        max_iter=max(iterations, 250),  # scikit-learn's minimum
        random_state=seed,
    )
    points = tsne.fit_transform(x)
    kl = float(tsne.kl_divergence_)
    return Embedding(
        method, layer, points, labels[indices], indices, classes, note=note, kl_divergence=kl
    )


def embed_layers(
    predictions: Predictions,
    method: str = "pca",
    *,
    samples: int | None = None,
    seed: int = 0,
    iterations: int = TSNE_ITERATIONS,
) -> dict[str, Embedding]:
    """``{"logits": ..., "hidden": ...}`` maps of ``predictions`` (see :func:`embed`)."""
    layers = {"logits": predictions.logits, "hidden": predictions.hidden}
    result = {}
    bar = progress_bar(total=len(layers), desc=method, unit="map")
    try:
        for layer, features in layers.items():
            if features is None:
                result[layer] = _no_layer(method, layer, predictions.classes)
            else:
                result[layer] = embed(
                    features,
                    predictions.labels,
                    predictions.classes,
                    method=method,
                    layer=layer,
                    samples=samples,
                    seed=seed,
                    iterations=iterations,
                )
            bar.update()
    finally:
        bar.close()
    return result


def _no_layer(method: str, layer: str, classes: tuple[str, ...]) -> Embedding:
    """The empty map of a layer the model does not have, with a note saying why."""
    none = np.zeros(0, dtype=np.int64)
    return Embedding(method, layer, np.zeros((0, 2)), none, none, classes, note=NO_HIDDEN)
