"""mlplab.sklearn: scikit-learn's own estimator checks, and the estimators in scikit-learn's
tools (Pipeline, GridSearchCV, cross_val_score, CalibratedClassifierCV), pickling and seeds."""

from __future__ import annotations

import logging
import pickle
import pickletools
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlplab import Config, Dataset
from mlplab.sklearn import MLPClassifier, MLPRegressor
from mlplab.training.device import isolated
from mlplab.training.session import build_session

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


# ----- in scikit-learn's tools ------------------------------------------------------------
def _digits(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n], y[:n]


def _quiet(**params: Any) -> dict[str, Any]:
    quick = {
        "hidden_layer_sizes": (32,),
        "max_iter": 15,
        "batch_size": 50,
        "learning_rate_init": 0.01,
    }
    return quick | {"random_state": 0, "device": "cpu"} | params


@pytest.fixture(autouse=True)
def _no_convergence_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize("before", [StandardScaler(), PCA(n_components=20, random_state=0)])
def test_in_a_pipeline(before: Any) -> None:
    X, y = _digits()
    pipe = make_pipeline(before, MLPClassifier(**_quiet(normalize="none")))
    pipe.fit(X[:300], y[:300])
    assert pipe.score(X[300:], y[300:]) > 0.8
    assert pipe[-1].n_features_in_ == (64 if isinstance(before, StandardScaler) else 20)


