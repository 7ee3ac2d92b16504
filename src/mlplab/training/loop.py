"""The training loop: one function that reads top to bottom, its set-up and its finish.

``train(config)`` loads the data, holds out the stratified validation split, fits the
normalization on the training split, builds the model, then for each epoch: one pass over
seeded, augmented device batches, a validation pass, a metrics line, and a checkpoint of
the whole state. It keeps the weights of the epoch ``train.select`` names (by default the
lowest validation loss), scores
them once on the test split, and writes the run directory.

``resume(run_dir)`` picks a run up from its last checkpoint and ends exactly where the
uninterrupted run would have (same metrics, same weights, bit for bit on CPU). Ctrl-C
stops after the current step, keeps the best weights so far and says how to resume.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import MAX_THREADS, Config, TrainConfig, check_against_data, selection_score
from ..data import Dataset, Normalization, Split, load_configured
from ..data.splits import run_splits
from ..errors import ConfigError, RunError, TrainingError
from ..files.limits import shown
from ..model import linear
from ..model.heads import expected_initial_loss, loss_fn
from ..model.mlp import MLP, check_align, input_features, model_summary
from ..progress import log_line, log_to_file, logger, progress_bar
from ..run.directory import CHECKPOINT_FORMAT, LOG, Run
from ..run.splits import run_dataset
from . import distributed
from .batches import Augmentation, iterate_batches
from .device import busy_cores, isolated
from .distributed import World, lost_peer, shard
from .metrics import Scores, evaluate_split
from .optim import Plan, WeightAverage, lr_at, make_optimizer, momentum_at, set_step, stepper

__all__ = ["Epoch", "TrainResult", "format_epoch", "resume", "train", "training_step"]

DRY_RUN_EPOCHS, DRY_RUN_BATCHES = 2, 3  # --dry-run: a few batches of every epoch and split


@dataclass
class Epoch:
    """What an ``on_epoch`` hook sees after each epoch: the record, the model as validated
    (with train.ema, the weights' average), and a scorer that uses the run's own
    normalization and device (``epoch.score("test")``)."""

    record: dict[str, Any]
    model: MLP
    score: Callable[[str], Scores]


EpochHook = Callable[[Epoch], bool | None]


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

    @property
    def interrupted(self) -> bool:
        return bool(self.summary.get("interrupted"))


@dataclass
class _Session:
    """Everything the loop works with, built once by :func:`_prepare`."""

    config: Config
    data: Dataset
    device: torch.device
    splits: dict[str, Split]  # train, val, test: on the device, uint8
    normalization: Normalization
    model: MLP
    optimizer: torch.optim.Optimizer
    plan: Plan
    generator: torch.Generator  # shuffling and augmentation
    max_batches: int | None
    world: World = field(default_factory=World)  # this process among the data-parallel ranks
    trained: torch.nn.Module | None = None  # the model as trained: DDP-wrapped with several ranks
    average: WeightAverage | None = None  # train.ema > 0: the average of the weights

    @property
    def evaluated(self) -> MLP:
        """The model that is validated, kept and saved: the weights' average (train.ema),
        or the model as trained."""
        return self.model if self.average is None else self.average.module  # type: ignore[return-value]

    @property
    def regression(self) -> str | None:
        """The regression loss's name, or None for a classification."""
        return self.config.train.loss if self.data.task == "regression" else None

    def score(self, split: str) -> Scores:
        """Never augmented; in eval mode; a few batches on a dry run."""
        scale, offset = self.normalization.affine(self.device)
        return evaluate_split(self.evaluated, self.splits[split], scale, offset,
                              batch_size=self.config.train.eval_batch_size,
                              max_batches=self.max_batches, loss=self.regression)  # fmt: skip


@dataclass
class _State:
    """What changes as training goes on; all of it goes into the checkpoint."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = math.inf  # of train.select; lower is better
    best_weights: dict[str, torch.Tensor] | None = None

    def monitored(self) -> list[float]:
        """What the plateau schedule watches: val loss, or train loss without one."""
        return [
            r["val_loss"] if r["val_loss"] is not None else r["train_loss"] for r in self.history
        ]


# ----- the public entry points ------------------------------------------------------------
def train(
    config: Config | None = None,
    *,
    dataset: Dataset | None = None,
    on_epoch: EpochHook | None = None,
) -> TrainResult:
    """Train an MLP as ``config`` says and write its run directory.

    ``dataset`` skips loading: any :class:`Dataset` (the run records which, in
    ``dataset.json``). ``on_epoch(epoch)`` is called after every epoch with an
    :class:`Epoch`; returning True stops training early.
    """
    config = (config or Config()).validate()
    with _process_settings(config.train) as (device, world):
        data = dataset or load_configured(config.data)
        _check_task(config, data)  # before anything is written
        set_threads(config, data, device)
        run = _create_run(config, world)
        try:
            with _run_log(run, world, "w"):
                session = _prepare(config, data, device, run, world=world)
                return _fit(session, run, _State(), on_epoch)
        except BaseException:
            if world.is_main and not (run.path / "checkpoint.pt").exists():  # no epoch ended
                shutil.rmtree(run.path, ignore_errors=True)
            raise


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    dataset: Dataset | None = None,
    on_epoch: EpochHook | None = None,
    recipe_changes: Sequence[str] = (),
) -> TrainResult:
    """Continue a run from its last checkpoint, in the same directory.

    ``epochs`` extends (or sets) the run's length in epochs; the schedule is then the one
    planned for that many. ``dataset`` is needed only for a run trained on an in-memory
    dataset; it must have the recorded name, image shape and classes. ``recipe_changes``:
    the other recipe options the caller was given (e.g. ``["--lr"]``): a resumed run keeps
    its recipe, so any is a ConfigError naming them.
    """
    if recipe_changes:
        raise ConfigError(
            f"--resume continues a run with its own recipe; {', '.join(recipe_changes)} would "
            "change it (only --epochs N, to extend the run to N epochs, goes with --resume)"
        )
    run = Run.open(run_dir, need_model=False)
    config = run.config()
    checkpoint = run.load_checkpoint()
    if epochs is not None and epochs != config.train.epochs:
        config = config.override({"train.epochs": epochs}, source="--epochs")
        if int(os.environ.get("RANK", "0")) == 0:
            run.save_config(config)  # a later resume continues the same plan
    if checkpoint["epoch"] >= config.train.epochs:
        raise RunError(
            f"run {run.path} already finished all {config.train.epochs} epochs; "
            f"pass --epochs N (more than {checkpoint['epoch']}) to extend it"
        )
    with _process_settings(config.train) as (device, world):
        data = run_dataset(run, dataset=dataset)
        _check_task(config, data)
        set_threads(config, data, device, checkpoint.get("threads"))
        with _run_log(run, world, "a"):
            logger.info(
                f"resume   {run.path} from epoch {checkpoint['epoch']} of {config.train.epochs}"
            )
            session = _prepare(config, data, device, run, fresh=False, world=world)
            return _fit(session, run, _restore(session, checkpoint), on_epoch)


# ----- the loop ------------------------------------------------------------------------------
def _fit(s: _Session, run: Run, state: _State, on_epoch: EpochHook | None) -> TrainResult:
    tc, started = s.config.train, time.perf_counter()
    resumed_elapsed = state.history[-1]["elapsed_seconds"] if state.history else 0.0
    interrupted = False
    bar = progress_bar(total=s.plan.total_steps, initial=state.step, desc="train", unit="step")
    try:
        for epoch in range(state.epoch + 1, s.plan.epochs + 1):
            epoch_start = time.perf_counter()
            lr = lr_at(tc, state.step, s.plan, state.monitored())
            train_loss, train_accuracy = _train_epoch(s, state, bar)
            val = s.score("val") if len(s.splits["val"]) else None
            _check_finite(epoch, train_loss, val, tc.lr)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "val_loss": val.loss if val else None,
                "val_accuracy": val.accuracy if val else None,
                **({"val_r2": val.r2 if val else None} if s.regression else {}),
                "lr": lr,
                "epoch_seconds": time.perf_counter() - epoch_start,
                "elapsed_seconds": resumed_elapsed + time.perf_counter() - started,
            }
            state.history.append(record)
            state.epoch = epoch
            if (score := selection_score(record, tc.select)) < state.best_score:
                state.best_score, state.best_epoch = score, epoch
                state.best_weights = {
                    k: v.detach().clone() for k, v in s.evaluated.state_dict().items()
                }
            if s.world.is_main:
                run.save_metrics(state.history)
                run.save_checkpoint(_checkpoint(s, state))
            log_line(format_epoch(record, s.plan.epochs), bar)
            if on_epoch is not None and on_epoch(Epoch(record, s.evaluated, s.score)):
                break
    except RuntimeError as exc:
        if s.world.size > 1:  # a collective failed: most often, another rank died
            raise lost_peer(exc, s.world) from None
        raise
    except KeyboardInterrupt:
        if state.best_weights is None:
            raise
        interrupted = True
        log_line(f"interrupted: keeping the best weights so far (epoch {state.best_epoch})", bar)
    finally:
        bar.close()
    return _finish(s, run, state, interrupted, started)


def _train_epoch(s: _Session, state: _State, bar: Any) -> tuple[float, float | None]:
    """One pass over the training split; returns its mean loss and accuracy (None: regression)."""
    tc, optimizer, average, world = s.config.train, s.optimizer, s.average, s.world
    step = training_step(s.model, optimizer, tc, s.device, s.regression, trained=s.trained,
                         world=world)  # fmt: skip
    scale, offset = s.normalization.affine(s.device)
    s.model.train()
    # Per-batch losses stay on the device (no sync per step, no float64: MPS has none);
    # they are summed once, on the host, at the end of the epoch.
    losses: list[torch.Tensor] = []
    hits: list[torch.Tensor] = []
    sizes: list[int] = []
    # counted from the configured end: a dry run's few epochs are augmented as the run's are
    augmented = state.epoch + 1 <= tc.epochs - s.config.augment.clean_epochs
    augmentation = Augmentation.of(s.config.augment) if augmented else None
    monitored = state.monitored()  # changes only between epochs
    for x, y in iterate_batches(s.splits["train"], tc.batch_size, scale, offset, generator=s.generator,
                                augmentation=augmentation, max_batches=s.max_batches):  # fmt: skip
        set_step(
            optimizer,
            lr_at(tc, state.step, s.plan, monitored),
            momentum_at(tc, state.step, s.plan),
        )
        batch = len(y)
        x, y = shard(x, world), shard(y, world)  # every rank drew the same global batch
        loss, out = step(x, y, batch)
        if average is not None:
            average.update(state.step)
        losses.append(loss.detach())  # no copy: the stack below is the epoch's one
        if not s.regression:
            hits.append((out.argmax(1) == y).sum())
        sizes.append(len(y))
        state.step += 1
        bar.update()
    per_batch = torch.stack(losses).tolist() if losses else []  # one transfer, summed exactly
    total = math.fsum(loss * size for loss, size in zip(per_batch, sizes, strict=True))
    correct = float(torch.stack(hits).sum()) if hits else 0.0
    total, seen, correct = world.sum([total, sum(sizes), correct], s.device)
    return total / seen, None if s.regression else correct / seen


Step = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def training_step(
    model: MLP,
    optimizer: torch.optim.Optimizer,
    tc: TrainConfig,
    device: torch.device,
    regression: str | None = None,
    *,
    trained: torch.nn.Module | None = None,
    world: World | None = None,
) -> Step:
    """The one training step of ``train`` (and of ``lr_find``, which must measure the very
    step training takes): ``step(x, y, batch)`` on a normalized, augmented batch runs the
    forward pass under the run's precision (``train.precision=bf16``: autocast), the loss
    (with ``train.label_smoothing``) in float32, the L1 term, backward and the optimizer's
    update, and returns the batch's loss (without the L1 term) and the model's outputs.

    ``tc`` is the config's ``train`` section; the caller sets the step's rate beforehand
    (:func:`set_step`). ``trained`` is the model as trained (DDP-wrapped with several
    ranks; ``model`` itself otherwise); ``x`` and ``y`` are then this rank's share of a
    global batch of ``batch`` samples. Make one per pass: the optimizer's shortcut keeps the
    state tensors it found (:func:`stepper`).
    """
    world = world or World()
    forward = trained or model
    criterion = loss_fn(model.head, regression, tc.label_smoothing)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    parameters = list(model.parameters())
    bf16 = tc.precision == "bf16"
    update = stepper(optimizer)

    def step(x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
            loss = criterion(out.float(), y)
        # DDP averages gradients over the ranks: weighting each share by its size keeps the
        # gradient that of the global batch's mean loss (one process: the loss itself)
        scaled = loss * (len(y) * world.size / batch) if world.size > 1 else loss
        objective = scaled + tc.l1 * sum(w.abs().sum() for w in weights) if tc.l1 else scaled
        for p in parameters:  # optimizer.zero_grad(set_to_none=True) without its overhead
            p.grad = None
        objective.backward()
        update()
        return loss, out

    return step


# ----- set-up ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _process_settings(tc: TrainConfig) -> Iterator[tuple[torch.device, World]]:
    """The device and this process's place among the data-parallel ranks for one training
    call; the caller's thread count and global RNG state are put back afterwards."""
    ranks = distributed.world_size()
    if tc.batch_size < ranks:
        raise ConfigError(
            f"train.batch_size={tc.batch_size} is the global batch: it needs at least one "
            f"sample for each of the {ranks} ranks"
        )
    with isolated(tc.device) as device, distributed.world(device, tc.dist_timeout) as world:
        yield device, world


# A step's work (FLOPs) per thread: below it another thread costs more in OpenMP's
# hand-offs than it gains (benchmarks/threads.py, docs/config.md). At the tutorial's 60 MFLOP
# step two threads gain 1.3x on an idle 2-core machine; from ~1 GFLOP steps ~1.6x.
FLOPS_PER_THREAD = 25e6


def step_flops(input_size: int, hidden: list[int], outputs: int, batch_size: int) -> int:
    """Multiply-adds x 2 of one training step: forward, and backward (the first layer needs
    no input gradient)."""
    widths = [input_size, *hidden, outputs]
    layers = [a * b for a, b in itertools.pairwise(widths)]
    return 2 * batch_size * (sum(layers) * 2 + sum(layers[1:]))


def auto_threads(flops: float, available: int, busy: float = 0.0) -> int:
    """Threads for a step of ``flops``: one per FLOPS_PER_THREAD, at most the ``available``
    ones less the cores other work keeps ``busy``, at least 1. A thread that has to share
    its core stalls the others at every parallel region (3-5x slower beside one busy
    process at the tutorial's step), so busy cores are left alone."""
    free = available - math.floor(busy + 0.5)
    return max(1, min(free, int(flops // FLOPS_PER_THREAD)))


def env_threads(value: str) -> int:
    """MLPLAB_THREADS as a thread count, or one line saying what is allowed."""
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if not 1 <= threads <= MAX_THREADS:
        raise ConfigError(
            f"environment variable MLPLAB_THREADS must be a whole number in [1, {MAX_THREADS}]; "
            f"got {shown(value)} (unset it for the automatic choice)"
        )
    return threads


def set_threads(
    config: Config, data: Dataset, device: torch.device, resumed: int | None = None
) -> None:
    """train.threads, or (0) the automatic choice, which a resumed run takes over from its
    checkpoint (another count could change the floating-point sums); _process_settings puts
    the caller's back."""
    tc, env = config.train, os.environ.get("MLPLAB_THREADS")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    elif env:
        torch.set_num_threads(env_threads(env))
    elif resumed and device.type == "cpu":
        torch.set_num_threads(resumed)
    elif device.type == "cpu":
        outputs = 1 if data.task == "regression" else len(data.classes)
        features = input_features(data.image_shape, config.model.crop)
        flops = step_flops(features, config.model.hidden, outputs, tc.batch_size)
        available = torch.get_num_threads()
        busy = busy_cores() if flops >= 2 * FLOPS_PER_THREAD and available > 1 else 0.0
        torch.set_num_threads(auto_threads(flops, available, busy))


def _create_run(config: Config, world: World) -> Run:
    """Rank 0 makes the run directory; the other ranks learn its path and write nothing."""
    path = Run.create(config.run.dir, config.run.name or "mlp").path if world.is_main else None
    return Run(Path(world.broadcast(str(path) if path else None)))  # type: ignore[arg-type]


@contextlib.contextmanager
def _run_log(run: Run, world: World, mode: str) -> Iterator[None]:
    """train.log on rank 0; the other ranks keep quiet but for warnings."""
    if world.is_main:
        with log_to_file(run.path / LOG, mode=mode):
            yield
        return
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def seed_streams(seed: int) -> tuple[int, int]:
    """Two independent seeds from one: (weights and dropout, shuffling and augmentation)."""
    children = np.random.SeedSequence(seed).spawn(2)
    return tuple(int(c.generate_state(1, np.uint64)[0] >> 1) for c in children)  # type: ignore[return-value]


def _prepare(
    config: Config,
    data: Dataset,
    device: torch.device,
    run: Run,
    fresh: bool = True,
    world: World | None = None,
) -> _Session:
    """Data on the device, normalization, model, optimizer, plan; logs what it built."""
    tc, dry = config.train, config.train.dry_run
    if fresh:
        logger.info("config   " + config.summary().replace("\n", "\n         "))
    model_seed, data_seed = seed_streams(tc.seed)
    train_split, val_split, test_split = run_splits(data, config.data.limit, config.data.val_size,
                                                    config.data.split_seed)  # fmt: skip
    normalization = Normalization.fit(train_split.images, config.data.normalize)
    splits = {
        "train": train_split.to(device),
        "val": val_split.to(device),
        "test": test_split.to(device),
    }
    torch.manual_seed(model_seed)  # inside fork_rng: the caller's global RNG is untouched
    outputs = 1 if data.task == "regression" else len(data.classes)
    model = MLP.from_config(config.model, data.image_shape, outputs).to(device)
    max_batches = DRY_RUN_BATCHES if dry else None
    steps = min(math.ceil(len(train_split) / tc.batch_size), max_batches or math.inf)
    plan = Plan(min(tc.epochs, DRY_RUN_EPOCHS) if dry else tc.epochs, steps)
    world = world or World()
    s = _Session(config, data, device, splits, normalization, model, make_optimizer(model.parameters(), tc, device),
                 plan, torch.Generator(device).manual_seed(data_seed), max_batches, world,
                 distributed.wrap(model, device, world),
                 WeightAverage(model, tc.ema) if tc.ema else None)  # fmt: skip
    if fresh:
        c, h, w = data.image_shape
        what = (
            f"{c} features, regression"
            if data.task == "regression"
            else f"{c}x{h}x{w}, {len(data.classes)} classes"
        )
        logger.info(
            f"data     {data.name}: {len(train_split):,} train / {len(val_split):,} val / {len(test_split):,} test, "
            f"{what}, from {data.origin}"
        )
        if config.data.limit and config.data.limit < len(data.train):
            logger.info(f"limit    a seeded, class-stratified {config.data.limit:,} of the "
                        f"{len(data.train):,} training samples (data.limit, split_seed {config.data.split_seed})")  # fmt: skip
        logger.info(f"normalize {config.data.normalize}: mean {_fmt(normalization.mean)}, "
                    f"std {_fmt(normalization.std)} (training split)")  # fmt: skip
        logger.info(f"model    {model.extra_repr()}\n{model_summary(model)}")
        if data.task == "classification":  # a fresh classifier's loss is known in advance
            initial = evaluate_split(model, splits["train"][:1000], *normalization.affine(device),
                                     max_batches=max_batches)  # fmt: skip
            expected = expected_initial_loss(config.model.head, model.classes)
            logger.info(f"initial loss {initial.loss:.4f} (a fresh model should be near {expected:.4f}"
                        f"{' = ln(' + str(model.classes) + ')' if expected > 0 else ''})")  # fmt: skip
        if world.is_main:
            run.save_config(config)
            run.save_dataset({**data.info(), "samples": {k: len(v) for k, v in splits.items()}})
        logger.info(f"run      {run.path}")
    return s


def _checkpoint(s: _Session, state: _State) -> dict[str, Any]:
    """The whole state after an epoch: enough to continue bit for bit."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score,
        "best_weights": state.best_weights,
        "threads": torch.get_num_threads(),
        "model": s.model.state_dict(),
        "average": None if s.average is None else s.average.module.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "generator": s.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None,
    }


def _restore(s: _Session, checkpoint: dict[str, Any]) -> _State:
    try:
        s.model.load_state_dict(checkpoint["model"])
        if s.average is not None:
            if checkpoint.get("average") is None:
                raise RunError(
                    f"the checkpoint holds no weight average (the run trained with train.ema=0), "
                    f"but its config now sets train.ema={s.config.train.ema}; put 0 back to resume"
                )
            s.average.module.load_state_dict(checkpoint["average"])
        s.optimizer.load_state_dict(checkpoint["optimizer"])
        s.generator.set_state(checkpoint["generator"].cpu())
        torch.set_rng_state(checkpoint["torch_rng"].cpu())
        if checkpoint.get("cuda_rng") is not None and s.device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["cuda_rng"].cpu(), s.device)
        return _State(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            history=list(checkpoint["history"]),
            best_epoch=int(checkpoint["best_epoch"]),
            # "best_loss": checkpoints written before train.select, which always watched it
            best_score=float(checkpoint.get("best_score", checkpoint.get("best_loss"))),
            best_weights={k: v.to(s.device) for k, v in checkpoint["best_weights"].items()},
        )
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise RunError(
            f"checkpoint does not fit the run's config ({type(exc).__name__}: {exc})"
        ) from None


# ----- finishing ---------------------------------------------------------------------------
def _finish(s: _Session, run: Run, state: _State, interrupted: bool, started: float) -> TrainResult:
    """The best weights, scored once on the test split, saved with the summary."""
    model = s.evaluated
    model.load_state_dict(state.best_weights)  # type: ignore[arg-type]
    model.requires_grad_(True)  # the average was a frozen copy: the caller gets a model to train
    test = s.score("test")
    summary = _summary(s, state, test, started, interrupted)
    if s.world.is_main:
        run.save_model(model, s.normalization, s.data.classes, task=s.data.task)
        if linear.is_line(model, s.data):
            summary["line"] = linear.line_fit(model, s.normalization, s.splits["train"], run.path)
            logger.info(linear.describe(summary["line"]))
        run.save_summary(summary)
    score = (
        f"R² {test.r2:.4f}  RMSE {test.rmse:.4g}"
        if s.regression
        else f"accuracy {test.accuracy:.2%}"
    )
    logger.info(
        f"test     loss {test.loss:.4f}  {score}  (best epoch {state.best_epoch}, "
        f"{summary['train_seconds']:.1f}s training)"
    )
    return TrainResult(run=run, model=model, history=state.history, summary=summary)


def _check_task(config: Config, data: Dataset) -> None:
    """The config fits the data: the model's input checks, then the config's data checks."""
    input_features(data.image_shape, config.model.crop)  # a crop that leaves pixels
    check_align(data.image_shape, config.model.deskew, config.model.center)  # images to align
    check_against_data(config, data)  # views that fit, and the task's keys


def _check_finite(epoch: int, train_loss: float, val: Scores | None, lr: float) -> None:
    for name, value in (("train", train_loss), ("validation", val.loss if val else 0.0)):
        if not math.isfinite(value):
            raise TrainingError(
                f"training diverged: the {name} loss became {value} in epoch {epoch}; "
                f"lower train.lr (now {lr:g}) or check the inputs for extreme values"
            )


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """The fixed-width line printed for each epoch, from the record written to metrics.jsonl."""
    width = len(str(epochs))
    if record["train_accuracy"] is None:  # a regression: R² instead of accuracy
        val = (f"val loss {record['val_loss']:.4f} R² {record['val_r2']:7.4f}" if record["val_loss"] is not None
               else "val        -           -")  # fmt: skip
        return (f"epoch {record['epoch']:>{width}}/{epochs}  train loss {record['train_loss']:.4f}  {val}  "
                f"lr {record['lr']:.2e}  {record['epoch_seconds']:6.2f}s")  # fmt: skip
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


def _summary(
    s: _Session, state: _State, test: Scores, started: float, interrupted: bool
) -> dict[str, Any]:
    best = state.history[state.best_epoch - 1]
    train_seconds = sum(r["epoch_seconds"] for r in state.history)
    device = s.device
    regression = (
        {"test_r2": test.r2, "test_rmse": test.rmse, "test_mae": test.mae} if s.regression else {}
    )
    return {
        "task": s.data.task,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        **regression,
        "test_per_class_accuracy": dict(zip(s.data.classes, test.per_class_accuracy, strict=True)),
        "best_epoch": state.best_epoch,
        "best_val_loss": best["val_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "epochs_run": len(state.history),
        "epochs_planned": s.plan.epochs,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / len(state.history),
        "wall_seconds": time.perf_counter() - started,
        "parameters": s.model.num_parameters,
        "dataset": s.data.name,
        "data_origin": s.data.origin,
        "samples": {k: len(v) for k, v in s.splits.items()},
        "seed": s.config.train.seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "world_size": s.world.size,
        "backend": s.world.backend,
        "dry_run": s.config.train.dry_run,
        "interrupted": interrupted,
        "versions": {
            "mlplab": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "platform": platform.platform(),
    }
