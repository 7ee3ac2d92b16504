"""Figures: one function per figure, each taking numbers from the analysis modules and
returning a :class:`matplotlib.figure.Figure`.

A figure function only draws: every number it shows was computed by a number function, and
the figures of the numbers in ``analysis/<topic>.py`` live in ``analysis/figures/<topic>.py``
(:mod:`.curves`, :mod:`.confusion`, :mod:`.mistakes`, :mod:`.representations`,
:mod:`.weights`, :mod:`.imagine`, :mod:`.dataset`, :mod:`.rejection`, :mod:`.robustness`;
:mod:`.calibration` draws :mod:`mlplab.trust.calibration`'s); :mod:`.base` holds what they share (a new
Figure without pyplot, :func:`save_png`, the palette). matplotlib is the ``report`` extra:
``pip install 'mlplab[report]'``.
"""

from .base import TEST as TEST  # the palette, for figures drawn outside analysis
from .base import TRAIN as TRAIN
from .base import VAL as VAL
from .base import new_figure, save_png
from .calibration import reliability_figure
from .confusion import confusion_figure, per_class_figure
from .curves import compare_curves_figure, curves_figure
from .dataset import (
    class_counts_figure,
    class_means_figure,
    class_samples_figure,
    correlations_figure,
    intensity_figure,
)
from .explanations import explanations_figure
from .imagine import imagine_figure
from .mistakes import mistakes_figure, probabilities_figure, samples_figure
from .rejection import rejection_figure
from .representations import embedding_figure
from .robustness import robustness_figure
from .weights import compare_weights_figure, first_layer_figure, weight_histograms_figure

__all__ = [
    "class_counts_figure",
    "class_means_figure",
    "class_samples_figure",
    "compare_curves_figure",
    "compare_weights_figure",
    "confusion_figure",
    "correlations_figure",
    "curves_figure",
    "embedding_figure",
    "explanations_figure",
    "first_layer_figure",
    "imagine_figure",
    "intensity_figure",
    "mistakes_figure",
    "new_figure",
    "per_class_figure",
    "probabilities_figure",
    "rejection_figure",
    "reliability_figure",
    "robustness_figure",
    "samples_figure",
    "save_png",
    "weight_histograms_figure",
]