def test_grid_search_over_hidden_sizes_and_lr_in_one_process_and_two() -> None:
    X, y = _digits(300)
    grid = {"hidden_layer_sizes": [(8,), (32,)], "learning_rate_init": [1e-4, 1e-2]}
    one = GridSearchCV(MLPClassifier(**_quiet()), grid, cv=2, n_jobs=1).fit(X, y)
    assert one.best_params_ == {"hidden_layer_sizes": (32,), "learning_rate_init": 1e-2}
    scores = one.cv_results_["mean_test_score"]
    assert scores.max() > 0.8 and scores.min() < 0.5  # 8 units at 1e-4 barely learn in 15 epochs
    # two worker processes: each estimator's seed is its own, so the same weights, batches
    # and scores come back
    two = GridSearchCV(MLPClassifier(**_quiet()), grid, cv=2, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(two.cv_results_["mean_test_score"], scores)
    assert two.best_params_ == one.best_params_


def test_cross_val_score() -> None:
    X, y = _digits(300)
    scores = cross_val_score(MLPClassifier(**_quiet()), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    r2 = cross_val_score(MLPRegressor(**_quiet(learning_rate_init=0.01)), *_regression(), cv=3)
    assert r2.min() > 0.8


def _regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    return X, X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.normal(size=300)


def test_calibrated_classifier() -> None:
    X, y = _digits()
    calibrated = CalibratedClassifierCV(MLPClassifier(**_quiet()), method="isotonic", cv=3).fit(
        X[:300], y[:300]
    )
    p = calibrated.predict_proba(X[300:])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (calibrated.predict(X[300:]) == y[300:]).mean() > 0.8


# ----- pickling, seeds -------------------------------------------------------------------
def test_pickle_round_trip_holds_no_torch_pickle() -> None:
    X, y = _digits(200)
    clf = MLPClassifier(**_quiet()).fit(X, y)
    blob = pickle.dumps(clf)
    modules = {arg.split()[0] for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"}
    modules |= {
        arg
        for op, arg, _ in pickletools.genops(blob)
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE") and arg.startswith("torch")
    }
    assert not any(m.startswith("torch") for m in modules), modules
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    for a, b in zip(back.coefs_, clf.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    # the optimizer and the shuffling generator came back too: partial_fit goes on alike
    back.partial_fit(X, y)
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.loss_curve_ == clf.loss_curve_


def test_random_state_decides_everything() -> None:
    X, y = _digits(200)
    a = MLPClassifier(**_quiet(random_state=1)).fit(X, y)
    b = MLPClassifier(**_quiet(random_state=1)).fit(X, y)
    c = MLPClassifier(**_quiet(random_state=2)).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_random_state_draws_the_weights_mlplab_train_draws() -> None:
    """random_state=S is train.seed=S: the initial weights are the loop's own."""
    X, y = _digits(100)
    # a rate so small the one step leaves every weight as it was drawn
    clf = MLPClassifier(**_quiet(random_state=7, max_iter=1, learning_rate_init=1e-30)).fit(X, y)
    config = Config().override({"model.hidden": [32], "train.seed": 7, "data.val_size": 0})
    images = X.reshape(-1, 64, 1, 1).astype(np.float32)
    data = Dataset.from_numpy("d", tuple("0123456789"), "test", (images, y), (images[:0], y[:0]))
    with isolated("cpu") as device:
        model = build_session(config, data, device).model
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(clf._model.state_dict()[name], tensor, rtol=0, atol=0)


# ----- inputs: images, tables, DataFrames -------------------------------------------------
def test_images_with_augmentation() -> None:
    X, y = _digits(300)
    pixels = (X * 255 / 16).round().astype(np.uint8).reshape(-1, 8, 8)  # (N, H, W)
    aug = {"rotation": 10, "shift": 1}
    clf = MLPClassifier(**_quiet(augmentation=aug)).fit(pixels[:200], y[:200])
    assert clf.n_features_in_ == 64 and clf.coefs_[0].shape == (64, 32)
    assert clf.score(pixels[200:], y[200:]) > 0.7
    again = MLPClassifier(**_quiet(augmentation=aug)).fit(pixels[:200], y[:200])
    assert again.loss_curve_ == clf.loss_curve_  # augmentation draws from the seeded stream
    plain = MLPClassifier(**_quiet()).fit(pixels[:200], y[:200])
    assert plain.loss_curve_ != clf.loss_curve_
    # the same images flat, with image_shape; and (N, C, H, W)
    flat = MLPClassifier(**_quiet(augmentation=aug, image_shape=(8, 8))).fit(
        pixels[:200].reshape(200, 64), y[:200]
    )
    assert flat.loss_curve_ == clf.loss_curve_
    chw = MLPClassifier(**_quiet(augmentation=aug)).fit(pixels[:200, None], y[:200])
    assert chw.loss_curve_ == clf.loss_curve_
    with pytest.raises(ValueError, match=r"X has images of shape \(1, 4, 16\)"):
        clf.predict(pixels.reshape(-1, 4, 16))


def test_augmentation_needs_pixels() -> None:
    X, y = _digits(50)
    with pytest.raises(ValueError, match="augmentation needs images of uint8 pixels"):
        MLPClassifier(**_quiet(augmentation={"shift": 1})).fit(X.reshape(-1, 8, 8), y)
    with pytest.raises(ValueError, match="did you mean 'augment.rotation'"):
        MLPClassifier(**_quiet(augmentation={"rotate": 5})).fit(
            X.astype(np.uint8).reshape(-1, 8, 8), y
        )


def test_dataframes_keep_their_column_names() -> None:
    pd = pytest.importorskip("pandas")
    X, y = _digits(200)
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    clf = MLPClassifier(**_quiet()).fit(frame, pd.Series(y))
    assert list(clf.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(
        clf.predict(frame), MLPClassifier(**_quiet()).fit(X, y).predict(X)
    )


def test_string_labels_and_the_folded_first_layer() -> None:
    X, y = _digits(200)
    labels = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    clf = MLPClassifier(**_quiet(activation="tanh")).fit(X, labels)
    assert sorted(clf.classes_) == sorted(set(labels))
    # coefs_ and intercepts_ act on X as given: a hand-written forward pass gives predict_proba
    z = np.tanh(X @ clf.coefs_[0] + clf.intercepts_[0]) @ clf.coefs_[1] + clf.intercepts_[1]
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(1, keepdims=True), clf.predict_proba(X), atol=1e-5)


# ----- scikit-learn's behaviour: early stopping, warm start, partial_fit ------------------
def test_early_stopping_keeps_the_best_validation_score() -> None:
    X, y = _digits()
    clf = MLPClassifier(
        **_quiet(early_stopping=True, max_iter=60, n_iter_no_change=3, learning_rate_init=0.01)
    ).fit(X, y)
    assert clf.n_iter_ < 60 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert MLPClassifier(**_quiet()).fit(X, y).validation_scores_ is None


def test_warm_start_and_partial_fit_continue() -> None:
    X, y = _digits(200)
    clf = MLPClassifier(**_quiet(warm_start=True, max_iter=5)).fit(X, y)
    first = clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert not np.array_equal(first, clf.coefs_[0])
    inc = MLPClassifier(**_quiet())
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        inc.partial_fit(X[:50], y[:50])
    inc.partial_fit(X[:50], y[:50], classes=np.arange(10))
    inc.partial_fit(X[50:100], y[50:100])
    assert inc.n_iter_ == 2 and list(inc.classes_) == list(range(10))


def test_parameters_are_checked_with_scikit_learns_message() -> None:
    with pytest.raises(
        ValueError,
        match=r"The 'alpha' parameter of MLPClassifier must be a float in the range \[0.0, inf\). Got -1 instead.",
    ):
        MLPClassifier(alpha=-1).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(
        ValueError, match="The 'solver' parameter of MLPRegressor must be a str among"
    ):
        MLPRegressor(solver="lbfgs").fit([[0.0], [1.0]], [0, 1])


def test_a_device_message_names_the_estimators_parameter() -> None:
    """Not the command line's --device, which an estimator's user never typed."""
    from mlplab.errors import ConfigError, TrainingError

    with pytest.raises(ConfigError) as refused:
        MLPClassifier(device="gpu").fit([[0.0], [1.0]], [0, 1])
    assert str(refused.value) == (
        "device must be one of auto, cpu, cuda, cuda:N, mps (device='...'); got 'gpu'"
    )
    if not torch.cuda.is_available():
        with pytest.raises(
            TrainingError, match="^device='cuda' but .*; use device='cpu' or device='auto'$"
        ):
            MLPRegressor(device="cuda").fit([[0.0], [1.0]], [0.0, 1.0])


def test_verbose_logs_and_prints_nothing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = _digits(100)
    with caplog.at_level(logging.INFO, logger="mlplab"):
        MLPClassifier(**_quiet(max_iter=3, verbose=True)).fit(X, y)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]
    assert capsys.readouterr() == ("", "")


def test_multi_output_regression() -> None:
    X, t = _regression()
    y = np.stack([t, -t], axis=1)
    reg = MLPRegressor(**_quiet(learning_rate_init=0.01, max_iter=30)).fit(X, y)
    assert reg.predict(X).shape == (300, 2) and reg.score(X, y) > 0.9


def test_a_feature_constant_in_training_is_not_blown_up() -> None:
    """A pixel that is 0 in every training image is scaled by 1, as StandardScaler does:
    a test image with ink there moves the first layer by the weight, not by 1e12 times it."""
    X, y = _digits(200)
    assert (X[:, 0] == 0).all()  # the digits' corner pixel
    clf = MLPClassifier(**_quiet()).fit(X, y)
    assert np.abs(clf.coefs_[0][0]).max() < 10
    inked = X.copy()
    inked[:, 0] = 16
    assert np.isfinite(clf.predict_proba(inked)).all()
    assert (clf.predict(inked) == clf.predict(X)).mean() > 0.5


def test_ctrl_c_keeps_the_epochs_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlplab.integrations import sklearn as module

    X, y = _digits(100)
    real, calls = module._train_epoch, []

    def interrupted_in_the_third(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(module, "_train_epoch", interrupted_in_the_third)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf = MLPClassifier(**_quiet(max_iter=10)).fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.score(X, y) > 0.5
