"""The training loop: one function that reads top to bottom, its set-up and its finish.

``train(config)`` loads the data and builds the session (:mod:`.session`: the stratified
splits, the normalization fitted on the training split, the model, the optimizer), then for
each epoch: one pass over seeded, augmented device batches, a validation pass, a metrics
line, and a checkpoint of the whole state. It keeps the weights of the epoch
``train.select`` names (by default the lowest validation loss), scores them once on the test
split, and writes the run directory with its summary (:mod:`mlplab.run.summary`).

``resume(run_dir)`` picks a run up from its last checkpoint and ends exactly where the
uninterrupted run would have (same metrics, same weights, bit for bit on CPU). Ctrl-C
stops after the current step, keeps the best weights so far and says how to resume.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..config import Config, TrainConfig, check_against_data, selection_score
from ..data import Dataset, load_configured
from ..errors import ConfigError, RunError, TrainingError
from ..model import linear
from ..model.heads import expected_initial_loss
from ..model.mlp import MLP, check_align, excerpt, input_features, model_summary
from ..notebook.cards import card, run_facts, summary_notes
from ..notebook.live import LiveTraining
from ..notebook.svg import from_history
from ..progress import log_line, log_to_file, logger, reporting, show_epoch, training_bar
from ..run.card import refresh_card
from ..run.directory import CHECKPOINT_FORMAT, LOG, Run
from ..run.splits import run_dataset
from ..run.summary import run_summary
from ..trust.calibration import calibration_figures, fit_temperature, outputs_on
from ..trust.rejection import Rejector, describe
from . import distributed
from .device import isolated
from .distributed import World, lost_peer, shard
from .machine import resolve_precision, summary_record, warn_if_slow
from .metrics import Scores, evaluate_split
from .optim import lr_at, momentum_at, set_step
from .session import Session, build_session, training_step
from .threads import set_threads, step_flops
from .tracking import check_tracker, tracking

__all__ = ["Epoch", "TrainResult", "format_epoch", "resume", "train"]


@dataclass
class Epoch:
    """What an ``on_epoch`` hook sees after each epoch: the record, the model as validated
    (with train.ema, the weights' average), and a scorer that uses the run's own
    normalization and device (``epoch.score("test")``)."""

    record: dict[str, Any]
    model: MLP
    score: Callable[[str], Scores]

    def __repr__(self) -> str:
        """One short line (``print(epoch)``, ``on_epoch=print``): the record's numbers, never
        the model's weights or the tensors of the data the scorer holds."""
        r, shown = self.record, [f"epoch={self.record['epoch']}"]
        for key, form in _SHOWN:
            if key in r:
                shown.append(f"{key}={'None' if r[key] is None else format(r[key], form)}")
        return f"Epoch({', '.join(shown)})"


# what an Epoch shows of its record, and how (losses and R² as numbers, accuracies as %)
_SHOWN = (
    ("train_loss", ".4f"),
    ("train_accuracy", ".2%"),
    ("val_loss", ".4f"),
    ("val_accuracy", ".2%"),
    ("val_r2", ".4f"),
    ("epoch_seconds", ".2f"),
)


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

    def _repr_html_(self) -> str:
        """A notebook's card: the run's figures and curves (from memory; nothing is loaded)."""
        name, best = self.run.path.name, self.summary.get("best_epoch")
        return card(
            name,
            str(self.run.path),
            run_facts(self.summary, self.model.spec(), self.history),
            from_history(name, self.history, best),
            notes=summary_notes(self.summary),
        )


@dataclass
class _State:
    """What changes as training goes on; all of it goes into the checkpoint."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = math.inf  # of train.select; lower is better
    best_weights: dict[str, torch.Tensor] | None = None
    precision: dict[str, Any] | None = None  # train.precision=auto: what was measured, chosen

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
    progress: bool | None = None,
) -> TrainResult:
    """Train an MLP as ``config`` says and write its run directory.

    ``dataset`` skips loading: any :class:`Dataset` (the run records which, in
    ``dataset.json``). ``on_epoch(epoch)`` is called after every epoch with an
    :class:`Epoch`; returning True stops training early. ``progress``: the lines
    ``mlplab train`` prints (config, data, model, one per epoch, test) go to stderr, shown in
    a terminal, unless False or ``MLPLAB_PROGRESS=0``; with ``logging`` configured, through
    it (:func:`mlplab.progress.reporting`); in Jupyter, one live output with a bar and the
    curves instead (:mod:`mlplab.notebook`, docs/notebooks.md). ``train.log`` has them all.
    """
    config = (config or Config()).validate()
    with reporting(progress), _process_settings(config.train) as (device, world):
        check_tracker(config)  # an MLflow that is not installed: one line, before the data loads
        data = dataset or load_configured(config.data)
        _check_task(config, data)  # before anything is written
        warn_if_slow(config, data, device)
        set_threads(config, data, device)
        config, precision = resolve_precision(config, data, device, world=world)  # auto
        run = _create_run(config, world)
        try:
            with (
                run.exclusive(world.is_main),  # a --resume while it trains is refused
                _run_log(run, world, "w"),
                tracking(config, run, world.is_main) as tracker,
            ):
                session = build_session(config, data, device, world)
                _introduce(session, run)
                if precision is not None:
                    logger.info(f"precision auto: {precision['chosen']} ({precision['reason']})")
                hook = tracker.hook(on_epoch) if tracker else on_epoch  # track.to: per epoch
                return _fit(session, run, _State(precision=precision), hook)
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
    progress: bool | None = None,
) -> TrainResult:
    """Continue a run from its last checkpoint, in the same directory.

    ``epochs`` extends (or sets) the run's length in epochs; the schedule is then the one
    planned for that many. ``dataset`` is needed only for a run trained on an in-memory
    dataset; it must have the recorded name, image shape and classes. ``recipe_changes``:
    the other recipe options the caller was given (e.g. ``["--lr"]``): a resumed run keeps
    its recipe, so any is a ConfigError naming them. ``progress``: as for :func:`train`.
    """
    if recipe_changes:
        raise ConfigError(
            f"--resume continues a run with its own recipe; {', '.join(recipe_changes)} would "
            "change it (only --epochs N, to extend the run to N epochs, goes with --resume)"
        )
    run = Run.open(run_dir, need_model=False)
    with run.exclusive(int(os.environ.get("RANK", "0")) == 0):  # rank 0 writes the run
        return _resume(run, epochs, dataset, on_epoch, progress)


def _resume(
    run: Run,
    epochs: int | None,
    dataset: Dataset | None,
    on_epoch: EpochHook | None,
    progress: bool | None,
) -> TrainResult:
    config = run.config()
    checkpoint = run.load_checkpoint()
    _check_recipe(run, config, checkpoint)
    planned = config.train.epochs
    if epochs is not None and epochs != planned:
        config = config.override({"train.epochs": epochs}, source="--epochs")
    if checkpoint["epoch"] >= config.train.epochs:  # refused before anything is written
        asked = f" (--epochs {epochs} asked for)" if epochs is not None else ""
        raise RunError(
            f"run {run.path} has trained {checkpoint['epoch']} epochs of its {planned}{asked}; "
            f"pass --epochs N (more than {checkpoint['epoch']}) to extend it"
        )
    if config.train.epochs != planned and int(os.environ.get("RANK", "0")) == 0:
        run.save_config(config)  # a later resume continues the same plan
    with reporting(progress), _process_settings(config.train) as (device, world):
        data = run_dataset(run, dataset=dataset)
        _check_task(config, data)
        set_threads(config, data, device, checkpoint.get("threads"))
        with _run_log(run, world, "a"):
            logger.info(
                f"resume   {run.path} from epoch {checkpoint['epoch']} of {config.train.epochs}"
            )
            session = build_session(config, data, device, world)
            return _fit(session, run, _restore(session, checkpoint), on_epoch)


# ----- the loop ------------------------------------------------------------------------------
def _fit(s: Session, run: Run, state: _State, on_epoch: EpochHook | None) -> TrainResult:
    tc, started = s.config.train, time.perf_counter()
    resumed_elapsed = state.history[-1]["elapsed_seconds"] if state.history else 0.0
    interrupted = False
    bar = training_bar(  # a tqdm bar, or in a notebook its live output (mlplab.notebook)
        total=s.plan.total_steps, initial=state.step, epochs=s.plan.epochs, history=state.history
    )
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
                **({"val_r2": val.r2 if val else None} if s.regression_loss else {}),
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
            show_epoch(record, format_epoch(record, s.plan.epochs), bar)
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
        s.aligned = None  # the training images aligned once: not needed after the last epoch
    return _finish(s, run, state, interrupted, started)


def _train_epoch(s: Session, state: _State, bar: tqdm | LiveTraining) -> tuple[float, float | None]:
    """One pass over the training split; returns its mean loss and accuracy (None: regression)."""
    tc, world = s.config.train, s.world
    step = training_step(s)
    s.model.train()
    # Per-batch losses stay on the device (no sync per step, no float64: MPS has none);
    # they are summed once, on the host, at the end of the epoch.
    losses: list[torch.Tensor] = []
    hits: list[torch.Tensor] = []
    sizes: list[int] = []
    # counted from the configured end: a dry run's few epochs are augmented as the run's are
    augmented = state.epoch + 1 <= tc.epochs - s.config.augment.clean_epochs
    monitored = state.monitored()  # changes only between epochs
    for x, y in s.batches(augmented, max_batches=s.max_batches):
        lr, momentum = lr_at(tc, state.step, s.plan, monitored), momentum_at(tc, state.step, s.plan)
        set_step(s.optimizer, lr, momentum)
        batch = len(y)
        x, y = shard(x, world), shard(y, world)  # every rank drew the same global batch
        loss, out = step(x, y, batch)
        if s.average is not None:
            s.average.update(state.step)
        losses.append(loss.detach())  # no copy: the stack below is the epoch's one
        if not s.regression_loss:
            hits.append((out.argmax(1) == y).sum())
        sizes.append(len(y))
        state.step += 1
        bar.update()
    per_batch = torch.stack(losses).tolist() if losses else []  # one transfer, summed exactly
    total = math.fsum(loss * size for loss, size in zip(per_batch, sizes, strict=True))
    correct = float(torch.stack(hits).sum()) if hits else 0.0
    total, seen, correct = world.sum([total, sum(sizes), correct], s.device)
    return total / seen, None if s.regression_loss else correct / seen


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


def _introduce(s: Session, run: Run) -> None:
    """A fresh run's first log lines (what was built, and a fresh classifier's loss against
    the one expected) and its records of the config and the data."""
    config, data, train = s.config, s.data, s.splits["train"]
    # the keys of the data's task only (no loss=mse for a classifier: config.summary)
    logger.info("config   " + config.summary(data.task).replace("\n", "\n         "))
    c, h, w = data.image_shape
    what = (
        f"{c} features, regression"
        if data.task == "regression"
        else f"{c}x{h}x{w}, {len(data.classes)} classes"
    )
    sizes = " / ".join(f"{len(s.splits[k]):,} {k}" for k in ("train", "val", "test"))
    logger.info(f"data     {data.name}: {sizes}, {what}, from {data.origin}")
    if config.data.limit and config.data.limit < len(data.train):
        logger.info(
            f"limit    a seeded, class-stratified {config.data.limit:,} of the "
            f"{len(data.train):,} training samples "
            f"(data.limit, split_seed {config.data.split_seed})"
        )
    norm = s.normalization
    mean, std = (", ".join(f"{v:.4f}" for v in values) for values in (norm.mean, norm.std))
    logger.info(f"normalize {config.data.normalize}: mean {mean}, std {std} (training split)")
    logger.info(f"model    {s.model.extra_repr()}\n{model_summary(s.model)}")
    if data.task == "classification":  # a fresh classifier's loss is known in advance
        initial = evaluate_split(s.model, train[:1000], *s.affine(), max_batches=s.max_batches)
        expected = expected_initial_loss(config.model.head, s.model.classes)
        natural = f" = ln({s.model.classes})" if expected > 0 else ""
        logger.info(
            f"initial loss {initial.loss:.4f} (a fresh model should be near {expected:.4f}"
            f"{natural})"
        )
    if s.world.is_main:
        run.save_config(config)
        run.save_dataset({**data.info(), "samples": {k: len(v) for k, v in s.splits.items()}})
    logger.info(f"run      {run.path}")


def _checkpoint(s: Session, state: _State) -> dict[str, Any]:
    """The whole state after an epoch: enough to continue bit for bit."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "step": state.step,
        "recipe": recipe(s.config),  # what a resume checks config.yaml against
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score,
        "best_weights": state.best_weights,
        "threads": torch.get_num_threads(),
        "precision": state.precision,
        "model": s.model.state_dict(),
        "average": None if s.average is None else s.average.module.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "generator": s.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None,
    }


