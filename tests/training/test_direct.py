"""The training step with its backward pass written out agrees with autograd's: the loss,
the outputs and every parameter's gradient, in float32 and under bfloat16 autocast, with
and without label smoothing, crop, hidden layers and a log-softmax head; anything it does
not cover gets a reason and the autograd step."""

from __future__ import annotations

import copy

import pytest
import torch

from mlplab import Config
from mlplab.model.heads import loss_fn
from mlplab.training.direct import direct_step, not_covered
from mlplab.training.session import build_session, training_step

CPU = torch.device("cpu")


def _session(tiny, quick_config: Config, **overrides: object):
    config = quick_config.override(overrides)
    with torch.random.fork_rng():
        return build_session(config, tiny, CPU)


def _autograd(s, model, x, y):
    tc = s.config.train
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=tc.precision == "bf16"):
        out = model(x, prepared=s.aligns_once)
        loss = loss_fn(model.head, None, tc.label_smoothing)(out.float(), y)
    loss.backward()
    return loss, out


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"model.hidden": [24, 12]},
        {"model.hidden": []},
        {"train.label_smoothing": 0.1},
        {"model.crop": 2, "model.head": "log_softmax"},
        {"train.precision": "bf16"},
        {"train.precision": "bf16", "model.crop": 1, "train.label_smoothing": 0.1},
        {"model.deskew": True, "model.center": True, "model.crop": 1},
        {"model.deskew": True, "train.precision": "bf16"},
    ],
    ids=[
        "default",
        "two-hidden",
        "logistic",
        "smoothing",
        "crop-logsoftmax",
        "bf16",
        "bf16-all",
        "aligned-once",
        "aligned-once-bf16",
    ],
)
def test_the_written_out_step_matches_autograd(tiny, quick_config: Config, overrides) -> None:
    s = _session(tiny, quick_config, **overrides)
    assert not_covered(s) is None
    reference = copy.deepcopy(s.model)
    x, y = next(iter(s.batches(augmented=False)))
    seen: list[list[torch.Tensor]] = []
    step = direct_step(s, lambda: seen.append([p.grad.clone() for p in s.model.parameters()]))
    loss, out = step(x, y, len(y))
    expected_loss, expected_out = _autograd(s, reference, x, y)
    bf16 = s.config.train.precision == "bf16"
    tolerance = {"rtol": 2e-2, "atol": 2e-3} if bf16 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(loss, expected_loss, **tolerance)
    torch.testing.assert_close(out.float(), expected_out.float(), **tolerance)
    assert out.dtype == expected_out.dtype == torch.float32 or bf16
    (grads,) = seen  # update() ran once, with every gradient in place
    for (name, p), grad in zip(reference.named_parameters(), grads, strict=True):
        assert grad.dtype == torch.float32 and grad.shape == p.shape, name
        scale = p.grad.abs().max().item()  # bf16's rounding is relative to the largest
        torch.testing.assert_close(
            grad, p.grad, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(scale, 1), msg=name
        )


def test_the_step_is_the_one_training_takes_and_repeats_bit_for_bit(
    tiny, quick_config: Config
) -> None:
    from mlplab import train

    s = _session(tiny, quick_config)
    assert training_step(s).__qualname__ == "direct_step.<locals>.step"
    assert training_step(s, written_out=False).__qualname__ == "training_step.<locals>.step"
    config = quick_config.override({"train.epochs": 2})
    first, again = (train(config, dataset=tiny, progress=False) for _ in range(2))
    assert first.history == [
        {**h, "epoch_seconds": r["epoch_seconds"], "elapsed_seconds": r["elapsed_seconds"]}
        for h, r in zip(again.history, first.history, strict=True)
    ]
    assert first.history[-1]["val_accuracy"] > 0.8  # it learned (tiny data: ~0.9 in 2 epochs)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"model.activation": "tanh"}, "activation tanh"),
        ({"model.dropout": 0.2}, "dropout"),
        ({"model.deskew": True, "augment.shift": 1}, "alignment of augmented images"),
        ({"model.head": "softmax"}, "head softmax"),
        ({"train.l1": 1e-5}, "an L1 term"),
        ({"train.precision": "bf16", "model.head": "log_softmax"}, "the log-softmax head in bf16"),
    ],
)
def test_what_it_does_not_cover_takes_autograds_step(
    tiny, quick_config: Config, overrides, reason: str
) -> None:
    s = _session(tiny, quick_config, **overrides)
    assert not_covered(s) == reason
    assert direct_step(s, lambda: None) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.hidden[0].linear.requires_grad_(False), "frozen parameters"),
        (lambda m: m.register_forward_pre_hook(lambda _, args: args), "hooks on the model"),
        (lambda m: m.output.register_forward_hook(lambda *_: None), "hooks on the model"),
        (lambda m: m.output.weight.register_hook(lambda g: g), "hooks on the model"),
    ],
    ids=["frozen", "forward-pre-hook", "forward-hook", "tensor-hook"],
)
def test_a_model_changed_from_outside_takes_autograds_step(
    tiny, quick_config: Config, change, reason: str
) -> None:
    s = _session(tiny, quick_config)
    assert not_covered(s) is None
    change(s.model)
    assert not_covered(s) == reason
    assert direct_step(s, lambda: None) is None


def test_a_layer_frozen_by_an_epoch_hook_stays_as_it_was(tiny, quick_config: Config) -> None:
    """The step is made each epoch: freezing a layer after the first one keeps it fixed, as
    autograd's step does (it leaves the frozen weights without a gradient)."""
    from mlplab import train

    frozen: dict[str, torch.Tensor] = {}

    def freeze_after_the_first(epoch) -> bool:
        if epoch.record["epoch"] == 1:
            layer = epoch.model.hidden[0].linear
            layer.requires_grad_(False)
            frozen["weight"] = layer.weight.detach().clone()
        return False

    config = quick_config.override({"train.select": "last"})
    result = train(config, dataset=tiny, progress=False, on_epoch=freeze_after_the_first)
    torch.testing.assert_close(
        result.model.hidden[0].linear.weight, frozen["weight"], rtol=0, atol=0
    )
