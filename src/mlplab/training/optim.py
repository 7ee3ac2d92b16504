"""Optimizers and learning-rate schedules, as registries the config validates against.

A schedule here is a pure function: the learning rate (and momentum) of a step follows from
the step number, the planned length of training and, for ``plateau``, the validation
history. The loop sets them on the optimizer before every step, so the rate has one source,
a checkpoint needs no scheduler state, and ``--resume --epochs N`` continues on the schedule
planned for N epochs. Each schedule matches its ``torch.optim.lr_scheduler`` counterpart
(tests compare them step by step).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch.optim import optimizer as torch_optimizer  # the module: its global step hooks

from ..config import TrainConfig

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Plan",
    "WeightAverage",
    "lr_at",
    "make_optimizer",
    "momentum_at",
    "set_step",
    "stepper",
]

Params = Iterable[torch.nn.Parameter]


def _adam(params: Params, tc: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay, fused=fused)


def _adamw(params: Params, tc: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay, fused=fused)


def _sgd(params: Params, tc: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=tc.lr,
        momentum=tc.momentum,
        nesterov=tc.nesterov,
        weight_decay=tc.weight_decay,
        fused=fused,
    )


def _rmsprop(params: Params, tc: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    # RMSprop has no fused kernel in torch
    return torch.optim.RMSprop(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)


# name -> builder(params, train config, fused); the config's choices are these keys
OPTIMIZERS: dict[str, Callable[[Params, TrainConfig, bool], torch.optim.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
    "rmsprop": _rmsprop,
}


def make_optimizer(
    params: Params, tc: TrainConfig, device: torch.device | str = "cpu"
) -> torch.optim.Optimizer:
    """The optimizer ``tc.optimizer`` names; fused kernels where torch has them (CPU, CUDA)."""
    return OPTIMIZERS[tc.optimizer](params, tc, torch.device(device).type in ("cpu", "cuda"))


@dataclass(frozen=True)
class Plan:
    """The length of training a schedule is laid out over."""

    epochs: int
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


# OneCycleLR's defaults, which the onecycle schedule reproduces
PCT_START, DIV_FACTOR, FINAL_DIV_FACTOR = 0.3, 25.0, 1e4
BASE_MOMENTUM, MAX_MOMENTUM = 0.85, 0.95
PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts (ReduceLROnPlateau's default)


def _none(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float]) -> float:
    return tc.lr


def _step(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float]) -> float:
    return tc.lr * tc.gamma ** ((step // plan.steps_per_epoch) // tc.step_size)


def _cosine(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float]) -> float:
    return tc.lr * 0.5 * (1 + math.cos(math.pi * step / plan.total_steps))


def _onecycle(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float]) -> float:
    start, low = tc.lr / DIV_FACTOR, tc.lr / DIV_FACTOR / FINAL_DIV_FACTOR
    return _one_cycle_value(step, plan, (start, tc.lr, low))


def _plateau(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float]) -> float:
    # ReduceLROnPlateau(mode="min", factor=gamma, patience) replayed over the epochs so far
    best, bad, lr = math.inf, 0, tc.lr
    for value in monitored[: step // plan.steps_per_epoch]:
        if value < best * (1 - PLATEAU_THRESHOLD):
            best, bad = value, 0
        else:
            bad += 1
        if bad > tc.patience:
            lr, bad = lr * tc.gamma, 0
    return lr


def _one_cycle_value(step: int, plan: Plan, points: tuple[float, float, float]) -> float:
    """Cosine from points[0] up to points[1] over the first 30% of steps, then to points[2]."""
    first_end, last = float(PCT_START * plan.total_steps) - 1, plan.total_steps - 1
    begin, (start, end) = 0.0, (points[0], points[1])
    if step > first_end:
        begin, (start, end), first_end = first_end, (points[1], points[2]), last
    pct = (step - begin) / (first_end - begin) if first_end > begin else 1.0
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


# name -> lr(train config, step, plan, monitored validation losses per finished epoch)
SCHEDULES: dict[str, Callable[[TrainConfig, int, Plan, Sequence[float]], float]] = {
    "none": _none,
    "step": _step,
    "plateau": _plateau,
    "cosine": _cosine,
    "onecycle": _onecycle,
}


def lr_at(tc: TrainConfig, step: int, plan: Plan, monitored: Sequence[float] = ()) -> float:
    """The learning rate of global step ``step`` (0-based) under ``tc.scheduler``."""
    return SCHEDULES[tc.scheduler](tc, step, plan, monitored)


def momentum_at(tc: TrainConfig, step: int, plan: Plan) -> float | None:
    """Momentum (beta1 for Adam) of a step when one-cycle cycles it, else None (as configured)."""
    if tc.scheduler != "onecycle" or not tc.cycle_momentum:
        return None
    return _one_cycle_value(step, plan, (MAX_MOMENTUM, BASE_MOMENTUM, MAX_MOMENTUM))


def set_step(optimizer: torch.optim.Optimizer, lr: float, momentum: float | None) -> None:
    """Put a step's learning rate (and cycled momentum) on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum


