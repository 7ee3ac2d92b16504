"""The models: a configurable MLP (hidden widths, activation, dropout, head, init).

``MLP(input_shape, hidden, classes)`` flattens its input (deskewed and centred first with
``deskew`` and ``center``, ``crop`` pixels off each border next, if asked), applies
``hidden`` blocks of Linear → activation → (Dropout), then one Linear to ``classes``
outputs and the head. With ``tta`` (test-time augmentation), a model in eval mode scores
each image and a few shifted, rotated or mirrored views of it, and averages the views'
class probabilities.
``hidden=[]`` is multinomial logistic regression. A model rebuilds from its
:meth:`MLP.spec` alone, which is what ``model.json`` in a run directory holds.

What the model does to the images' geometry (alignment, test-time views) lives in
:mod:`.views`; what each head's outputs mean (probabilities, losses) in :mod:`.heads`.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..config.rules import check_tta  # the one check of model.tta, the config's
from ..errors import ConfigError, did_you_mean
from ..files.limits import check_alloc, printable
from ..vocab import ACTIVATIONS, HEADS, INITS, TTA_VIEWS
from . import heads
from .views import align_ink, tta_views, view_count

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "INITS",
    "MLP",
    "TTA_VIEWS",
    "alignment",
    "check_align",
    "check_size",
    "check_spec",
    "check_tta",
    "excerpt",
    "input_features",
    "model_summary",
    "parameter_count",
    "state_shapes",
]

# The model builds from the names of mlplab.vocab (tests/test_vocab.py pins these keys to them).
_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}
# torch.nn.init.calculate_gain names; GELU is close enough to ReLU for init purposes
_GAIN_NAME = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "relu"}
# Each hidden layer is a few Python modules: a spec asking for millions of thin layers would
# take minutes and gigabytes to build while its parameters look small. No MLP needs more.
MAX_HIDDEN_LAYERS = 1000
PARAMETER_BYTES = 4  # float32
_SPEC_KEYS = (
    "kind",
    "input_shape",
    "hidden",
    "classes",
    "activation",
    "dropout",
    "head",
    "init",
    "crop",
    "deskew",
    "center",
    "tta",
)


def parameter_count(features: int, hidden: Sequence[int], outputs: int) -> int:
    """Weights and biases of an MLP from ``features`` inputs through ``hidden`` to ``outputs``
    (exact: Python integers, whatever the sizes)."""
    widths = [features, *hidden, outputs]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def state_shapes(features: int, hidden: Sequence[int], outputs: int) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the tensors in such an MLP's ``state_dict``, without making
    it: what a weights file must hold, checked before anything is built."""
    widths = [features, *hidden]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        shapes[f"hidden.{i}.linear.weight"] = (fan_out, fan_in)
        shapes[f"hidden.{i}.linear.bias"] = (fan_out,)
    shapes["output.weight"] = (outputs, widths[-1])
    shapes["output.bias"] = (outputs,)
    return shapes


def check_size(
    features: int,
    hidden: Sequence[int],
    outputs: int,
    *,
    what: str = "an MLP",
    error: type[Exception] = ConfigError,
) -> int:
    """The parameter count of such an MLP, or ``error`` when its float32 weights alone would
    exceed the memory mlplab lets one allocation take (:func:`mlplab.files.limits.check_alloc`):
    checked before any tensor is made, so a huge spec is one line, not a MemoryError."""
    parameters = parameter_count(features, hidden, outputs)
    widths = _widths_text([features, *hidden, outputs])
    check_alloc(
        PARAMETER_BYTES * parameters,
        f"{what} (widths {widths}: {parameters:,} parameters)",
        error=error,
    )
    return parameters


