"""Optimizers and schedules: the registries, and each schedule against torch's own."""

from __future__ import annotations

import pytest
import torch

from mlplab import Config
from mlplab.optim import OPTIMIZERS, SCHEDULES, Plan, lr_at, make_optimizer, momentum_at, set_step


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
    tc = Config().override({"train.lr": 0.1, "train.scheduler": name, "train.step_size": 2,
                            "train.gamma": 0.3}).train  # fmt: skip
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
