"""Explanations (trust.explain): each method against a hand-worked linear model, the baseline
in pixel space, integrated gradients' completeness error, targets, options and their messages,
and the missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from shipping import tiny_run
from torch import nn

from mlplab.errors import ConfigError, MissingExtraError
from mlplab.inference import Predictor
from mlplab.trust.explain import (
    LogOdds,
    attribute,
    baseline_images,
    border_levels,
    log_odds,
)
from mlplab.trust.rejection import Rejector


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "shipping"


class Linear(nn.Module):
    """f(x) = W x: every method has a closed form on it."""

    def __init__(self, shape: tuple[int, int, int], classes: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(classes, *shape, generator=torch.Generator().manual_seed(1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", x, self.weight)


def pixels(n: int = 5, shape: tuple[int, int, int] = (2, 6, 6)) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))


# ----- each method, worked by hand on a linear function ------------------------------------
def test_integrated_gradients_of_a_linear_function_is_weight_times_distance() -> None:
    model, x = Linear((2, 6, 6)), pixels()
    background = torch.tensor([0.2, 0.5])  # per channel, in pixel space
    found = attribute(model, x, target=1, background=background, steps=8)
    expected = model.weight[1].detach() * (x - background.view(1, 2, 1, 1))
    torch.testing.assert_close(found.maps, expected, atol=1e-5, rtol=1e-4)
    assert found.maps.shape == x.shape and found.maps.dtype == torch.float32
    assert found.targets.tolist() == [1] * 5
    assert found.completeness_error is not None
    assert found.completeness_error.abs().max() < 1e-4  # exact on a straight line


def test_occlusion_of_single_pixels_and_saliency_on_a_linear_function() -> None:
    model, x = Linear((2, 6, 6)), pixels()
    background = torch.tensor([0.2, 0.5])
    # one pixel (all channels) occluded at a time: f(x) - f(x with that pixel background)
    found = attribute(
        model, x, method="occlusion", target=2, background=background, window=1, stride=1
    )
    expected = (model.weight[2].detach() * (x - background.view(1, 2, 1, 1))).sum(1, keepdim=True)
    torch.testing.assert_close(found.maps, expected.expand_as(x), atol=1e-5, rtol=1e-4)
    assert found.completeness_error is None
    saliency = attribute(model, x, method="saliency", target=0)
    torch.testing.assert_close(saliency.maps, model.weight[0].detach().abs().expand_as(x))


def test_default_target_is_the_predicted_class_and_f_is_reported() -> None:
    model, x = Linear((2, 6, 6)), pixels(8)
    found = attribute(model, x, method="saliency")
    with torch.no_grad():
        out = model(x)
    assert found.targets.tolist() == out.argmax(1).tolist()
    torch.testing.assert_close(found.log_odds, out.max(1).values)
    assert found.baseline_log_odds.shape == (8,)
    per_image = attribute(model, x, method="saliency", target=[0, 1, 2, 0, 1, 2, 0, 1])
    assert per_image.targets.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


# ----- the baseline: the background in pixel space -----------------------------------------
def test_border_levels_and_baseline_images() -> None:
    x = torch.full((2, 3, 10, 10), 0.8)
    x[:, :, 2:8, 2:8] = 0.1  # the subject in the middle; the border is 0.8
    x[1, 2] = 0.3
    torch.testing.assert_close(border_levels(x), torch.tensor([[0.8, 0.8, 0.8], [0.8, 0.8, 0.3]]))
    base = baseline_images(x, None)  # each image's own border
    assert base.shape == x.shape and base[1, 2].unique().tolist() == pytest.approx([0.3])
    run_level = baseline_images(x, torch.tensor([0.0, 0.5, 1.0]))  # the run's, for every image
    assert run_level[:, 1].unique().tolist() == [0.5]


def bands(n: int = 16) -> torch.Tensor:
    """Images like tiny_run's training ones: noise of 0-59, a bright band of rows per class."""
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g)
    for c in range(4):
        x[torch.arange(n) % 4 == c, :, 2 * c : 2 * c + 2, :] += 150
    return x.to(torch.uint8)