def _restore(s: Session, checkpoint: dict[str, Any]) -> _State:
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
            precision=checkpoint.get("precision"),
        )
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:300]  # load_state_dict's lines, on one line
        raise RunError(
            f"checkpoint does not fit the run's config ({type(exc).__name__}: {first})"
        ) from None


# What may differ between a run's config.yaml and its checkpoint: where and how the run
# trains, not what it learns (a run resumed on another machine, with its data elsewhere:
# the data's paths may differ, and run_dataset checks the data against dataset.json).
_NOT_RECIPE_SECTIONS = {"run", "track"}
_NOT_RECIPE = {
    *("train.epochs", "train.threads", "train.device", "train.dist_timeout"),
    *("train.eval_batch_size", "data.dataset", "data.test_dataset", "data.data_dir"),
    *("data.download", "data.mirror", "data.verify"),
}


def recipe(config: Config) -> dict[str, Any]:
    """The config's keys that decide what training learns (``section.key`` -> value): what a
    checkpoint records, so that a resume can tell it belongs to the run's config.yaml."""
    return {
        f"{section}.{key}": value
        for section, values in config.to_dict().items()
        if section not in _NOT_RECIPE_SECTIONS
        for key, value in values.items()
        if f"{section}.{key}" not in _NOT_RECIPE
    }


