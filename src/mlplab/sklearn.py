"""``mlplab.sklearn``: scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, trained by mlplab.

The short name of :mod:`mlplab.integrations.sklearn` (where they live, and docs/sklearn.md)::

    from mlplab.sklearn import MLPClassifier
"""

from .integrations.sklearn import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
