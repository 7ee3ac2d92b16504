"""The set-up of one training call and its step, shared by ``train`` and ``lr_find``.

:func:`build_session` builds, from the config, the data and the device, everything the loop
works with: the run's splits on the device, the normalization fitted on the training split,
the model initialized from its seed, the optimizer, the step plan and the seeded generator
of shuffling and augmentation. :func:`training_step` is the one optimizer step on a batch.
``lr_find`` calls both, so the range test measures the very model and step training takes.

One seed gives two independent streams (:func:`seed_streams`): the weights (and dropout)
draw from one, the shuffling and augmentation from the other, so a change of model leaves
the batches as they were and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import Config
from ..data import Dataset, Normalization, Split
from ..data.splits import configured_splits
from ..files.limits import memory_budget
from ..model.heads import loss_fn
from ..model.mlp import MLP, input_features
from . import distributed
from .augment import Augmentation
from .batches import iterate_batches
from .direct import direct_step
from .distributed import World
from .metrics import Scores, evaluate_split
from .optim import Plan, WeightAverage, make_optimizer, stepper

__all__ = [
    "DRY_RUN_BATCHES",
    "DRY_RUN_EPOCHS",
    "Session",
    "Step",
    "aligns_once",
    "build_session",
    "seed_streams",
    "training_step",
]

DRY_RUN_EPOCHS, DRY_RUN_BATCHES = 2, 3  # --dry-run: a few batches of every epoch and split
# images aligned at once by Session.aligned_train. At 256 their temporaries come back from
# the heap chunk after chunk; from 512 glibc maps and unmaps them anew each time (fresh
# processes, 2-core Zen 3: ~23,000 page faults and 0.41-0.47 s for MNIST at 256, 77,000-
# 134,000 and 0.46-0.66 s at 512, all but ~21,000 of them for the kept copy itself)
ALIGN_CHUNK = 256

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]  # normalized inputs, targets
Step = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass(kw_only=True)
class Session:
    """Everything a training call works with, built once by :func:`build_session`."""

    config: Config
    data: Dataset
    device: torch.device
    splits: dict[str, Split]  # train, val, test: on the device, uint8
    normalization: Normalization  # fitted on the training split
    model: MLP
    optimizer: torch.optim.Optimizer
    plan: Plan  # epochs and steps per epoch (fewer of both on a dry run)
    generator: torch.Generator  # shuffling and augmentation
    max_batches: int | None  # per pass over a split: a few on a dry run, else all
    world: World = field(default_factory=World)  # this process among the data-parallel ranks
    trained: torch.nn.Module | None = None  # the model as several ranks train it (DDP)
    average: WeightAverage | None = None  # train.ema > 0: the average of the weights
    # the training images are aligned once, not in every batch (:func:`aligns_once`, and the
    # aligned copy fits mlplab's memory budget); decided once, when the session is built
    aligns_once: bool = False
    aligned: Split | None = None  # that copy, made on first use (aligned_train)

    @property
    def evaluated(self) -> MLP:
        """The model that is validated, kept and saved: the weights' average (train.ema),
        or the model as trained."""
        if self.average is None:
            return self.model
        return self.average.module  # type: ignore[return-value]

    @property
    def regression_loss(self) -> str | None:
        """The regression's loss (train.loss: mse or mae), or None for a classification."""
        return self.config.train.loss if self.data.task == "regression" else None

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalization's (scale, offset) on the device: ``x = pixel * scale + offset``."""
        return self.normalization.affine(self.device)

    def batches(self, augmented: bool = True, *, max_batches: int | None = None) -> Batches:
        """One pass over the training split in a fresh seeded order, with the config's
        augmentation when ``augmented``."""
        if self.aligns_once:  # normalized, aligned and cropped: batches are slices of it
            split, (scale, offset), augmentation = self.aligned_train(), (None, None), None
        else:
            split, (scale, offset) = self.splits["train"], self.affine()
            augmentation = Augmentation.of(self.config.augment) if augmented else None
        return iterate_batches(
            split,
            self.config.train.batch_size,
            scale,
            offset,
            generator=self.generator,
            augmentation=augmentation,
            max_batches=max_batches,
        )

    def aligned_train(self) -> Split:
        """The training split as the model's first layer sees it: normalized, aligned and
        cropped (:meth:`mlplab.model.mlp.MLP.prepare`), float32 on the device. Made on first
        use, so inside the first epoch and its time, and kept for the run (4 bytes a kept
        pixel: 86 MB for MNIST's 54,000 training images cropped to 20x20)."""
        if self.aligned is None:
            train = self.splits["train"]
            kept = self.model.cropped(train.images[:0]).shape  # (0, C, H - 2 crop, W - 2 crop)
            images = torch.empty((len(train), *kept[1:]), device=self.device)
            scale, offset = self.affine()
            start = 0
            with torch.no_grad():
                for x, _ in iterate_batches(train, ALIGN_CHUNK, scale, offset):
                    images[start : start + len(x)] = self.model.prepare(x)
                    start += len(x)
            self.aligned = Split(images, train.labels)
        return self.aligned

    def score(self, split: str) -> Scores:
        """The evaluated model on a split: never augmented; in eval mode; a few batches on
        a dry run."""
        scale, offset = self.affine()
        return evaluate_split(
            self.evaluated,
            self.splits[split],
            scale,
            offset,
            batch_size=self.config.train.eval_batch_size,
            max_batches=self.max_batches,
            loss=self.regression_loss,
        )


