"""The training loop: one function that reads top to bottom, and its pure helpers.

``train(config)`` loads the data, holds out the validation split, fits the normalization
on the training split, builds the model, then for each epoch: one pass over seeded,
augmented device batches, a validation pass, a metrics line. It keeps the best-validation
weights (lowest validation loss), scores them once on the test split, and writes the run
directory. Ctrl-C stops after the current step and still saves a usable run.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .batches import iterate_batches
from .config import Config
from .data import Dataset, Normalization, Split, load_dataset, split_train_val
from .errors import TrainingError
from .losses import expected_initial_loss, loss_fn
from .metrics import Scores, evaluate_split
from .model import MLP, model_summary
from .progress import log_line, logger, progress_bar
from .run import Run

__all__ = [
    "TrainResult",
    "format_epoch",
    "make_optimizer",
    "make_scheduler",
    "select_device",
    "train",
]

DRY_RUN_EPOCHS, DRY_RUN_BATCHES = 2, 3  # --dry-run: a few batches of every epoch and split
PER_STEP_SCHEDULERS = ("cosine", "onecycle")

EpochHook = Callable[[dict[str, Any], MLP], bool | None]


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the best model and the history."""

    run: Run
    model: MLP
    history: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return self.run.path


def train(
    config: Config | None = None,
    *,
    dataset: Dataset | None = None,
    on_epoch: EpochHook | None = None,
) -> TrainResult:
    """Train an MLP as ``config`` says and write its run directory.

    ``dataset`` skips loading (it must be the one ``config.data.dataset`` names, or any
    :class:`Dataset` you built). ``on_epoch(record, model)`` is called after every epoch;
    returning True stops training early (the benchmark uses it to stop at a target).
    """
    config = (config or Config()).validate()
    tc, dry = config.train, config.train.dry_run
    started = time.perf_counter()
    logger.info("config   " + config.summary().replace("\n", "\n         "))
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = select_device(tc.device)
    torch.manual_seed(tc.seed)

    # ----- data: uint8 tensors on the device, normalization from the training split only
    data = dataset or load_dataset(
        config.data.dataset,
        config.data.data_dir,
        download=config.data.download,
        mirror=config.data.mirror,
    )
    train_split = data.train[: config.data.limit] if config.data.limit else data.train
    train_split, val_split = split_train_val(
        train_split, config.data.val_size, config.data.split_seed
    )
    normalization = Normalization.fit(train_split.images, config.data.normalize)
    train_split, val_split, test_split = (s.to(device) for s in (train_split, val_split, data.test))
    scale, offset = normalization.affine(device)
    c, h, w = data.image_shape
    logger.info(
        f"data     {data.name}: {len(train_split):,} train / {len(val_split):,} val / {len(test_split):,} test, "
        f"{c}x{h}x{w}, {len(data.classes)} classes, from {data.origin}"
    )
    logger.info(
        f"normalize {config.data.normalize}: mean {_fmt(normalization.mean)}, std {_fmt(normalization.std)} (training split)"
    )

    # ----- model, loss, optimizer, schedule
    model = MLP(data.image_shape, config.model.hidden, len(data.classes), config.model.activation,
                config.model.dropout, config.model.head, config.model.init).to(device)  # fmt: skip
    criterion = loss_fn(config.model.head)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    optimizer = make_optimizer(model, config, device)
    epochs = min(tc.epochs, DRY_RUN_EPOCHS) if dry else tc.epochs
    max_batches = DRY_RUN_BATCHES if dry else None
    steps_per_epoch = min(math.ceil(len(train_split) / tc.batch_size), max_batches or math.inf)
    scheduler = make_scheduler(optimizer, config, epochs, steps_per_epoch)
    logger.info(f"model    {model.extra_repr()}\n{model_summary(model)}")

    def score(split: Split) -> Scores:  # never augmented; in eval mode; a few batches if dry
        return evaluate_split(
            model, split, scale, offset, batch_size=tc.eval_batch_size, max_batches=max_batches
        )

    initial = score(train_split[:1000])
    expected = expected_initial_loss(config.model.head, model.classes)
    logger.info(f"initial loss {initial.loss:.4f} (a fresh model should be near {expected:.4f}"
                f"{' = ln(' + str(model.classes) + ')' if expected > 0 else ''})")  # fmt: skip

    run = Run.create(config.run.dir, config.run.name or "mlp")
    run.save_config(config)
    logger.info(f"run      {run.path}")
    generator = torch.Generator(device).manual_seed(tc.seed)  # shuffling and augmentation
    history: list[dict[str, Any]] = []
    best_state, best_epoch, best_loss = None, 0, math.inf
    interrupted = False
    bar = progress_bar(total=epochs * steps_per_epoch, desc="train", unit="step")

    # ----- the loop
    try:
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            model.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
            for x, y in iterate_batches(train_split, tc.batch_size, scale, offset, generator=generator,
                                        rotation=config.augment.rotation, max_shift=config.augment.shift,
                                        max_batches=max_batches):  # fmt: skip
                out = model(x)
                loss = criterion(out, y)
                objective = loss + tc.l1 * sum(wt.abs().sum() for wt in weights) if tc.l1 else loss
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                optimizer.step()
                if tc.scheduler in PER_STEP_SCHEDULERS:
                    scheduler.step()
                loss_sum.add_(loss.detach(), alpha=len(y))  # stays on the device: no sync per step
                correct += (out.argmax(1) == y).sum()
                seen += len(y)
                bar.update()
            train_loss = float(loss_sum) / seen
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"training diverged: the train loss became {train_loss} in epoch {epoch}; "
                    f"lower train.lr (now {tc.lr:g}) or check the inputs for extreme values"
                )
            val = score(val_split) if len(val_split) else None
            # what "best" and the plateau schedule watch; without a validation split, train loss
            monitored = val.loss if val else train_loss
            if tc.scheduler == "plateau":
                scheduler.step(monitored)
            elif tc.scheduler == "step":
                scheduler.step()
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": float(correct) / seen,
                "val_loss": val.loss if val else None,
                "val_accuracy": val.accuracy if val else None,
                "lr": lr,
                "epoch_seconds": time.perf_counter() - epoch_start,
                "elapsed_seconds": time.perf_counter() - started,
            }
            history.append(record)
            run.save_metrics(history)
            if monitored < best_loss:
                best_loss, best_epoch = monitored, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log_line(format_epoch(record, epochs), bar)
            if on_epoch is not None and on_epoch(record, model):
                break
    except KeyboardInterrupt:
        if best_state is None:
            raise
        interrupted = True
        log_line(f"interrupted: keeping the best weights so far (epoch {best_epoch})", bar)
    finally:
        bar.close()

    # ----- the best weights, scored once on the test split, saved with the run
    model.load_state_dict(best_state)
    test = score(test_split)
    run.save_model(model, normalization, data.classes)
    summary = _summary(config, data, model, history, best_epoch, test, device, started, interrupted,
                       samples=(len(train_split), len(val_split), len(test_split)))  # fmt: skip
    run.save_summary(summary)
    logger.info(
        f"test     loss {test.loss:.4f}  accuracy {test.accuracy:.2%}  (best epoch {best_epoch}, "
        f"{summary['train_seconds']:.1f}s training)"
    )
    return TrainResult(run=run, model=model, history=history, summary=summary)


