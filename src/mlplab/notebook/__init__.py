"""What mlplab shows in a Jupyter notebook: training live in one cell output, and the HTML
cards of runs, results, analyses and comparisons (their ``_repr_html_``).

A low layer (beside :mod:`mlplab.progress`): it works from plain facts (dicts, lists of
epoch records) and imports nothing of mlplab above ``extras``, so :class:`mlplab.Run` and
the classes above it can use it. IPython is optional (``pip install 'mlplab[notebook]'``)
and matplotlib is not needed: the figures are SVG drawn here.

- :mod:`.live`: detection (:func:`in_notebook`, ``MLPLAB_NOTEBOOK``) and the live output;
- :mod:`.cards`: the HTML cards;
- :mod:`.svg`: the curves and the confusion matrix.
"""

from .live import LiveTraining, in_notebook, live_setting, live_wanted

__all__ = ["LiveTraining", "in_notebook", "live_setting", "live_wanted"]