def test_run_baseline_is_its_training_background_not_normalized_zero(root: Path) -> None:
    run = tiny_run(root)  # noise of 0-59 behind the bands: a background well above 0
    predictor = Predictor(run, style="none")
    model = LogOdds(predictor.model, predictor.head)
    level = Rejector.load(run).tensors["ink.background"] / 255
    assert 0.05 < float(level[0]) < 0.25
    found = attribute(model, bands(), background=level, steps=256)
    with torch.no_grad():
        at_background = model(torch.full((1, 1, 8, 8), float(level[0])))
    torch.testing.assert_close(found.baseline_log_odds, at_background[0, found.targets])
    # completeness: the attributions sum to f(x) - f(background), up to the reported error
    gap = found.log_odds - found.baseline_log_odds
    assert found.completeness_error is not None
    torch.testing.assert_close(
        found.maps.sum((1, 2, 3)) - gap, found.completeness_error, atol=1e-3, rtol=0
    )


def test_completeness_error_is_small_with_enough_steps(root: Path) -> None:
    """The error relative to the gap f(x) - f(baseline) (absolute below a gap of 1 nat).
    Measured here, the largest of 16 images (gaps of ~230 nats: this model is sure): 4.5% at
    8 steps, 1.8% at 16, 0.4% at 64 (the default), 0.1% at 256."""
    run = tiny_run(root)
    predictor = Predictor(run, style="none")
    model = LogOdds(predictor.model, predictor.head)
    level = Rejector.load(run).tensors["ink.background"] / 255
    relative = []
    for steps in (8, 256):
        found = attribute(model, bands(), steps=steps, background=level)
        gap = (found.log_odds - found.baseline_log_odds).abs()
        assert found.completeness_error is not None
        relative.append(float((found.completeness_error.abs() / gap.clamp_min(1)).max()))
    assert relative[1] < 0.005 < 0.02 < relative[0]


# ----- refusals ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"method": "integrated_gradients"},
            "explanation method must be one of integrated-gradients, occlusion, saliency; got "
            "'integrated_gradients' (did you mean 'integrated-gradients'?)",
        ),
        ({"steps": 0}, "steps must be an integer >= 1; got 0"),
        (
            {"method": "occlusion", "window": 7},
            "window must fit the model's input (6x6 pixels): at most 6; got 7",
        ),
        (
            {"method": "occlusion", "window": 2, "stride": 3},
            "stride must be at most the window (2), or pixels between windows are never occluded; got 3",
        ),
        ({"target": 3}, "target must be a class index from 0 to 2; got [3, 3, 3, 3, 3]"),
        ({"target": [0, 1]}, "target must be one class index or one per image (5); got 2"),
    ],
)
def test_refusals_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        attribute(Linear((2, 6, 6)), pixels(), **options)
    assert str(info.value) == message


def test_missing_captum_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(MissingExtraError) as info:
        attribute(Linear((2, 6, 6)), pixels())
    assert str(info.value) == (
        "explanations needs the Python package 'captum', which is not installed; "
        "install it with: pip install 'mlplab[explain]'"
    )


def _log_odds_reference(z: torch.Tensor) -> torch.Tensor:
    """The definition: z_k - logsumexp over every other class (a K x K mask per row)."""
    k = z.shape[1]
    others = z[:, None, :].expand(-1, k, -1).masked_fill(torch.eye(k, dtype=torch.bool), -torch.inf)
    return z - others.logsumexp(2)


def _values_and_gradients(f, z: torch.Tensor, weights: torch.Tensor):
    z = z.clone().requires_grad_(True)
    y = f(z)
    (grad,) = torch.autograd.grad((y * weights.to(z.dtype)).sum(), z)
    return y.detach().double(), grad.double()


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_log_odds_is_the_definition_in_linear_time(classes: int) -> None:
    """O(K) a row, and as close to the definition in float64 (values and gradients) as the
    K x K definition itself is in float32, also for rows far from zero, a tie for the
    maximum and a near-certain class (where 1 - p cancels)."""
    g = torch.Generator().manual_seed(classes)
    spread = torch.tensor([0.1, 3.0, 30.0, 300.0]).repeat(16)[:, None]
    z = torch.randn(64, classes, generator=g) * spread
    z[0, :2] = z[0].max() + 1  # a tie for the maximum
    z[1] = -40.0
    z[1, 3 % classes] = 40.0  # p = 1 - 1e-35: log(1 - p) needs the other classes themselves
    z[2] += 1e4  # far from zero
    weights = torch.randn(64, classes, generator=g)
    truth = _values_and_gradients(_log_odds_reference, z.double(), weights)
    definition = _values_and_gradients(_log_odds_reference, z, weights)
    got = _values_and_gradients(log_odds, z, weights)
    for new, old, true in zip(got, definition, truth, strict=True):
        assert torch.isfinite(new).all()
        assert (new - true).abs().max() <= 1.5 * (old - true).abs().max() + 1e-5