def _check_recipe(run: Run, config: Config, checkpoint: dict[str, Any]) -> None:
    """RunError when the checkpoint was written for another recipe than config.yaml's: the
    file was edited, or one of them was copied from another run. (Checkpoints written before
    2026-12-06 record none: nothing to compare.)"""
    recorded = checkpoint.get("recipe")
    if not isinstance(recorded, dict):
        return
    now = recipe(config)
    differ = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    if differ:
        shown = "; ".join(
            f"{k}: {excerpt(now.get(k))} in config.yaml, {excerpt(recorded.get(k))} in "
            "checkpoint.pt"
            for k in differ[:3]
        )
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        raise RunError(
            f"run {run.path}: its checkpoint.pt was written for another recipe than its "
            f"config.yaml ({shown}{more}): one of them was edited or copied from another run; "
            "put the run's own files back, or train a new run"
        )


def _percent(value: float | None) -> str:
    """A fraction as a percentage; "-" for None (nothing accepted, nothing to score)."""
    return "-" if value is None else f"{value:.2%}"


def _machine(s: Session) -> dict[str, Any]:
    """The CPU the run trained on, and torch's GEMM rates at its first layer when
    ``mlplab machine`` has measured them here (training.machine.summary_record)."""
    features = input_features(s.data.image_shape, s.config.model.crop)
    hidden = s.config.model.hidden
    outputs = 1 if s.data.task == "regression" else len(s.data.classes)
    batch = s.config.train.batch_size
    shape = (batch, features, hidden[0] if hidden else outputs)
    return summary_record(shape, step_flops(features, hidden, outputs, batch))


