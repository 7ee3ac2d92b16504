"""What each head's outputs mean: probabilities and log-probabilities against torch's own
softmax, the losses against torch's, the loss names, the export's output names."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlplab import MLP
from mlplab.errors import ConfigError
from mlplab.model import heads
from mlplab.model.heads import expected_initial_loss, loss_fn
from mlplab.vocab import HEADS


def test_losses_match_torch() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(8, 5), torch.randint(0, 5, (8,))
    torch.testing.assert_close(
        loss_fn("logits")(logits, target), nn.CrossEntropyLoss()(logits, target)
    )
    log_probs = torch.log_softmax(logits, 1)
    torch.testing.assert_close(
        loss_fn("log_softmax")(log_probs, target), nn.NLLLoss()(log_probs, target)
    )
    probs = torch.softmax(logits, 1)
    torch.testing.assert_close(
        loss_fn("softmax")(probs, target), -probs[torch.arange(8), target].mean()
    )
    assert expected_initial_loss("logits", 10) == pytest.approx(math.log(10))
    assert expected_initial_loss("softmax", 10) == pytest.approx(-0.1)


def test_fresh_model_loss_is_near_ln_classes() -> None:
    torch.manual_seed(0)
    model = MLP((1, 28, 28), [250, 100], 10)
    loss = loss_fn("logits")(model(torch.randn(512, 1, 28, 28)), torch.randint(0, 10, (512,)))
    assert abs(float(loss.detach()) - math.log(10)) < 0.1


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_heads_probabilities_sum_to_1_and_are_the_softmax_of_its_logits(
    head: str, dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(16, 7, generator=g) * 5).to(dtype)
    logits[0, 3] = 120.0  # a confident row: the other classes' probabilities underflow
    outputs = heads.from_logits(head, logits)
    p = heads.probabilities(head, outputs)
    log_p = heads.log_probabilities(head, outputs)
    assert p.dtype == log_p.dtype == dtype  # each caller keeps its own precision
    torch.testing.assert_close(p.sum(1), torch.ones(16, dtype=dtype))
    torch.testing.assert_close(p, torch.softmax(logits, 1))
    torch.testing.assert_close(log_p.exp(), torch.softmax(logits, 1))
    assert torch.isfinite(log_p).all()  # even where a probability underflowed to 0
    if head != "softmax":  # a softmax head's log of an underflowed 0 is clamped, not exact
        torch.testing.assert_close(log_p, torch.log_softmax(logits, 1))


@pytest.mark.parametrize("head", HEADS)
def test_outputs_from_log_probabilities_mean_those_probabilities(head: str) -> None:
    log_p = torch.log_softmax(torch.randn(5, 4), 1)
    outputs = heads.from_log_probabilities(head, log_p)
    torch.testing.assert_close(heads.probabilities(head, outputs), log_p.exp())


@pytest.mark.parametrize("head", HEADS)
def test_a_models_outputs_are_its_heads_outputs_of_its_output_layer(head: str) -> None:
    torch.manual_seed(0)
    model = MLP((4,), [8], 3, head=head).eval()
    x = torch.randn(6, 4)
    logits = model.output(model.hidden(x))
    torch.testing.assert_close(model(x), heads.from_logits(head, logits))
    torch.testing.assert_close(heads.probabilities(head, model(x)), torch.softmax(logits, 1))


def test_every_head_has_a_loss_name_and_an_export_name() -> None:
    assert heads.CLASSIFICATION_LOSSES == {
        "logits": "cross-entropy",
        "log_softmax": "nll",
        "softmax": "nll of probabilities",
    }
    assert heads.OUTPUT_NAMES == {
        "logits": "logits",
        "log_softmax": "log_probabilities",
        "softmax": "probabilities",
    }


def test_regression_losses_are_named_by_loss() -> None:
    out, target = torch.randn(6, 1), torch.randn(6)
    torch.testing.assert_close(
        loss_fn("logits", loss="mse")(out, target), F.mse_loss(out[:, 0], target)
    )
    torch.testing.assert_close(
        loss_fn("logits", loss="mae")(out, target), F.l1_loss(out[:, 0], target)
    )
    smoothed = loss_fn("logits", label_smoothing=0.1)
    logits, labels = torch.randn(6, 3), torch.randint(0, 3, (6,))
    torch.testing.assert_close(
        smoothed(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1)
    )


def test_an_unknown_head_is_one_line_naming_the_heads() -> None:
    with pytest.raises(ConfigError) as error:
        heads.probabilities("softmx", torch.zeros(1, 2))
    assert str(error.value) == (
        "model.head must be one of logits, log_softmax, softmax; got 'softmx' (did you mean 'softmax'?)"
    )


def test_probabilities_per_head_by_hand() -> None:
    quarter = torch.tensor([[0.25, 0.75]])
    logits = torch.tensor([[0.0, math.log(3)]])
    torch.testing.assert_close(heads.probabilities("logits", logits), quarter)
    torch.testing.assert_close(heads.probabilities("log_softmax", quarter.log()), quarter)
    torch.testing.assert_close(heads.probabilities("softmax", quarter), quarter)
    torch.testing.assert_close(heads.log_probabilities("softmax", quarter), quarter.log())


# ----- a temperature: the calibrated probabilities are softmax(logits / T) for every head -----
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_every_heads_calibrated_probabilities_are_the_softmax_of_its_logits_over_t(
    head: str, temperature: float
) -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 6, generator=g, dtype=torch.float64) * 4
    outputs = heads.from_logits(head, logits)
    expected = torch.softmax(logits / temperature, 1)
    torch.testing.assert_close(heads.probabilities(head, outputs, temperature), expected)
    torch.testing.assert_close(
        heads.log_probabilities(head, outputs, temperature),
        torch.log_softmax(logits / temperature, 1),
    )
    # the exported model's outputs mean the same probabilities, through the head's own rule
    calibrated = heads.with_temperature(head, outputs, temperature)
    torch.testing.assert_close(heads.probabilities(head, calibrated), expected)
    # a temperature never changes the predicted class
    assert torch.equal(calibrated.argmax(1), outputs.argmax(1))
    assert torch.equal(heads.probabilities(head, outputs, temperature).argmax(1), logits.argmax(1))


def test_the_logits_heads_calibrated_outputs_are_its_logits_over_t_by_hand() -> None:
    z = torch.tensor([[2.0, -1.0, 0.5]])
    torch.testing.assert_close(heads.with_temperature("logits", z, 2.0), z / 2)
    torch.testing.assert_close(
        heads.with_temperature("log_softmax", torch.log_softmax(z, 1), 2.0),
        torch.log_softmax(z / 2, 1),
    )
    # T = 1 gives the head's outputs back untouched (the same tensor: older runs are unchanged)
    assert heads.with_temperature("softmax", z, 1.0) is z


def test_a_softmax_heads_underflowed_probability_stays_finite_under_a_temperature() -> None:
    p = torch.tensor([[1.0, 0.0, 0.0]])  # an underflowed 0: its log is clamped, not -inf
    calibrated = heads.probabilities("softmax", p, 5.0)
    assert torch.isfinite(calibrated).all() and calibrated[0, 0] > 0.99
    torch.testing.assert_close(calibrated.sum(1), torch.ones(1))
