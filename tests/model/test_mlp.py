"""The MLP: shapes, parameter counts, heads, inits, rebuild from spec, plain-torch reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mlplab import MLP, model_summary
from mlplab.errors import ConfigError
from mlplab.model.views import align_ink, tta_views


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


# a table of cases and their exact messages, one per row (fmt: skip below)
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


def test_prepared_inputs_are_the_aligned_kept_pixels_and_skip_the_models_own() -> None:
    torch.manual_seed(0)
    model = MLP((1, 12, 10), [8], 3, crop=2, deskew=True, center=True)
    x = torch.randn(5, 1, 12, 10)
    prepared = model.prepare(x)  # aligned for the kept pixels only: the full read, cropped
    torch.testing.assert_close(prepared, model.cropped(model.align(x)), rtol=0, atol=1e-6)
    assert prepared.shape == (5, 1, 8, 6)
    torch.testing.assert_close(model(prepared, prepared=True), model(x))
    model.tta = ("shift",)
    model.eval()  # the views are of the whole aligned image: prepared inputs have none
    with pytest.raises(ValueError, match="prepared inputs have no test-time views"):
        model(prepared, prepared=True)


def test_a_deskewing_model_is_the_same_network_on_the_aligned_image() -> None:
    torch.manual_seed(0)
    model = MLP((1, 12, 10), [8], 3, crop=1, deskew=True, center=True)
    plain = MLP((1, 12, 10), [8], 3, crop=1)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(5, 1, 12, 10)
    torch.testing.assert_close(model(x), plain(align_ink(x, center=True)))
    only = MLP((1, 12, 10), [8], 3, deskew=True)
    assert MLP.from_spec(model.spec()).center is True and MLP.from_spec(only.spec()).center is False
    old = {k: v for k, v in plain.spec().items() if k not in ("deskew", "center")}
    assert not MLP.from_spec(old).deskew and not MLP.from_spec(old).center  # older model.json
    assert model_summary(model).splitlines()[1].split()[:6] == [
        "input",
        "deskew,",
        "center,",
        "crop",
        "1,",
        "flatten",
    ]
    assert "80-8-3, deskew, center, crop=1, relu" in repr(model)


# a table of cases and their exact messages, one per row (fmt: skip below)
@pytest.mark.parametrize(
    "shape, deskew_, center, message",
    [
        ((5, 1, 1), True, False, "model.deskew needs images of at least 2x2 pixels; the inputs are 5x1x1"),
        ((4,), False, True, "model.center needs images of at least 2x2 pixels; the inputs are 4"),
        ((1, 8, 8), "yes", False, "model.deskew must be true or false; got 'yes'"),
        ((1, 8, 8), False, 1, "model.center must be true or false; got 1"),
    ],
)  # fmt: skip
def test_deskew_and_center_need_images(shape, deskew_, center, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        MLP(shape, [8], 2, deskew=deskew_, center=center)
    assert str(error.value) == message


# ----- test-time views (model.tta) ---------------------------------------------------------
@pytest.mark.parametrize("head", ["logits", "log_softmax", "softmax"])
def test_a_tta_model_averages_its_views_probabilities_in_eval_mode_only(head: str) -> None:
    torch.manual_seed(0)
    model = MLP((1, 12, 10), [8], 3, head=head, crop=1, tta=["shift", "rotate"])
    plain = MLP((1, 12, 10), [8], 3, crop=1)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(5, 1, 12, 10)
    mean = torch.softmax(plain(tta_views(x, ["shift", "rotate"])), 1).unflatten(0, (7, 5)).mean(0)
    model.eval()
    out, hidden = model(x, return_hidden=True)
    torch.testing.assert_close(out, mean if head == "softmax" else mean.log())
    torch.testing.assert_close(hidden, plain(x, return_hidden=True)[1])  # the images' own
    model.train()  # training sees the images alone, through the head
    want = {
        "logits": plain(x),
        "log_softmax": plain(x).log_softmax(1),
        "softmax": plain(x).softmax(1),
    }[head]
    torch.testing.assert_close(model(x), want)


def test_tta_keeps_confident_log_probabilities_finite_and_is_in_the_spec() -> None:
    model = MLP((1, 6, 6), [], 2, tta=["flip"]).eval()
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.copy_(torch.tensor([0.0, 500.0]))  # softmax underflows to 0 for class 0
    out = model(torch.rand(2, 1, 6, 6))
    torch.testing.assert_close(out[:, 0], torch.full((2,), -500.0))
    assert MLP.from_spec(model.spec()).tta == ("flip",)
    assert MLP((1, 6, 6), [], 2, tta=(v for v in ["flip"])).tta == ("flip",)  # read once
    old = {k: v for k, v in model.spec().items() if k != "tta"}
    assert MLP.from_spec(old).tta == ()  # an older model.json
    assert "36-2, tta flip, relu" in repr(model)
    assert model_summary(model).splitlines()[1].split()[:4] == ["input", "tta", "flip,", "flatten"]


# a table of cases and their exact messages, one per row (fmt: skip below)
@pytest.mark.parametrize(
    "shape, views, message",
    [
        ((1, 8, 8), ["shfit"], "model.tta views must be among shift, rotate, flip; got 'shfit' (did you mean 'shift'?)"),
        ((1, 8, 8), ["flip", "flip"], "model.tta names 'flip' twice; name each view once"),
        ((1, 8, 8), "shift", "model.tta must be a list of view names (shift, rotate, flip); got 'shift'"),
        ((5, 1, 1), ["shift"], "model.tta needs images of at least 2x2 pixels; the inputs are 5x1x1"),
        ((4,), ["rotate"], "model.tta needs images of at least 2x2 pixels; the inputs are 4"),
    ],
)  # fmt: skip
def test_tta_views_are_checked(shape, views, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        MLP(shape, [8], 2, tta=views)
    assert str(error.value) == message


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")  # deprecated upstream, still exported
def test_a_traced_model_does_not_pin_the_device_it_was_traced_on() -> None:
    """Coordinates are made from the input (new_ones), so the exported TorchScript runs on
    whatever device it is loaded to: no device constant in the trace."""
    model = MLP((1, 10, 8), [6], 3, deskew=True, center=True, tta=["shift", "rotate", "flip"])
    traced = torch.jit.trace(model.eval(), torch.rand(2, 1, 10, 8), check_trace=False)
    graph = str(traced.inlined_graph)
    assert "Device = prim::Constant" not in graph
    # a traced repeat_interleave keeps a CPU index tensor: the export failed on CUDA (H200)
    assert "repeat_interleave" not in graph
    x = torch.rand(3, 1, 10, 8)
    torch.testing.assert_close(traced(x), model(x))
    double = MLP((1, 10, 8), [6], 3, tta=["rotate"]).double().eval()
    assert double(x.double()).shape == (3, 3)  # the turn's grid follows the input's dtype


@pytest.mark.parametrize(
    "shape, hidden, classes, kwargs",
    [
        ((1, 8, 8), [16], 10, {}),
        ((3, 9, 8), [12, 7], 4, {"crop": 2, "dropout": 0.5}),
        ((1, 8, 8), [], 3, {"head": "log_softmax"}),
        ((5, 1, 1), [4, 4, 4], 1, {}),
    ],
)
def test_state_shapes_and_parameter_count_are_the_models_own(
    shape, hidden, classes, kwargs
) -> None:
    """What a weights file is checked against before anything is built is what MLP makes."""
    from mlplab.model.mlp import check_spec, parameter_count, state_shapes

    model = MLP(shape, hidden, classes, **kwargs)
    assert state_shapes(model.input_features, hidden, classes) == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }
    assert parameter_count(model.input_features, hidden, classes) == model.num_parameters
    assert check_spec(model.spec()) == model.num_parameters
