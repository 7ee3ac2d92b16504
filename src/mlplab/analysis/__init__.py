"""Understanding a trained MLP: numbers first, figures second.

Number modules return numpy arrays and small dataclasses; :mod:`.figures` draws them (one
function per figure, each returning a matplotlib Figure, never recomputing a number):

- :mod:`.predictions`      the model over a split, in batches: probabilities, logits, hidden
- :mod:`.confusion`        confusion matrix, per-class precision/recall/F1, most confused pairs
- :mod:`.mistakes`         the most confident mistakes, a seeded sample of predictions
- :mod:`.representations`  PCA and t-SNE of the logits and the last hidden layer
- :mod:`.weights`          per-layer weight statistics and histograms, first layer as images
- :mod:`.imagine`          the input the model scores highest for a class (noise search, ascent)
- :mod:`.curves`           the training history as arrays
- :mod:`.dataset`          a dataset on its own: class counts, means, pixel statistics
- :mod:`.rejection`        the run's ood_score on its test split and on unlike images: AUROC
- :mod:`.corruptions`      the MNIST-C corruptions at five severities, batched and seeded
- :mod:`.robustness`       a run's accuracy, rejection and ECE under them: robustness.json
"""

from .confusion import Confusion, confusion, most_confused
from .curves import Curves, curves
from .dataset import (
    Correlations,
    channel_statistics,
    class_counts,
    class_means,
    intensity_histogram,
    pairwise_correlations,
    samples_per_class,
)
from .imagine import Imagined, gradient_ascent, random_search
from .mistakes import Picked, most_confident_mistakes, pick, sample_predictions
from .predictions import Predictions, predict_split
from .representations import Embedding, embed, embed_layers
from .weights import FirstLayer, LayerWeights, first_layer, layer_weights

__all__ = [
    "Confusion",
    "Correlations",
    "Curves",
    "Embedding",
    "FirstLayer",
    "Imagined",
    "LayerWeights",
    "Picked",
    "Predictions",
    "channel_statistics",
    "class_counts",
    "class_means",
    "confusion",
    "curves",
    "embed",
    "embed_layers",
    "first_layer",
    "gradient_ascent",
    "intensity_histogram",
    "layer_weights",
    "most_confident_mistakes",
    "most_confused",
    "pairwise_correlations",
    "pick",
    "predict_split",
    "random_search",
    "sample_predictions",
    "samples_per_class",
]
