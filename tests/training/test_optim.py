"""Optimizers and schedules: the registries, and each schedule against torch's own."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from mlplab import Config
from mlplab.training.optim import (
    OPTIMIZERS,
    SCHEDULES,
    Plan,
    WeightAverage,
    lr_at,
    make_optimizer,
    momentum_at,
    set_step,
    stepper,
)


def torch_lrs(make, steps: int, per_epoch: int | None = None) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    scheduler = make(optimizer)
    lrs = []
    for step in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if per_epoch is None or (step + 1) % per_epoch == 0:
            scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "name, make, per_epoch",
    [
        ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5 * 7), None),
        (
            "onecycle",
            lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=5 * 7),
            None,
        ),
        ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.3), 7),
        ("none", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda _: 1.0), None),
    ],
)
def test_schedules_match_torch(name: str, make, per_epoch: int | None) -> None:
    settings = {"train.lr": 0.1, "train.scheduler": name, "train.step_size": 2, "train.gamma": 0.3}
    tc = Config().override(settings).train
    plan = Plan(epochs=5, steps_per_epoch=7)
    ours = [lr_at(tc, step, plan) for step in range(plan.total_steps)]
    assert ours == pytest.approx(torch_lrs(make, plan.total_steps, per_epoch), rel=1e-9, abs=1e-12)


def test_onecycle_leaves_momentum_alone_unless_asked() -> None:
    """torch's OneCycleLR cycles momentum by default: an SGD run with momentum 0 would
    silently run with 0.85-0.95. Here the config says what runs."""
    tc = Config().override({"train.optimizer": "sgd", "train.scheduler": "onecycle"}).train
    plan = Plan(3, 10)
    optimizer = make_optimizer([torch.zeros(1, requires_grad=True)], tc)
    for step in range(plan.total_steps):
        set_step(optimizer, lr_at(tc, step, plan), momentum_at(tc, step, plan))
        assert optimizer.param_groups[0]["momentum"] == 0.0
    cycled = Config().override({"train.scheduler": "onecycle", "train.cycle_momentum": True}).train
    reference = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.Adam([torch.zeros(1, requires_grad=True)]), max_lr=1e-3, total_steps=30
    )
    betas = []
    for _ in range(30):
        betas.append(reference.optimizer.param_groups[0]["betas"][0])
        reference.optimizer.step()
        reference.step()
    assert [momentum_at(cycled, s, plan) for s in range(30)] == pytest.approx(betas)


def test_registries_are_the_config_vocabulary() -> None:
    from mlplab.config import OPTIMIZERS as config_optimizers
    from mlplab.config import SCHEDULERS

    assert config_optimizers == tuple(OPTIMIZERS) and tuple(SCHEDULES) == SCHEDULERS
    for name in OPTIMIZERS:
        tc = Config().override({"train.optimizer": name}).train
        optimizer = make_optimizer([torch.zeros(2, requires_grad=True)], tc)
        assert type(optimizer).__name__.lower() == name


def test_cycle_momentum_needs_onecycle() -> None:
    from mlplab import ConfigError

    with pytest.raises(
        ConfigError, match="train.cycle_momentum=true needs train.scheduler=onecycle"
    ):
        Config().override({"train.cycle_momentum": True})


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 9), torch.nn.ReLU(), torch.nn.Linear(9, 4))


def _train(net: torch.nn.Module, optimizer: torch.optim.Optimizer, step, steps: int = 12) -> None:
    data = torch.Generator().manual_seed(1)
    for i in range(steps):
        x, y = torch.randn(16, 12, generator=data), torch.randint(0, 4, (16,), generator=data)
        set_step(optimizer, 1e-2 * (1 + i % 3), 0.85 + 0.01 * i)  # a one-cycle-like walk
        for p in net.parameters():
            p.grad = None
        torch.nn.functional.cross_entropy(net(x), y).backward()
        step()


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_the_direct_fused_adam_step_is_adams_step_bit_for_bit(
    name: str, weight_decay: float
) -> None:
    tc = (
        Config()
        .with_overrides([f"train.optimizer={name}", f"train.weight_decay={weight_decay}"])
        .train
    )
    nets = [_net(), _net()]
    optimizers = [make_optimizer(net.parameters(), tc) for net in nets]
    for optimizer in optimizers:  # none of the defaults: each must reach the kernel
        optimizer.param_groups[0].update(eps=1e-3, betas=(0.9, 0.95))
    direct = stepper(optimizers[1])
    assert direct != optimizers[1].step  # the shortcut is taken
    _train(nets[0], optimizers[0], optimizers[0].step)
    _train(nets[1], optimizers[1], direct)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)
    states = [opt.state_dict()["state"] for opt in optimizers]
    for key, state in states[0].items():
        for field, value in state.items():
            assert torch.equal(value, states[1][key][field]), (key, field)
    # after load_state_dict a new stepper continues on the loaded tensors, still in step
    twin = _net(seed=5)
    twin.load_state_dict(nets[0].state_dict())
    loaded = make_optimizer(twin.parameters(), tc)
    loaded.load_state_dict(copy.deepcopy(optimizers[0].state_dict()))  # torch shares tensors
    _train(nets[0], optimizers[0], optimizers[0].step)
    _train(twin, loaded, stepper(loaded))
    for a, b in zip(nets[0].parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_parameter_without_gradient_is_left_as_adam_leaves_it() -> None:
    nets = [_net(), _net()]
    optimizers = [make_optimizer(net.parameters(), Config().train) for net in nets]
    direct = stepper(optimizers[1])
    _train(nets[0], optimizers[0], optimizers[0].step, steps=3)
    _train(nets[1], optimizers[1], direct, steps=3)
    for net, optimizer, step in zip(nets, optimizers, (optimizers[0].step, direct), strict=True):
        frozen = net[0].bias.detach().clone()
        net[0].bias.requires_grad_(False)
        _train(net, optimizer, step, steps=2)
        assert torch.equal(net[0].bias, frozen)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_other_optimizers_step_through_torch() -> None:
    net = _net()
    for optimizer in (
        torch.optim.SGD(net.parameters(), lr=0.1),
        torch.optim.Adam(net.parameters(), fused=False),
        torch.optim.Adam(net.parameters(), fused=True, amsgrad=True),
        torch.optim.Adam([{"params": [net[0].weight]}, {"params": [net[2].weight]}], fused=True),
    ):
        assert stepper(optimizer) == optimizer.step
    hooked = torch.optim.Adam(net.parameters(), fused=True)
    hooked.register_step_post_hook(lambda *args: None)
    assert stepper(hooked) == hooked.step
    plain = torch.optim.Adam(net.parameters(), fused=True)
    handle = register_optimizer_step_pre_hook(lambda *args: None)
    try:  # a hook on every optimizer counts too
        assert stepper(plain) == plain.step
    finally:
        handle.remove()
    assert stepper(plain) != plain.step


def test_the_weight_average_is_torchs_ema_after_its_first_steps() -> None:
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    net = _net()
    average = WeightAverage(net, decay=0.9)
    reference = [t.detach().clone() for t in net.state_dict().values()]
    ema = get_ema_multi_avg_fn(0.9)
    data = torch.Generator().manual_seed(3)
    for step in range(1000, 1005):  # the bias correction has faded: 1 - 0.9 ** 1000 == 1.0
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=data))
        average.update(step)
        ema(reference, list(net.state_dict().values()), torch.tensor(1))
    for a, b in zip(average.module.state_dict().values(), reference, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in average.module.parameters())


def test_the_weight_average_is_bias_corrected() -> None:
    net = _net()
    average = WeightAverage(net, decay=0.9)
    seen = []
    with torch.no_grad():
        for step in range(3):
            net[0].weight.add_(1.0)
            seen.append(net[0].weight.clone())
            average.update(step)
    # the first step replaces the initial weights; then each weighs 0.9 times the next
    weights = torch.tensor([0.81, 0.9, 1.0]) / (0.81 + 0.9 + 1.0)
    expected = sum(w * x for w, x in zip(weights, seen, strict=True))
    torch.testing.assert_close(average.module[0].weight, expected)
