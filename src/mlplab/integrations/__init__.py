"""Integrations: mlplab where people already work.

- :mod:`.sklearn`  scikit-learn estimators (``MLPClassifier``, ``MLPRegressor``) over
  mlplab's own training step, for ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``
  (also importable as ``mlplab.sklearn``).

Each module imports its third-party library when it is imported itself, never here.
"""