def stepper(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """A function that makes one ``optimizer.step()``.

    For fused Adam and AdamW in their plain form (one parameter group, no amsgrad, maximize,
    capturable or hooks, all parameters of one device and dtype) it calls torch's fused
    kernel directly once the optimizer's state exists: the update ``Adam.step`` makes, the
    same kernel on the same tensors (tests compare them bit for bit), without its Python
    bookkeeping, which costs ~50-100 us a step: 4-8% of a tutorial epoch on 2 cores. Any
    other optimizer, or a step where a parameter has no gradient, goes through
    ``optimizer.step()``. Make a new stepper after ``load_state_dict``: it keeps the state
    tensors it found. What the shortcut skips besides: the profiler's ``Optimizer.step``
    label, and the step count a ``torch.optim.lr_scheduler`` checks (mlplab sets the rate
    itself, :func:`set_step`).
    """
    if not _plain_fused_adam(optimizer):
        return optimizer.step
    group = optimizer.param_groups[0]
    params: list[torch.Tensor] = list(group["params"])
    # newer torch makes AdamW an Adam with this flag; older releases kept a class of its own
    decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    state: list[list[torch.Tensor]] = []  # exp_avgs, exp_avg_sqs, steps once they exist

    def step() -> None:
        grads = [p.grad for p in params]
        if not state:
            found = [optimizer.state.get(p) for p in params]
            if all(found):  # Adam creates the state at its first step
                state.extend([s[key] for s in found] for key in ("exp_avg", "exp_avg_sq", "step"))
        if not state or any(g is None for g in grads):
            optimizer.step()
            return
        exp_avgs, exp_avg_sqs, steps = state
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        kernel(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    return step


def _plain_fused_adam(optimizer: torch.optim.Optimizer) -> bool:
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    hooks = (
        optimizer._optimizer_step_pre_hooks,
        optimizer._optimizer_step_post_hooks,
        torch_optimizer._global_optimizer_pre_hooks,
        torch_optimizer._global_optimizer_post_hooks,
    )
    if len(optimizer.param_groups) != 1 or any(hooks):
        return False
    group = optimizer.param_groups[0]
    plain = group.get("fused") and not any(
        group.get(key) for key in ("amsgrad", "maximize", "capturable", "differentiable")
    )
    kinds = {(p.device, p.dtype) for p in group["params"]}
    return bool(plain) and len(kinds) == 1 and not isinstance(group["lr"], torch.Tensor)


class WeightAverage:
    """An exponential moving average of a model's weights (``train.ema``): a copy of the
    model whose floating-point state follows the trained one after every optimizer step,
    ``avg = d * avg + (1 - d) * w``, in one fused ``_foreach_lerp_`` (what
    ``torch.optim.swa_utils.get_ema_multi_avg_fn`` does; ``AveragedModel`` itself would
    wrap the model and rename its weights). The average is bias-corrected as Adam's moments
    are: step ``t`` (0-based) weighs in with ``(1 - d) / (1 - d ** (t + 1))``, so the first
    step replaces the initial weights and the decay is ``d`` from the start, with no warm-up
    to tune. Buffers are averaged too (an MLP has none today)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self._live = [t for t in model.state_dict().values() if t.is_floating_point()]
        self._average = [t for t in self.module.state_dict().values() if t.is_floating_point()]

    def update(self, step: int) -> None:
        """Fold in the weights after global step ``step`` (0-based)."""
        weight = (1.0 - self.decay) / (1.0 - self.decay ** (step + 1))
        torch._foreach_lerp_(self._average, self._live, weight)
