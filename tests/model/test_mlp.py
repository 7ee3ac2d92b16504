"""The MLP: shapes, parameter counts, heads, inits, rebuild from spec, plain-torch reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from mlplab import MLP, model_summary
from mlplab.errors import ConfigError
from mlplab.model.heads import expected_initial_loss, loss_fn
from mlplab.model.mlp import TTA_ROTATION, align_ink, tta_views


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


def _align_reference(image: np.ndarray, upright: bool, center: bool) -> np.ndarray:
    """Deskewing and centring in float64 with SciPy: second moments of the ink (the image
    less its darkest pixel), then an affine read (bilinear; past the edges, the darkest
    pixel's value, interpolated towards as grid_sample's zero padding is): output (r, c)
    reads row r' = r (+ cy - ch when centring), column c' (+ cx - cw) + shear * (r' - cy)."""
    ink = image - image.min()
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    shear = (ink * (rows - cy) * (cols - cx)).sum() / (ink * (rows - cy) ** 2).sum()
    shear = shear if upright else 0.0
    ch, cw = (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    dy, dx = (cy - ch, cx - cw) if center else (0.0, 0.0)
    matrix = np.array([[1.0, 0.0], [shear, 1.0]])
    offset = np.array([dy, dx + shear * (dy - cy)])
    return ndimage.affine_transform(
        image, matrix, offset=offset, order=1, mode="grid-constant", cval=image.min()
    )


ALIGNMENTS = [(True, False), (True, True), (False, True)]  # (upright, center)


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_align_ink_matches_scipys_affine_read(upright: bool, center: bool) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(6, 1, 20, 16)
    for i in range(6):  # slanted strokes of different slopes and places
        slope, x0, y0 = (i - 2.5) * 0.3, 5 + i, 3 + (i % 3)
        for y in range(y0, y0 + 12):
            images[i, 0, y, int(x0 + slope * (y - y0)) % 16] = 200.0
    images += torch.rand(images.shape, generator=g) * 30  # a noisy background
    got = align_ink(images * 0.02 - 0.4, upright=upright, center=center)  # any affine scale
    for i in range(6):
        want = _align_reference(images[i, 0].double().numpy(), upright, center) * 0.02 - 0.4
        torch.testing.assert_close(got[i, 0].double(), torch.from_numpy(want), atol=2e-4, rtol=0)


def _moments(ink: torch.Tensor) -> tuple[float, float, float]:
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    ink = ink.double()
    mass = ink.sum()
    cy, cx = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    covariance = (ink * (rows - cy) * (cols - cx)).sum() / mass
    variance = (ink * (rows - cy) ** 2).sum() / mass
    return float(cy), float(cx), float(covariance / variance)


@pytest.mark.parametrize("center", [False, True])
def test_deskewing_stands_a_slanted_bar_upright(center: bool) -> None:
    bar = torch.zeros(1, 1, 28, 28)
    for y in range(4, 24):
        bar[0, 0, y, 4 + y // 2] = 1.0  # leans right: two rows down, one column right
    cy, cx, slant = _moments(bar[0, 0])
    assert abs(slant - 0.5) < 0.05
    out = align_ink(bar, center=center)[0, 0]
    new_cy, new_cx, new_slant = _moments(out)
    assert abs(new_slant) < 0.01  # upright now
    want = (13.5, 13.5) if center else (cy, cx)  # centred, or left where it was
    assert abs(new_cy - want[0]) < 0.05 and abs(new_cx - want[1]) < 0.05
    assert abs(out.sum() - bar.sum()) < 0.5  # no ink lost to the border


def test_centring_undoes_a_shift_and_deskewing_alone_keeps_it() -> None:
    digit = torch.zeros(2, 1, 28, 28)
    digit[0, 0, 6:20, 10:13] = 1.0
    digit[0, 0, 6:9, 10:18] = 0.7
    digit[1, 0] = torch.roll(digit[0, 0], shifts=(3, -4), dims=(0, 1))  # stays inside
    for upright in (False, True):
        out = align_ink(digit, upright=upright, center=True)
        torch.testing.assert_close(out[1], out[0], atol=1e-5, rtol=0)
    out = align_ink(digit)
    torch.testing.assert_close(
        out[1], torch.roll(out[0], shifts=(3, -4), dims=(1, 2)), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_align_ink_leaves_blank_images_alone_and_ignores_autocast(
    upright: bool, center: bool
) -> None:
    flat = torch.full((2, 3, 5, 7), -0.42)
    assert torch.equal(align_ink(flat, upright=upright, center=center), flat)
    cancelling = torch.rand(1, 1, 6, 8).repeat(1, 2, 1, 1) * torch.tensor([1.0, -1.0]).view(
        1, 2, 1, 1
    )
    kept = align_ink(cancelling, upright=upright, center=center)  # no ink summed over channels
    torch.testing.assert_close(kept, cancelling, atol=1e-5, rtol=0)
    x = torch.rand(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = align_ink(x, upright=upright, center=center)
    assert in_bf16.dtype == torch.float32
    assert torch.equal(in_bf16, align_ink(x, upright=upright, center=center))


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


@pytest.mark.parametrize("upright, center", ALIGNMENTS)
def test_ink_at_the_border_is_not_smeared_into_the_image(upright: bool, center: bool) -> None:
    corner = torch.zeros(1, 1, 28, 28)
    corner[0, 0, 27, 27] = 1.0  # one pixel of ink in the corner
    seven = torch.zeros(1, 1, 28, 28)
    seven[0, 0, 4, 0:12] = 1.0  # a top bar that touches the left border
    for y in range(5, 24):
        seven[0, 0, y, 11 - (y - 5) // 3] = 1.0
    for image in (corner, seven):
        out = align_ink(image - 0.3, upright=upright, center=center) + 0.3  # background -0.3
        assert out.min() > -1e-5
        assert out.sum() <= image.sum() + 1e-3  # ink may leave the frame; none is made
    moved = align_ink(corner, upright=upright, center=center)
    if center:  # brought in whole, to the centre
        assert abs(moved.sum() - 1) < 1e-4 and moved[0, 0, 13:15, 13:15].sum() > 0.99


# ----- test-time views (model.tta) ---------------------------------------------------------
def _turn_reference(image: np.ndarray, degrees: float) -> np.ndarray:
    """A turn about the image's centre with SciPy, bilinear, background past the edges:
    output (r, c) reads (r', c') = centre + R (r - r0, c - c0) in pixels (non-square too)."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    centre = np.array([(image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2])
    matrix = np.array([[cos, sin], [-sin, cos]])
    return ndimage.affine_transform(image, matrix, offset=centre - matrix @ centre, order=1,
                                    mode="grid-constant", cval=image.min())  # fmt: skip


def _shift_reference(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.full_like(image, image.min())
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_tta_views_match_numpy_shifts_scipys_turns_and_a_mirror() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 20, 16, generator=g) * 2 - 0.5  # any scale; darkest -0.5 or so
    images[:, :, 5:15, 6:9] += 3.0  # a bright stroke
    views = tta_views(images, ["flip", "shift", "rotate"])
    assert views.shape == (3 * 8, 1, 20, 16)  # the images, 1 mirror, 4 shifts, 2 turns
    blocks = views.unflatten(0, (8, 3))
    for i in range(3):
        image = images[i, 0].double().numpy()
        want = [image, image[:, ::-1]]
        want += [_shift_reference(image, dy, dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        want += [_turn_reference(image, a) for a in (TTA_ROTATION, -TTA_ROTATION)]
        for k, expected in enumerate(want):
            torch.testing.assert_close(blocks[k, i, 0].double(), torch.from_numpy(expected.copy()),
                                       atol=1e-5, rtol=0)  # fmt: skip


def test_tta_views_fill_each_channel_with_its_own_background() -> None:
    gray = torch.rand(2, 1, 9, 7)
    color = torch.cat([gray, gray + 5.0], 1)  # normalization moved the channels apart
    views = tta_views(color, ["shift", "rotate"])
    torch.testing.assert_close(views[:, 1], views[:, 0] + 5.0)


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
    want = {"logits": plain(x), "log_softmax": plain(x).log_softmax(1),
            "softmax": plain(x).softmax(1)}[head]  # fmt: skip
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
    [((1, 8, 8), [16], 10, {}), ((3, 9, 8), [12, 7], 4, {"crop": 2, "dropout": 0.5}),
     ((1, 8, 8), [], 3, {"head": "log_softmax"}), ((5, 1, 1), [4, 4, 4], 1, {})],
)  # fmt: skip
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