def check_spec(spec: Any) -> int:
    """A model description (``model.json``'s ``model``, :meth:`MLP.spec`) checked for its
    keys, types and ranges before anything is built; returns its parameter count.

    Everything ``model.json`` may hold comes from whoever wrote the run directory: each
    value must be what :class:`MLP` takes (whole numbers are ints, not bools or floats), or
    a ConfigError names the key, the value and what is allowed. Sizes are not checked
    against memory here (a listing may show a model too big for this machine): see
    :func:`check_size`.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"model must be a JSON object describing an MLP; got {excerpt(spec)}")
    _check_spec_keys(spec)
    _check_spec_sizes(spec)
    _check_spec_options(spec)
    # the checks that depend on the image's size (their messages show only numbers)
    shape, tta = spec["input_shape"], spec.get("tta", [])
    features = input_features(shape, spec.get("crop", 0))
    check_align(shape, spec.get("deskew", False), spec.get("center", False))
    check_tta(shape, tta)
    return parameter_count(features, spec["hidden"], spec["classes"])


def _check_spec_keys(spec: dict[str, Any]) -> None:
    """Only known keys, the required ones present, and ``kind`` is ``mlp``."""
    unknown = [str(k) for k in spec if k not in _SPEC_KEYS]
    if unknown:
        raise ConfigError(
            f"model has an unknown key '{excerpt(unknown[0], quote=False)}'"
            f"{did_you_mean(unknown[0], _SPEC_KEYS)}; the keys are {', '.join(_SPEC_KEYS)}"
        )
    for key in ("kind", "input_shape", "hidden", "classes"):
        if key not in spec:
            raise ConfigError(f"model.{key} is missing")
    if spec["kind"] != "mlp":
        raise ConfigError(f"model.kind must be 'mlp'; got {excerpt(spec['kind'])}")


def _check_spec_sizes(spec: dict[str, Any]) -> None:
    """``input_shape``, ``hidden`` and ``classes`` are whole numbers in range."""
    shape = spec["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(_whole(v, 1) for v in shape)):
        raise ConfigError(
            f"model.input_shape must be 3 whole numbers >= 1 (channels, height, width); got {excerpt(shape)}"
        )
    hidden = spec["hidden"]
    if not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS:
        raise ConfigError(
            f"model.hidden must be a list of at most {MAX_HIDDEN_LAYERS:,} layer widths; got {excerpt(hidden)}"
        )
    for i, width in enumerate(hidden):
        if not _whole(width, 1):
            raise ConfigError(
                f"model.hidden[{i}] must be a whole number >= 1; got {excerpt(width)}"
            )
    if not _whole(spec["classes"], 1):
        raise ConfigError(
            f"model.classes must be a whole number >= 1 (the outputs); got {excerpt(spec['classes'])}"
        )


def _check_spec_options(spec: dict[str, Any]) -> None:
    """The optional keys: names from their lists, dropout in [0, 1), crop, deskew, center and
    tta of the right types (absent from model.json files older than they are)."""
    for key, allowed in (("activation", ACTIVATIONS), ("head", HEADS), ("init", INITS)):
        if key in spec and (not isinstance(spec[key], str) or spec[key] not in allowed):
            raise ConfigError(
                f"model.{key} must be one of {', '.join(allowed)}; got {excerpt(spec[key])}"
            )
    dropout = spec.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(
            f"model.dropout must be a number from 0 to below 1; got {excerpt(dropout)}"
        )
    if not _whole(spec.get("crop", 0), 0):
        raise ConfigError(f"model.crop must be a whole number >= 0; got {excerpt(spec['crop'])}")
    for key in ("deskew", "center"):
        if not isinstance(spec.get(key, False), bool):
            raise ConfigError(f"model.{key} must be true or false; got {excerpt(spec[key])}")
    tta = spec.get("tta", [])
    if not isinstance(tta, list) or not all(isinstance(v, str) and v in TTA_VIEWS for v in tta):
        raise ConfigError(
            f"model.tta must be a list of view names ({', '.join(TTA_VIEWS)}); got {excerpt(tta)}"
        )


def _whole(value: Any, low: int) -> bool:
    """``value`` is a whole number (an int or anything with ``__index__``, not a bool) >= low."""
    if isinstance(value, bool):
        return False
    try:
        return operator.index(value) >= low
    except TypeError:
        return False


def excerpt(value: Any, quote: bool = True, limit: int = 60) -> str:
    """A value read from a file, as a one-line message shows it: its repr (``str`` without
    ``quote``), cut short (a hostile file's value may be megabytes long) and with control
    characters escaped."""
    text = repr(value) if quote else str(value)
    return printable(text if len(text) <= limit else text[: limit - 3] + "...")


def _widths_text(widths: Sequence[int]) -> str:
    """``64-16-10``; a long list shortened to its ends."""
    shown = [str(w) for w in widths]
    return "-".join(shown if len(shown) <= 8 else [*shown[:4], "...", *shown[-3:]])


def input_features(input_shape: Sequence[int], crop: int = 0) -> int:
    """How many values the first layer sees: the input's, less ``crop`` pixels off each
    border of a (C, H, W) image; a ConfigError when that leaves none."""
    shape = [int(s) for s in input_shape]
    if type(crop) is not int or crop < 0:
        raise ConfigError(f"model.crop must be a whole number >= 0; got {crop!r}")
    if crop == 0:
        return math.prod(shape)
    height, width = shape[-2:] if len(shape) == 3 else (1, 1)  # only images have borders
    if crop > (min(height, width) - 1) // 2:
        raise ConfigError(
            f"model.crop={crop} leaves no pixels of {'x'.join(map(str, shape))} inputs; it "
            f"takes 0 to {(min(height, width) - 1) // 2} pixels off each border"
        )
    return shape[0] * (height - 2 * crop) * (width - 2 * crop)


def check_align(input_shape: Sequence[int], deskew: bool, center: bool) -> None:
    """``model.deskew`` and ``model.center`` are bools that fit the inputs (images of 2x2
    pixels or more), or a ConfigError."""
    for key, value in (("deskew", deskew), ("center", center)):
        if not isinstance(value, bool):
            raise ConfigError(f"model.{key} must be true or false; got {value!r}")
    shape = [int(s) for s in input_shape]
    if (deskew or center) and (len(shape) != 3 or min(shape[1:]) < 2):
        key = "deskew" if deskew else "center"
        raise ConfigError(
            f"model.{key} needs images of at least 2x2 pixels; the inputs are {'x'.join(map(str, shape))}"
        )


def alignment(deskew: bool, center: bool, tta: Sequence[str] = ()) -> list[str]:
    """The names of what a model does to its input, in order, for listings: the alignments,
    then the test-time views (``tta shift+rotate``)."""
    steps = [name for name, on in (("deskew", deskew), ("center", center)) if on]
    return steps + ([f"tta {'+'.join(tta)}"] if tta else [])


class MLP(nn.Module):
    """A multilayer perceptron for images (or any fixed-shape input)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden: Sequence[int] = (250, 100),
        classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        head: str = "logits",
        init: str = "default",
        crop: int = 0,
        deskew: bool = False,
        center: bool = False,
        tta: Sequence[str] = (),
    ) -> None:
        super().__init__()
        for key, value, allowed in (
            ("activation", activation, ACTIVATIONS),
            ("head", head, HEADS),
            ("init", init, INITS),
        ):
            if value not in allowed:
                raise ConfigError(
                    f"MLP {key} must be one of {', '.join(allowed)}; got '{value}'{did_you_mean(value, allowed)}"
                )
        hidden = list(hidden)  # a generator is read once
        if not _whole(classes, 1) or not all(_whole(w, 1) for w in hidden) or not 0 <= dropout < 1:
            raise ConfigError(
                f"MLP needs classes >= 1, hidden widths >= 1 (whole numbers) and 0 <= dropout < 1; got {excerpt(classes)}, {excerpt(hidden)}, {dropout}"
            )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_features = input_features(self.input_shape, crop)
        check_size(self.input_features, hidden, classes)  # before a tensor is made
        self.crop = crop  # a whole number: input_features checked it
        check_align(self.input_shape, deskew, center)
        self.deskew, self.center = deskew, center
        self.tta = tta if isinstance(tta, str) else tuple(tta)  # a generator is read once
        check_tta(self.input_shape, self.tta)
        self.hidden_sizes = [int(w) for w in hidden]
        self.classes = int(classes)
        self.activation, self.dropout, self.head, self.init = activation, float(dropout), head, init

        widths = [self.input_features, *self.hidden_sizes]
        blocks = []
        for fan_in, fan_out in itertools.pairwise(widths):
            parts: OrderedDict[str, nn.Module] = OrderedDict(
                linear=nn.Linear(fan_in, fan_out), act=_ACTIVATIONS[activation]()
            )
            if dropout > 0:
                parts["dropout"] = nn.Dropout(dropout)
            blocks.append(nn.Sequential(parts))
        self.hidden = nn.Sequential(*blocks)
        self.output = nn.Linear(widths[-1], self.classes)
        self._initialize()

    def _initialize(self) -> None:
        if (
            self.init == "default"
        ):  # PyTorch's own (Kaiming-uniform with a=sqrt(5)), as the tutorials
            return
        gain_name = _GAIN_NAME[self.activation]
        layers = [block.linear for block in self.hidden] + [self.output]
        for i, layer in enumerate(layers):
            nonlinearity = gain_name if i < len(layers) - 1 else "linear"
            if self.init == "kaiming":
                nn.init.kaiming_normal_(
                    layer.weight,
                    nonlinearity=nonlinearity if nonlinearity in ("relu", "linear") else "linear",
                )
            elif self.init == "xavier":
                nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(nonlinearity))
            else:
                nn.init.orthogonal_(layer.weight, gain=nn.init.calculate_gain(nonlinearity))
            nn.init.zeros_(layer.bias)

    def forward(
        self, x: torch.Tensor, return_hidden: bool = False, *, prepared: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Outputs of the head; with ``return_hidden`` also the last hidden layer's activations.

        In eval mode with ``tta``, the outputs are those of the views' mean class
        probabilities (its log for the logits and log_softmax heads: a softmax of it gives
        that mean back) and the hidden activations those of the images themselves.
        ``prepared``: ``x`` is :meth:`prepare`'s output already (training aligns and crops
        the images it never augments once, not every epoch); not with test-time views.
        """
        n = x.shape[0]
        views = bool(self.tta) and not self.training
        if views:  # the views are of the aligned image, cropped after
            if prepared:
                raise ValueError("prepared inputs have no test-time views: pass the images")
            x = self.cropped(tta_views(self.align(x), self.tta))
        elif not prepared:
            x = self.prepare(x)
        h = self.hidden(x.flatten(1))
        z = self.output(h)
        if views:  # log of the mean probability, without underflow: logsumexp - log(count)
            count = view_count(self.tta)
            log_p = heads.log_probabilities("logits", z.float()).unflatten(0, (count, n))
            h, z = h[:n], torch.logsumexp(log_p, 0) - math.log(count)
            z = heads.from_log_probabilities(self.head, z)
        else:
            z = heads.from_logits(self.head, z)
        return (z, h) if return_hidden else z

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """What the first layer sees of ``x`` (normalized ``(N, C, H, W)`` images), before it
        is flattened: aligned (``deskew``, ``center``) and cropped (``crop``), the alignment
        made for the kept pixels only (without alignment: the crop's view)."""
        return align_ink(x, upright=self.deskew, center=self.center, crop=self.crop)

    def align(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (normalized ``(N, C, H, W)`` images) deskewed and/or centred as the model
        does it before its layers (``deskew``, ``center``); ``x`` itself where it does not."""
        return align_ink(x, upright=self.deskew, center=self.center)

    def cropped(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (``(..., H, W)``) less ``crop`` pixels off each border: a view, what the
        first layer sees (flattened)."""
        if not self.crop:
            return x
        c = self.crop
        return x[..., c : x.shape[-2] - c, c : x.shape[-1] - c]

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this architecture (saved as model.json)."""
        return {
            "kind": "mlp",
            "input_shape": list(self.input_shape),
            "hidden": list(self.hidden_sizes),
            "classes": self.classes,
            "activation": self.activation,
            "dropout": self.dropout,
            "head": self.head,
            "init": self.init,
            "crop": self.crop,
            "deskew": self.deskew,
            "center": self.center,
            "tta": list(self.tta),
        }

    @classmethod
    def from_config(cls, model: ModelConfig, input_shape: Sequence[int], outputs: int) -> MLP:
        """The network a config's ``model`` section describes, for inputs of ``input_shape``."""
        return cls(
            input_shape,
            model.hidden,
            outputs,
            model.activation,
            model.dropout,
            model.head,
            model.init,
            model.crop,
            model.deskew,
            model.center,
            model.tta,
        )

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> MLP:
        args = {k: v for k, v in spec.items() if k != "kind"}
        return cls(**args)

    @property
    def widths(self) -> list[int]:
        """The layers' widths, input (as the first layer sees it) to output."""
        return [self.input_features, *self.hidden_sizes, self.classes]

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        sizes = "-".join(map(str, self.widths))
        steps = [
            *alignment(self.deskew, self.center, self.tta),
            *([f"crop={self.crop}"] if self.crop else []),
        ]
        before = "".join(f", {step}" for step in steps)
        return f"{sizes}{before}, {self.activation}, dropout={self.dropout:g}, head={self.head}, parameters={self.num_parameters:,}"


def model_summary(model: MLP) -> str:
    """A table of layers, output shapes and parameter counts, with the total."""
    crop = [f"crop {model.crop}"] if model.crop else []
    entry = ", ".join([*alignment(model.deskew, model.center, model.tta), *crop, "flatten"])
    rows = [("input", entry, f"({model.input_features},)", 0)]
    for i, block in enumerate(model.hidden):
        for name, layer in block.named_children():
            width = block.linear.out_features
            rows.append(
                (
                    f"hidden.{i}.{name}",
                    _layer_name(layer),
                    f"({width},)",
                    sum(p.numel() for p in layer.parameters()),
                )
            )
    rows.append(
        (
            "output",
            _layer_name(model.output),
            f"({model.classes},)",
            sum(p.numel() for p in model.output.parameters()),
        )
    )
    if model.head != "logits":
        rows.append(("head", model.head, f"({model.classes},)", 0))
    lines = [f"{'layer':<18} {'type':<26} {'output':<10} {'params':>10}"]
    lines += [f"{a:<18} {b:<26} {c:<10} {d:>10,}" for a, b, c, d in rows]
    lines.append(f"{'total':<18} {'':<26} {'':<10} {model.num_parameters:>10,}")
    return "\n".join(lines)


def _layer_name(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear({layer.in_features}, {layer.out_features})"
    if isinstance(layer, nn.Dropout):
        return f"Dropout({layer.p:g})"
    return type(layer).__name__