def build_session(
    config: Config, data: Dataset, device: torch.device, world: World | None = None
) -> Session:
    """The run's splits (on ``device``), normalization, model, optimizer, plan and
    generator for ``config`` on ``data``; ``world`` places this process among the ranks.

    Call it inside :func:`mlplab.training.device.isolated`: it seeds torch's global RNG."""
    tc = config.train
    world = world or World()
    model_seed, data_seed = seed_streams(tc.seed)
    train, val, test = configured_splits(data, config.data)
    normalization = Normalization.fit(train.images, config.data.normalize)
    torch.manual_seed(model_seed)  # the caller's global RNG is put back by `isolated`
    outputs = 1 if data.task == "regression" else len(data.classes)
    model = MLP.from_config(config.model, data.image_shape, outputs).to(device)
    max_batches = DRY_RUN_BATCHES if tc.dry_run else None
    # the aligned copy: float32, the kept pixels of every training image (else, per batch)
    kept = input_features(data.image_shape, config.model.crop)
    once = aligns_once(config) and 4 * len(train) * kept <= memory_budget()
    steps = min(math.ceil(len(train) / tc.batch_size), max_batches or math.inf)
    epochs = min(tc.epochs, DRY_RUN_EPOCHS) if tc.dry_run else tc.epochs
    return Session(
        config=config,
        data=data,
        device=device,
        splits={"train": train.to(device), "val": val.to(device), "test": test.to(device)},
        normalization=normalization,
        model=model,
        optimizer=make_optimizer(model.parameters(), tc, device),
        plan=Plan(epochs, steps),
        generator=torch.Generator(device).manual_seed(data_seed),
        max_batches=max_batches,
        world=world,
        trained=distributed.wrap(model, device, world),
        average=WeightAverage(model, tc.ema) if tc.ema else None,
        aligns_once=once,
    )


def aligns_once(config: Config) -> bool:
    """Whether training aligns its images once, before its first step, rather than in every
    batch: the model aligns them (``model.deskew``, ``model.center``) and training never
    augments them, so each image's alignment is the same every epoch (and, as a session
    decides, the aligned copy fits mlplab's memory budget). The batches are then
    slices of :meth:`Session.aligned_train` (aligned and cropped) and the step runs the
    model on them with ``prepared=True``: the same computation, each image aligned once a
    run instead of once an epoch (MNIST's 54,000 images: 0.2-0.4 s of a 2-core CPU's time
    an epoch)."""
    model = config.model
    return (model.deskew or model.center) and not Augmentation.of(config.augment)


def seed_streams(seed: int) -> tuple[int, int]:
    """Two independent seeds from one: (weights and dropout, shuffling and augmentation)."""
    children = np.random.SeedSequence(seed).spawn(2)
    model, data = (int(c.generate_state(1, np.uint64)[0] >> 1) for c in children)
    return model, data


def training_step(s: Session, *, written_out: bool = True) -> Step:
    """The one training step of ``train`` and of ``lr_find``: ``step(x, y, batch)`` on a
    normalized, augmented batch runs the forward pass under the run's precision
    (``train.precision=bf16``: autocast), the loss (with ``train.label_smoothing``) in
    float32, the L1 term, backward and the optimizer's update, and returns the batch's
    loss (without the L1 term) and the model's outputs.

    For the plain ReLU MLP on the CPU (one process, no dropout, L1, per-batch alignment, frozen
    parameters or hooks; :func:`.direct.not_covered` has the list) the step is
    :mod:`.direct`'s, the same computation with its backward pass written out (agreeing
    with autograd's to rounding, tests/training/test_direct.py); anything else, or
    ``written_out=False`` (benchmarks/direct_step.py compares the two), is autograd's.

    The caller sets the step's rate beforehand (:func:`mlplab.training.optim.set_step`).
    With several ranks ``x`` and ``y`` are this rank's share of a global batch of ``batch``
    samples. Make one per pass: the optimizer's shortcut keeps the state tensors it found
    (:func:`mlplab.training.optim.stepper`).
    """
    update = stepper(s.optimizer)
    direct = direct_step(s, update) if written_out else None
    if direct is not None:  # the plain ReLU MLP on the CPU: its backward pass written out
        return direct
    tc, world, model = s.config.train, s.world, s.model
    forward = s.trained if s.trained is not None else model
    criterion = loss_fn(model.head, s.regression_loss, tc.label_smoothing)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    parameters = list(model.parameters())
    bf16 = tc.precision == "bf16"
    prepared = s.aligns_once  # the batches are aligned and cropped already

    def step(x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x, prepared=prepared)
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
