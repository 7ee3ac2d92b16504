"""The training step with its backward pass written out: the plain ReLU MLP on the CPU.

For the MLP most recipes train (ReLU blocks without dropout, a logits or log-softmax head,
cross-entropy with or without label smoothing, float32 or bfloat16 products, one process
on the CPU) the gradients are a handful of matrix products, written here in the order
autograd would run them: one ``addmm`` and an in-place ReLU per layer forward; the
softmax's gradient in closed form; per layer backward one product for the weights' gradient,
one column sum for the bias's and one product and ReLU mask for the layer below. Nothing
else runs: no graph is recorded or walked, no autocast dispatch happens. On the 2-core
Intel Xeon VM (benchmarks/direct_step.py, README "Speed") the tutorial preset's step takes
1.15-1.2x less time than autograd's and ``fast``'s 1.1-1.2x; the matrix products and the
optimizer, the bulk of a step, are the same.

The products and their operands are those of ``torch.autograd`` under ``torch.autocast``
(bfloat16: the weights, the inputs and the gradients flowing back are cast to bfloat16, the
loss and its gradient stay in float32, the parameters' gradients arrive in float32), so
the two steps agree to rounding (the logits it returns are float32, autograd's bfloat16:
the same values, converted); tests/training/test_direct.py compares them on every
form the step covers. :func:`direct_step` returns None for anything else (other
activations, dropout, alignment of augmented images, a softmax head, the log-softmax head in
bfloat16 (autocast computes it in bfloat16), an L1 term, a regression, precisions other
than float32 and bfloat16, frozen parameters, hooks on the model, several ranks, another
device), and training takes autograd's step. Images never augmented are aligned once,
before the first step (:func:`mlplab.training.session.aligns_once`): the step covers those.
The step is made anew each epoch, so a change an ``on_epoch`` hook makes (freezing a layer,
a hook) is seen from the next epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .session import Session

__all__ = ["direct_step", "not_covered"]

_relu_backward = torch.ops.aten.threshold_backward.default  # what ReLU's autograd node runs

Step = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def not_covered(s: Session) -> str | None:
    """Why the written-out step does not cover this session's model and recipe: the first
    reason found, or None where it covers them."""
    model, tc = s.model, s.config.train
    reasons = (
        (s.device.type != "cpu", f"the device is {s.device.type}"),
        (s.world.size > 1 or s.trained is not None, "several ranks train it"),
        (s.regression_loss is not None, "a regression"),
        (model.activation != "relu", f"activation {model.activation}"),
        (model.dropout > 0, "dropout"),
        # images aligned once (Session.aligns_once) are inputs like any other
        ((model.deskew or model.center) and not s.aligns_once, "alignment of augmented images"),
        (model.head not in ("logits", "log_softmax"), f"head {model.head}"),
        (bool(tc.l1), "an L1 term"),
        (tc.precision not in ("fp32", "bf16"), f"precision {tc.precision}"),
        # autocast computes log-softmax in bfloat16 on the CPU; the step's would be float32
        (
            tc.precision == "bf16" and model.head == "log_softmax",
            "the log-softmax head in bf16",
        ),
        (any(not p.requires_grad for p in model.parameters()), "frozen parameters"),
        (_hooked(model), "hooks on the model"),
    )
    return next((reason for hit, reason in reasons if hit), None)


def _hooked(model: torch.nn.Module) -> bool:
    """Whether code outside mlplab hooked the model (an ``on_epoch`` hook may): hooks run
    only when the module is called and autograd walks the graph, which this step does not."""
    module_hooks = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
    )
    tensor_hooks = ("_backward_hooks", "_post_accumulate_grad_hooks")
    modules = torch.nn.modules.module
    global_hooks = (
        modules._global_forward_hooks,
        modules._global_forward_pre_hooks,
        modules._global_backward_hooks,
        modules._global_backward_pre_hooks,
    )
    return (
        any(global_hooks)
        or any(getattr(m, name, None) for m in model.modules() for name in module_hooks)
        or any(getattr(p, name, None) for p in model.parameters() for name in tensor_hooks)
    )


def direct_step(s: Session, update: Callable[[], None]) -> Step | None:
    """``step(x, y, batch)`` as :func:`mlplab.training.session.training_step` makes it, with
    the gradients written out, or None where :func:`not_covered` gives a reason.

    ``update`` makes the optimizer's step once the parameters' ``.grad`` are set.
    """
    if not_covered(s) is not None:
        return None
    model, tc = s.model, s.config.train
    layers = [block.linear for block in model.hidden] + [model.output]
    weights = [layer.weight for layer in layers]
    biases = [layer.bias for layer in layers]
    smoothing = float(tc.label_smoothing)
    low = torch.bfloat16 if tc.precision == "bf16" else None
    log_softmax_head = model.head == "log_softmax"
    prepared = s.aligns_once  # the batches are aligned and cropped already

    @torch.no_grad()
    def step(x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = x if prepared else model.cropped(x)
        if low is not None:  # one copy: the cast of a cropped view comes out contiguous
            h = x.to(low, memory_format=torch.contiguous_format).flatten(1)
            ws = [w.to(low) for w in weights]
            bs = [b.to(low) for b in biases]
        else:
            h, ws, bs = x.flatten(1), weights, biases
        inputs = [h]  # what each layer saw: its weight's gradient is grad^T @ input
        for w, b in zip(ws[:-1], bs[:-1], strict=True):
            h = torch.addmm(b, h, w.t()).relu_()
            inputs.append(h)
        z = torch.addmm(bs[-1], h, ws[-1].t()).float()
        log_p = torch.log_softmax(z, 1)
        loss, grad = _cross_entropy(log_p, y, smoothing)
        grads: list[tuple[torch.Tensor, torch.Tensor]] = []
        g = grad if low is None else grad.to(low)
        for i in range(len(layers) - 1, -1, -1):
            dw = torch.mm(g.t(), inputs[i])
            db = g.sum(0)
            grads.append((dw, db))
            if i:
                g = _relu_backward(torch.mm(g, ws[i]), inputs[i], 0)
        for (w, b), (dw, db) in zip(
            zip(weights, biases, strict=True), reversed(grads), strict=True
        ):
            w.grad = dw if low is None else dw.float()
            b.grad = db if low is None else db.float()
        update()
        return loss, log_p if log_softmax_head else z

    return step


def _cross_entropy(
    log_p: torch.Tensor, y: torch.Tensor, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's mean cross-entropy from the log-probabilities, with label smoothing
    ``smoothing`` as ``torch.nn.functional.cross_entropy`` has it (the target is
    ``(1 - smoothing)`` on the label plus ``smoothing / classes`` on every class), and its
    gradient with respect to the logits: ``(softmax - target) / batch``."""
    n, classes = log_p.shape
    picked = log_p.gather(1, y[:, None])
    loss = -picked.mean()
    if smoothing:
        loss = (1 - smoothing) * loss - smoothing * log_p.mean(1).mean()
    grad = log_p.exp()
    if smoothing:
        grad.sub_(smoothing / classes)
    grad.scatter_add_(1, y[:, None], torch.full_like(picked, -(1 - smoothing)))
    return loss, grad.div_(n)
