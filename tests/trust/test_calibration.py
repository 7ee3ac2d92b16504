"""Calibration: the metrics against independent implementations (torchmetrics' ECE, torch's
cross-entropy, a hand-worked Brier score), the temperature against scipy's bounded search,
and a run's temperature from training to ``mlplab calibrate``."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torchmetrics.classification import MulticlassCalibrationError

from mlplab import Config, Dataset, load_dataset, train
from mlplab.errors import ConfigError, RunError
from mlplab.model import heads
from mlplab.run.directory import Run
from mlplab.trust import calibration
from mlplab.trust.calibration import (
    brier_score,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability,
    score,
)
from mlplab.vocab import HEADS


def _reference_ece(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    metric = MulticlassCalibrationError(num_classes=probabilities.shape[1], n_bins=15, norm="l1")
    return float(metric(probabilities, labels))


def _overconfident(n: int, classes: int, sharpen: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Logits ``sharpen`` times too sure: labels drawn from softmax(z), outputs sharpen * z."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=g, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    return z * sharpen, labels


# ----- the ECE against torchmetrics ---------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_ece_matches_torchmetrics_on_random_probabilities(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    probabilities = torch.softmax(torch.randn(2000, 10, generator=g) * 3, 1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        _reference_ece(probabilities, labels), abs=1e-6
    )


@pytest.mark.parametrize("sharpen", [0.5, 1.0, 1.5])
def test_ece_matches_torchmetrics_on_a_classifier_like_mnists(sharpen: float) -> None:
    # a 97%-accurate, confident classifier: most confidences in the top bin, a few mistakes
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (5000,), generator=g)
    logits = torch.randn(5000, 10, generator=g)
    right = torch.rand(5000, generator=g) < 0.97
    predicted = torch.where(right, labels, (labels + 1) % 10)
    logits[torch.arange(5000), predicted] += 4 + 2 * torch.rand(5000, generator=g)
    probabilities = torch.softmax(logits * sharpen, 1)
    assert probabilities.max() < 1  # torchmetrics bins a confidence of exactly 1 on its own
    ours = expected_calibration_error(probabilities, labels)
    assert ours == pytest.approx(_reference_ece(probabilities, labels), abs=1e-6)
    assert ours > 0.001  # a figure worth comparing, not two zeros


def test_reliability_by_hand() -> None:
    probabilities = torch.tensor(
        [[0.9, 0.1], [0.65, 0.35], [0.55, 0.45], [1.0, 0.0], [0.05, 0.95]], dtype=torch.float64
    )
    labels = torch.tensor([0, 1, 0, 0, 0])  # right, wrong, right, right, wrong
    bins = reliability(probabilities, labels)
    assert len(bins.counts) == 15 and bins.edges[0] == 0 and bins.edges[-1] == 1
    # 0.55 in [8/15, 9/15), 0.65 in [9/15, 10/15), 0.9 in [13/15, 14/15), 0.95 and 1 in the last
    assert bins.counts == [0] * 8 + [1, 1, 0, 0, 0, 1, 2]
    assert bins.accuracy[14] == 0.5 and bins.confidence[14] == pytest.approx(0.975)
    assert math.isnan(bins.accuracy[0]) and bins.to_dict()["accuracy"][0] is None
    # (|1 - 0.55| + |0 - 0.65| + |1 - 0.9| + 2 |0.5 - 0.975|) / 5
    assert bins.ece == pytest.approx((0.45 + 0.65 + 0.1 + 0.95) / 5)
    assert bins.samples == 5


# ----- NLL and Brier ---------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 0.7, 2.0])
def test_nll_is_torchs_cross_entropy(temperature: float) -> None:
    logits, labels = _overconfident(300, 5, 1.0, seed=1)
    expected = float(F.cross_entropy(logits / temperature, labels))
    assert negative_log_likelihood(torch.log_softmax(logits / temperature, 1), labels) == (
        pytest.approx(expected, rel=1e-12)
    )
    assert score(logits, labels, temperature).nll == pytest.approx(expected, rel=1e-12)


def test_brier_score_by_hand() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    labels = torch.tensor([0, 1, 0])
    # (0.3² + 0.2² + 0.1²) + (0.1² + 0.2² + 0.1²) + (0.7² + 0.3² + 0.4²) = 0.14 + 0.06 + 0.74
    assert brier_score(p, labels) == pytest.approx(0.94 / 3)


def test_no_samples_give_nan_and_temperature_1() -> None:
    empty, none = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    assert math.isnan(expected_calibration_error(empty, none))
    assert math.isnan(brier_score(empty, none)) and math.isnan(negative_log_likelihood(empty, none))
    assert fit_temperature("logits", empty, none) == 1.0


# ----- the temperature -------------------------------------------------------------------
def _scipy_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits.double() / math.exp(log_t), labels))

    low, high = (math.log(b) for b in calibration.BOUNDS)
    found = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-10})
    return math.exp(found.x)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(("sharpen", "seed"), [(3.0, 0), (0.4, 1), (1.0, 2)])
def test_the_temperature_is_scipys_bounded_minimum(head: str, sharpen: float, seed: int) -> None:
    logits, labels = _overconfident(2000, 10, sharpen, seed)
    outputs = heads.from_logits(head, logits.float())  # what a model returns: float32
    fitted = fit_temperature(head, outputs, labels)
    expected = _scipy_temperature(heads.to_logits(head, outputs), labels)
    assert fitted == pytest.approx(expected, abs=1e-4)
    assert fitted == pytest.approx(sharpen, rel=0.15)  # it undoes the sharpening
    z = heads.to_logits(head, outputs)
    assert score(z, labels, fitted).nll <= score(z, labels).nll


@pytest.mark.parametrize("head", HEADS)
def test_a_temperature_never_changes_the_predicted_class(head: str) -> None:
    logits, labels = _overconfident(1000, 10, 3.0, seed=3)
    outputs = heads.from_logits(head, logits.float())
    t = fit_temperature(head, outputs, labels)
    assert t != pytest.approx(1.0)
    calibrated = heads.probabilities(head, outputs, t)
    assert torch.equal(calibrated.argmax(1), outputs.argmax(1))
    assert torch.equal(heads.with_temperature(head, outputs, t).argmax(1), outputs.argmax(1))


@pytest.mark.parametrize(
    ("case", "bound"), [("separable", calibration.BOUNDS[0]), ("noise", calibration.BOUNDS[1])]
)
def test_a_bound_reached_is_kept_and_logged(
    case: str, bound: float, caplog: pytest.LogCaptureFixture
) -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=g)
    if case == "separable":  # every sample right by a margin: the NLL falls as T -> 0
        logits = F.one_hot(labels, 4).double() * 5
    else:  # confident outputs unrelated to the labels: the NLL falls as T -> infinity
        logits = torch.randn(200, 4, generator=g, dtype=torch.float64) * 5
    with caplog.at_level(logging.INFO, logger="mlplab"):
        assert fit_temperature("logits", logits, labels) == pytest.approx(bound)
    assert (
        f"calibration: the temperature stopped at its {'lower' if bound < 1 else 'upper'} bound {bound:g}"
        in caplog.text
    )


# ----- a run: fitted when training ends, refitted by calibrate -----------------------------
def _config(tmp_path: Path, **overrides: object) -> Config:
    settings = {
        "data.dataset": "digits",
        "model.hidden": [16],
        "train.epochs": 2,
        "train.threads": 1,
        "run.dir": str(tmp_path / "runs"),
        "run.name": "t",
    }
    return Config().override({**settings, **overrides})


def _model_json(run: Path) -> dict:
    return json.loads((run / "model.json").read_text())


def test_training_fits_the_temperature_and_calibrate_refits_it(tmp_path: Path) -> None:
    result = train(_config(tmp_path))
    trained_t = _model_json(result.run_dir)["temperature"]
    assert calibration.BOUNDS[0] < trained_t < calibration.BOUNDS[1]
    summary = result.summary
    assert {"test_ece", "test_ece_uncalibrated", "test_nll", "test_brier"} <= summary.keys()
    assert 0 <= summary["test_ece"] <= 1 and summary["test_nll"] > 0

    # refitting on the same validation split finds the same temperature
    again = calibrate(result.run_dir)
    assert again.temperature_before == trained_t
    assert again.temperature == pytest.approx(trained_t, rel=1e-6)
    assert again.split == "val" and again.dataset == "digits" and again.samples > 0
    assert again.nll_after <= again.nll_before + 1e-9

    # another dataset's test split: a different temperature, written down
    digits = load_dataset("digits")
    copy = Dataset("digits-copy", digits.train, digits.test, digits.classes, "a copy")
    (run := Run.open(result.run_dir)).save_temperature(1.0)
    other = calibrate(result.run_dir, dataset=copy)
    assert other.split == "test" and other.temperature_before == 1.0
    assert other.dataset == "digits-copy" and other.samples == len(digits.test)
    assert _model_json(result.run_dir)["temperature"] == other.temperature == run.temperature()
    assert other.nll_after <= other.nll_before

    # the run's own test split never fits anything
    with pytest.raises(ConfigError) as error:
        calibrate(result.run_dir, dataset="digits")
    assert str(error.value) == (
        f"dataset 'digits' is the one run {result.run_dir} was trained on: its test split is "
        "for scoring, never for fitting; calibrate on the validation split (--split val) or on "
        "another dataset"
    )


def test_a_run_without_a_validation_split_keeps_temperature_1(tmp_path: Path) -> None:
    result = train(_config(tmp_path, **{"data.val_size": 0}))
    assert "temperature" not in _model_json(result.run_dir)
    assert Run.open(result.run_dir).temperature() == 1.0
    assert result.summary["test_ece"] == result.summary["test_ece_uncalibrated"]
    with pytest.raises(RunError) as error:
        calibrate(result.run_dir)
    assert str(error.value) == (
        f"run {result.run_dir} holds out no validation split (data.val_size=0); pass --dataset "
        "NAME to calibrate on another dataset's test split"
    )


def test_a_regression_run_is_one_line(tmp_path: Path) -> None:
    result = train(_config(tmp_path, **{"data.dataset": "make-regression", "train.loss": "mse"}))
    assert "temperature" not in _model_json(result.run_dir)
    assert "test_ece" not in result.summary
    with pytest.raises(RunError) as error:
        calibrate(result.run_dir)
    assert str(error.value) == (
        f"calibration applies to classification runs; {result.run_dir} is a regression"
    )


def test_only_the_validation_split_is_offered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^calibrate's split must be val .*got 'test'"):
        calibrate(tmp_path, split="test")


@pytest.mark.parametrize("bad", [0, -1.5, "2", float("inf")])
def test_a_bad_temperature_in_model_json_is_one_line(tmp_path: Path, bad: object) -> None:
    result = train(_config(tmp_path, **{"train.epochs": 1}))
    info = _model_json(result.run_dir)
    info["temperature"] = bad
    (result.run_dir / "model.json").write_text(json.dumps(info))
    with pytest.raises(RunError, match="temperature must be a finite number > 0; got"):
        Run.open(result.run_dir).temperature()


@pytest.mark.parametrize("key", ["test_ece", "test_ece_uncalibrated", "test_nll", "test_brier"])
def test_the_summarys_calibration_figures_must_be_numbers(tmp_path: Path, key: str) -> None:
    result = train(_config(tmp_path, **{"train.epochs": 1}))
    summary = {**result.summary, key: "low"}
    (result.run_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RunError, match=f"summary.json: {key} must be a number or null; got 'low'"):
        Run.open(result.run_dir).summary()
