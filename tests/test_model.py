"""The MLP: shapes, parameter counts, heads, inits, rebuild from spec, plain-torch reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mlplab import MLP, model_summary
from mlplab.errors import ConfigError
from mlplab.losses import expected_initial_loss, loss_fn


def test_tutorial_parameter_count_and_shapes() -> None:
    model = MLP((1, 28, 28), [250, 100], 10)
    assert model.num_parameters == 222_360
    x = torch.randn(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    out, hidden = model(x, return_hidden=True)
    assert out.shape == (5, 10) and hidden.shape == (5, 100)


def test_logistic_regression() -> None:
    model = MLP((1, 8, 8), [], 10)
    assert model.num_parameters == 64 * 10 + 10
    assert model(torch.randn(2, 64)).shape == (2, 10)


def test_same_function_as_plain_torch() -> None:
    """The reference: the tutorial's nn.Sequential with the same weights gives the same outputs."""
    torch.manual_seed(0)
    model = MLP((1, 28, 28), [250, 100], 10, activation="tanh")
    reference = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 250),
        nn.Tanh(),
        nn.Linear(250, 100),
        nn.Tanh(),
        nn.Linear(100, 10),
    )
    linears = [m for m in reference if isinstance(m, nn.Linear)]
    for ours, theirs in zip(
        [b.linear for b in model.hidden] + [model.output], linears, strict=True
    ):
        theirs.load_state_dict(ours.state_dict())
    x = torch.randn(7, 1, 28, 28)
    torch.testing.assert_close(model(x), reference(x))


@pytest.mark.parametrize("head", ["logits", "log_softmax", "softmax"])
def test_heads(head: str) -> None:
    torch.manual_seed(0)
    model = MLP((4,), [8], 3, head=head)
    x = torch.randn(6, 4)
    out = model(x)
    if head == "logits":  # raw scores: the output layer applied to the last hidden layer
        torch.testing.assert_close(out, model.output(model.hidden(x)))
    elif head == "log_softmax":
        torch.testing.assert_close(out.exp().sum(1), torch.ones(6))
    elif head == "softmax":
        torch.testing.assert_close(out.sum(1), torch.ones(6))
        assert (out >= 0).all()


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


@pytest.mark.parametrize("init", ["kaiming", "xavier", "orthogonal"])
def test_inits(init: str) -> None:
    torch.manual_seed(0)
    model = MLP((100,), [200, 50], 10, init=init)
    first = model.hidden[0].linear
    assert torch.count_nonzero(first.bias) == 0
    if init == "kaiming":  # He: std = sqrt(2 / fan_in)
        assert float(first.weight.detach().std()) == pytest.approx(math.sqrt(2 / 100), rel=0.1)
    if (
        init == "xavier"
    ):  # Glorot uniform with ReLU's gain: std = sqrt(2) sqrt(2 / (fan_in + fan_out))
        w = first.weight.detach()
        assert float(w.std()) == pytest.approx(math.sqrt(2) * math.sqrt(2 / 300), rel=0.05)
        assert float(w.abs().max()) <= math.sqrt(2) * math.sqrt(6 / 300)
    if init == "orthogonal":  # rows orthogonal (fan_out 200 > fan_in 100: columns)
        w = first.weight.detach()
        torch.testing.assert_close(
            w.T @ w, torch.eye(100) * float((w.T @ w)[0, 0]), atol=1e-4, rtol=0
        )


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = MLP((20,), [50], 2, dropout=0.5)
    x = torch.randn(4, 20)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_spec_rebuilds_the_model() -> None:
    model = MLP(
        (1, 8, 8), [32, 16], 10, activation="gelu", dropout=0.1, head="log_softmax", init="xavier"
    )
    spec = model.spec()
    again = MLP.from_spec(spec)
    again.load_state_dict(model.state_dict())
    assert again.spec() == spec
    model.eval(), again.eval()
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(again(x), model(x))


def test_summary_table() -> None:
    text = model_summary(MLP((1, 28, 28), [250, 100], 10, dropout=0.2))
    lines = text.splitlines()
    assert lines[2].split() == ["hidden.0.linear", "Linear(784,", "250)", "(250,)", "196,250"]
    assert "hidden.0.dropout" in text and "Dropout(0.2)" in text
    assert lines[-1].split() == ["total", "222,360"]
    assert "784-250-100-10, relu, dropout=0.2, head=logits, parameters=222,360" in repr(
        MLP((1, 28, 28), dropout=0.2)
    )


def test_bad_arguments() -> None:
    with pytest.raises(
        ConfigError,
        match="MLP activation must be one of relu, sigmoid, tanh, gelu; got 'rleu' \\(did you mean 'relu'\\?\\)",
    ):
        MLP((4,), [8], 2, activation="rleu")
    with pytest.raises(ConfigError, match="MLP needs classes >= 1"):
        MLP((4,), [0], 2)


def test_crop_is_the_same_network_on_the_cropped_image() -> None:
    torch.manual_seed(0)
    cropped = MLP((3, 9, 8), [12], 4, crop=2)
    assert cropped.input_features == 3 * 5 * 4 and cropped.widths == [60, 12, 4]
    reference = MLP((3, 5, 4), [12], 4)
    reference.load_state_dict(cropped.state_dict())
    x = torch.randn(6, 3, 9, 8)
    torch.testing.assert_close(cropped(x), reference(x[:, :, 2:7, 2:6]))
    again = MLP.from_spec(cropped.spec())
    assert again.spec()["crop"] == 2 and again.input_features == 60
    assert MLP.from_spec({k: v for k, v in reference.spec().items() if k != "crop"}).crop == 0
    lines = model_summary(cropped).splitlines()
    assert lines[1].split() == ["input", "crop", "2,", "flatten", "(60,)", "0"]
    assert "60-12-4, crop=2, relu" in repr(cropped)


@pytest.mark.parametrize(
    "shape, crop, message",
    [
        ((1, 28, 28), -1, "model.crop must be a whole number >= 0; got -1"),
        ((1, 28, 28), 2.0, "model.crop must be a whole number >= 0; got 2.0"),
        ((1, 28, 28), 14, "model.crop=14 leaves no pixels of 1x28x28 inputs; it takes 0 to 13 pixels off each border"),
        ((3, 9, 5), 3, "model.crop=3 leaves no pixels of 3x9x5 inputs; it takes 0 to 2 pixels off each border"),
        ((4,), 1, "model.crop=1 leaves no pixels of 4 inputs; it takes 0 to 0 pixels off each border"),
    ],
)  # fmt: skip
def test_a_crop_that_leaves_nothing_is_refused(shape, crop: int, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        MLP(shape, [8], 2, crop=crop)
    assert str(error.value) == message
