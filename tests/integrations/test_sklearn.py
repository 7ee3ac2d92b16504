"""mlplab.sklearn: scikit-learn's own estimator checks, and the estimators in scikit-learn's
tools (Pipeline, GridSearchCV, cross_val_score, CalibratedClassifierCV), pickling and seeds."""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from mlplab.sklearn import MLPClassifier, MLPRegressor

# small and quick: the checks fit a few hundred times on tiny data
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, device="cpu"),
    MLPRegressor(hidden_layer_sizes=(16,), max_iter=40, learning_rate_init=0.01, device="cpu"),
]
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        check(estimator)
