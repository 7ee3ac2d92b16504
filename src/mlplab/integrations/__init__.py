"""Integrations: mlplab where people already work.

- :mod:`.sklearn`  scikit-learn estimators (``MLPClassifier``, ``MLPRegressor``) over
  mlplab's own training step, for ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``
  (also importable as ``mlplab.sklearn``).
- :mod:`.mlflow`   log a finished run directory to MLflow after the fact (``log_run``); a
  run logs itself while it trains with ``--track mlflow`` (:mod:`mlplab.training.tracking`).

Each module imports its third-party library when it is imported itself, never here.
"""