# ----- finishing ---------------------------------------------------------------------------
def _finish(s: Session, run: Run, state: _State, interrupted: bool, started: float) -> TrainResult:
    """The best weights, scored once on the test split, saved with the summary."""
    model = s.evaluated
    model.load_state_dict(state.best_weights)  # type: ignore[arg-type]
    model.requires_grad_(True)  # the average was a frozen copy: the caller gets a model to train
    test = s.score("test")
    temperature, calibrated = _calibration(s, model)
    rejector, rejection = _rejection(s, model)
    summary = run_summary(
        s.data,
        test,
        state.history,
        best_epoch=state.best_epoch,
        epochs_planned=s.plan.epochs,
        wall_seconds=time.perf_counter() - started,
        parameters=s.model.num_parameters,
        samples={k: len(v) for k, v in s.splits.items()},
        seed=s.config.train.seed,
        device=s.device,
        world_size=s.world.size,
        backend=s.world.backend,
        dry_run=s.config.train.dry_run,
        interrupted=interrupted,
        calibration=calibrated,
        rejection=rejection,
    )
    if s.world.is_main:
        run.save_model(
            model, s.normalization, s.data.classes, task=s.data.task, temperature=temperature
        )
        if rejector is not None:
            rejector.save(run)
        summary.update(_fitted_line(s, model, run))
        summary["machine"] = _machine(s)
        if state.precision is not None:  # train.precision=auto: the measurement and the choice
            summary["precision"] = state.precision
        run.save_summary(summary)
        note = refresh_card(run)  # README.md, the model card, from the files just written
        if note:
            logger.warning(note)
    score = (
        f"R² {test.r2:.4f}  RMSE {test.rmse:.4g}"
        if s.regression_loss
        else f"accuracy {test.accuracy:.2%}"
    )
    logger.info(
        f"test     loss {test.loss:.4f}  {score}  (best epoch {state.best_epoch}, "
        f"{summary['train_seconds']:.1f}s training)"
    )
    return TrainResult(run=run, model=model, history=state.history, summary=summary)