# ----- pure helpers ---------------------------------------------------------------------
def select_device(name: str) -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise TrainingError(
            f"train.device='{name}' but this torch ({torch.__version__}) sees "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cpu or --device auto"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(
            f"train.device='{name}' but MPS is not available here; use --device cpu or --device auto"
        )
    return device


def make_optimizer(
    model: torch.nn.Module, config: Config, device: torch.device
) -> torch.optim.Optimizer:
    """The optimizer the config names; fused kernels where torch has them (one op per step)."""
    tc = config.train
    params = model.parameters()
    fused = device.type in ("cpu", "cuda")
    if tc.optimizer == "adam":
        return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay, fused=fused)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay, fused=fused)
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov,
                               weight_decay=tc.weight_decay, fused=fused)  # fmt: skip
    return torch.optim.RMSprop(params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: Config, epochs: int, steps_per_epoch: int
) -> Any:
    """The learning-rate schedule: step and plateau step per epoch, cosine and onecycle per batch."""
    tc = config.train
    sched = torch.optim.lr_scheduler
    if tc.scheduler == "step":
        return sched.StepLR(optimizer, step_size=tc.step_size, gamma=tc.gamma)
    if tc.scheduler == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="min", factor=tc.gamma, patience=tc.patience)
    if tc.scheduler == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    if tc.scheduler == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=tc.lr, total_steps=epochs * steps_per_epoch)
    return None


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """The fixed-width line printed for each epoch, from the record written to metrics.jsonl."""
    width = len(str(epochs))
    val = (
        f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:7.2%}"
        if record["val_loss"] is not None
        else "val        -            -"
    )
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  train loss {record['train_loss']:.4f} "
        f"acc {record['train_accuracy']:7.2%}  {val}  lr {record['lr']:.2e}  {record['epoch_seconds']:6.2f}s"
    )


def _fmt(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.4f}" for v in values)


def _summary(config: Config, data: Dataset, model: MLP, history: list[dict[str, Any]], best_epoch: int,
             test: Scores, device: torch.device, started: float, interrupted: bool,
             samples: tuple[int, int, int]) -> dict[str, Any]:  # fmt: skip
    best = history[best_epoch - 1]
    train_seconds = sum(r["epoch_seconds"] for r in history)
    return {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_per_class_accuracy": dict(zip(data.classes, test.per_class_accuracy, strict=True)),
        "best_epoch": best_epoch,
        "best_val_loss": best["val_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "epochs_run": len(history),
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / len(history),
        "wall_seconds": time.perf_counter() - started,
        "parameters": model.num_parameters,
        "dataset": data.name,
        "data_origin": data.origin,
        "samples": dict(zip(("train", "val", "test"), samples, strict=True)),
        "seed": config.train.seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "dry_run": config.train.dry_run,
        "interrupted": interrupted,
        "versions": {
            "mlplab": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "platform": platform.platform(),
    }