def _calibration(s: Session, model: MLP) -> tuple[float | None, dict[str, float] | None]:
    """The temperature fitted on the validation split (None without one) and the test split's
    calibration figures for the summary (:mod:`mlplab.trust.calibration`); a regression has
    neither."""
    if s.regression_loss:
        return None, None
    scale, offset = s.affine()
    batches = {"batch_size": s.config.train.eval_batch_size, "max_batches": s.max_batches}
    temperature = None
    if len(s.splits["val"]):
        val = outputs_on(model, s.splits["val"], scale, offset, **batches)
        temperature = fit_temperature(model.head, *val)
    outputs, labels = outputs_on(model, s.splits["test"], scale, offset, **batches)
    figures = calibration_figures(model.head, outputs, labels, temperature or 1.0)
    if temperature is not None:
        logger.info(
            f"calibrate temperature {temperature:.3f} (validation NLL): test ECE "
            f"{figures['ece_uncalibrated']:.2%} -> {figures['ece']:.2%}, NLL {figures['nll']:.4f}"
        )
    return temperature, figures


def _rejection(s: Session, model: MLP) -> tuple[Rejector | None, dict[str, float] | None]:
    """The rejection of unfamiliar inputs fitted on the training split with its threshold on
    the validation split (:mod:`mlplab.trust.rejection`), and the test split's rejected
    fraction and accuracy on the accepted; none for a regression or without a validation
    split."""
    if s.regression_loss or not len(s.splits["val"]):
        return None, None
    batches = {"batch_size": s.config.train.eval_batch_size, "max_batches": s.max_batches}
    rejector = Rejector.fit(
        model, s.normalization, s.splits["train"], s.splits["val"], s.config.train.accept, **batches
    )
    figures = rejector.figures(model, s.splits["test"], **batches)
    logger.info(
        f"{describe(rejector)}; test: {_percent(figures['rejected_fraction'])} rejected, "
        f"accuracy {_percent(figures['accepted_accuracy'])} on the accepted"
    )
    return rejector, figures


def _fitted_line(s: Session, model: MLP, run: Run) -> dict[str, Any]:
    """A straight-line model's line in the data's own units, next to least squares (and
    ``line.png`` in the run), for the summary; nothing for any other model."""
    if not linear.is_line(model, s.data):
        return {}
    line = linear.line_fit(model, s.normalization, s.splits["train"], run.path)
    logger.info(linear.describe(line))
    return {"line": line}


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
    head = f"epoch {record['epoch']:>{width}}/{epochs}  train loss {record['train_loss']:.4f}"
    tail = f"lr {record['lr']:.2e}  {record['epoch_seconds']:6.2f}s"
    validated = record["val_loss"] is not None
    if record["train_accuracy"] is None:  # a regression: R² instead of accuracy
        val = (
            f"val loss {record['val_loss']:.4f} R² {record['val_r2']:7.4f}"
            if validated
            else "val        -           -"
        )
        return f"{head}  {val}  {tail}"
    val = (
        f"val loss {record['val_loss']:.4f} acc {record['val_accuracy']:7.2%}"
        if validated
        else "val        -            -"
    )
    return f"{head} acc {record['train_accuracy']:7.2%}  {val}  {tail}"
