"""The same MLP on MNIST trained by mlplab and by its peers, in one process, on one machine.

Every contender trains the same recipe: 784-250-100-10 ReLU, Adam at lr 1e-3, batch 64,
no augmentation, inputs standardized with the training split's mean and std, on the fixed
54,000 / 6,000 stratified split of ``split_train_val(train, 0.1, seed=0)`` (a stratified
``--limit`` subset of it for quick looks). The contenders are the ways people usually
write that:

- ``tutorial``:  a DataLoader over a Dataset with per-sample ToTensor + Normalize
  (``tutorial_pipeline.py``'s pieces, no augmentation), with the tutorial's validation pass
  and best-weights copy after each epoch,
- ``plain``:     a plain PyTorch loop over ``DataLoader(TensorDataset, batch_size=64, shuffle=True)``,
- ``sklearn``:   scikit-learn's ``MLPClassifier`` (solver adam, ``alpha=0``), ``partial_fit`` per epoch,
- ``keras``:     Keras 3 on its torch backend, ``Sequential`` Dense 250/100/10, ``fit`` one epoch at a time,
- ``lightning``: PyTorch Lightning's ``Trainer`` on the CPU, no logger, checkpoints or progress bar,
  test accuracy from an ``on_train_epoch_end`` callback,
- ``skorch``:    ``NeuralNetClassifier`` on the same module, ``partial_fit`` per epoch, no internal split,
- ``mlplab``:    ``Config`` defaults (which are this recipe), ``train(config, dataset=...)``; its
  own validation pass and per-epoch checkpoint are part of its epoch.

One more row is not this recipe: ``mlplab-fast`` is mlplab's ``fast`` preset (24x24 crop, 576-384-10,
one-cycle Adam, batch 256, bfloat16 autocast where it measures faster, 3 epochs) on the same split, timed the same
way: the fastest way mlplab knows to reach 98% on this machine.

Each contender's clock starts before it splits and standardizes the uint8 dataset (read once,
outside every clock) and runs through its training; after every epoch it scores the test
split inside the clock (as ``time_to_accuracy.py`` does). Reported per contender, median over
``--repeats`` (each repeat runs the contenders in a rotated order, with seed = repeat index):
seconds per training epoch (the time between two epoch ends, less the test scoring), samples
per second, the test accuracy after each epoch, the time to 97.5% and to 98.0% test accuracy,
and the ratio of each time to mlplab's. All run on the CPU with the same thread count
(``torch.set_num_threads``, OMP/MKL/OpenBLAS through the environment and threadpoolctl).
A peer whose package is missing is skipped with the reason. Run it alone: on 2 cores any
other busy process distorts it.

    python benchmarks/peers.py --threads 2 --repeats 3 --json peers.json --plot peers.png
    python benchmarks/peers.py --limit 3000 --max-epochs 1 --repeats 1          # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys

# Thread counts and backends are read when the libraries load, so they are set before numpy,
# torch or keras are imported. Everything runs on the CPU: a GPU is hidden from every peer.
_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--threads", type=int, default=2)
_THREADS = max(1, _early.parse_known_args()[0].threads)
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = str(_THREADS)
os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 reads it at import
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("MLPLAB_PROGRESS", "0")

import copy  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_pipeline as tp  # noqa: E402
from mlplab import Config, Dataset, Epoch, Normalization, Split, load_dataset, train  # noqa: E402
from mlplab.data.splits import run_splits  # noqa: E402
from mlplab.training.machine import cpu_model as cpu_name  # noqa: E402

VAL_SIZE, SPLIT_SEED = 0.1, 0  # the fixed stratified hold-out every contender uses
HIDDEN = (250, 100)  # hidden layer widths
LR = 1e-3  # Adam's learning rate
BATCH = 64  # samples per optimizer step
EVAL_BATCH = 1000  # samples per forward pass when scoring the test split (the tutorial: 64)
TARGETS = (0.975, 0.98)  # test accuracies whose wall time is reported


# --------------------------------------------------------------------------------------------
# What every contender shares: the clock, the split, the standardized tensors, the module
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Task:
    """One contender's run: the data (uint8, read once) and the rules it trains under."""

    dataset: Dataset
    limit: int | None  # stratified subset of the official training split; None: all of it
    seed: int  # weights and shuffling (each framework seeds its own way)
    max_epochs: int
    stop_at: float | None  # stop after the first epoch at or above this test accuracy
    threads: int
    runs_dir: str  # mlplab's run folders (a temporary directory)


class Clock:
    """Wall time from construction; ``end_epoch`` scores the test split inside the clock and
    records it. It returns True when the contender should stop (max epochs or target)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.epochs: list[dict[str, float]] = []
        self.start = time.perf_counter()

    def end_epoch(self, score: Callable[[], float]) -> bool:
        scoring = time.perf_counter()
        accuracy = float(score())
        now = time.perf_counter()
        self.epochs.append(
            {
                "epoch": len(self.epochs) + 1,
                "test_accuracy": accuracy,
                "elapsed": now
                - self.start,  # clock start to this epoch's end, test scoring included
                "test_seconds": now - scoring,
            }
        )
        stop_at = self.task.stop_at
        return len(self.epochs) >= self.task.max_epochs or (
            stop_at is not None and accuracy >= stop_at
        )


def fixed_split(task: Task) -> tuple[Split, Split, Split, float, float]:
    """(train, val, test, mean, std): mlplab's own split of the run, and the training split's
    pixel mean and std in [0, 1] units (exact; the statistics mlplab standardizes with)."""
    train_split, val_split, test_split = run_splits(task.dataset, task.limit, VAL_SIZE, SPLIT_SEED)
    norm = Normalization.fit(train_split.images)
    return train_split, val_split, test_split, norm.mean[0], norm.std[0]


def standardized(split: Split, mean: float, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat float32 inputs ``(N, 784)`` standardized once, and int64 labels."""
    x = split.images.reshape(len(split), -1).float().div_(255).sub_(mean).div_(std)
    return x, split.labels


def tensor_loaders(task: Task) -> tuple[DataLoader, DataLoader]:
    """The plain PyTorch way: shuffled training batches and in-order test batches from
    ``TensorDataset``s of the standardized splits."""
    train_split, _, test_split, mean, std = fixed_split(task)
    train = TensorDataset(*standardized(train_split, mean, std))
    test = TensorDataset(*standardized(test_split, mean, std))
    return DataLoader(train, batch_size=BATCH, shuffle=True), DataLoader(
        test, batch_size=EVAL_BATCH
    )


class Net(nn.Sequential):
    """784-250-100-10 with ReLU, logits out: the module of plain, Lightning and skorch."""

    def __init__(self) -> None:
        super().__init__(
            nn.Linear(28 * 28, HIDDEN[0]),
            nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(),
            nn.Linear(HIDDEN[1], 10),
        )


def loader_accuracy(model: nn.Module, loader: DataLoader) -> float:
    """Accuracy of ``model`` over a DataLoader of (x, y), in eval mode without gradients."""
    was_training = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train(was_training)
    return correct / total


# --------------------------------------------------------------------------------------------
# The contenders: each trains until the clock says stop
# --------------------------------------------------------------------------------------------


def run_mlplab(task: Task, clock: Clock) -> None:
    """The recipe is mlplab's default config; spelled out so that a changed default cannot
    silently change the benchmark."""
    recipe: dict[str, Any] = {
        "model.hidden": list(HIDDEN),
        "model.activation": "relu",
        "train.optimizer": "adam",
        "train.lr": LR,
        "train.batch_size": BATCH,
        "train.scheduler": "none",
        "augment.rotation": 0.0,
        "augment.shift": 0,
        "augment.hflip": False,
        "data.normalize": "standard",
        "train.epochs": task.max_epochs,
    }
    _train_mlplab(Config().override(recipe), task, clock, "peers")


def run_mlplab_fast(task: Task, clock: Clock) -> None:
    """mlplab's own recipe for time to 98%, the ``fast`` preset (24x24 crop, 576-384-10, one-cycle Adam,
    batch 256, bf16 where faster, 3 epochs), on the same split: not the peers' recipe, the
    answer to "how soon can this machine reach 98%"."""
    _train_mlplab(Config.preset("fast"), task, clock, "peers-fast")


def _train_mlplab(config: Config, task: Task, clock: Clock, name: str) -> None:
    """Train ``config`` on the fixed split with the task's seed and threads, scoring the
    test split after every epoch."""
    overrides: dict[str, Any] = {
        "data.val_size": VAL_SIZE,
        "data.split_seed": SPLIT_SEED,
        "train.seed": task.seed,
        "train.threads": task.threads,
        "train.device": "cpu",
        "run.dir": task.runs_dir,
        "run.name": name,
    }
    if task.limit is not None:
        overrides["data.limit"] = task.limit

    def on_epoch(epoch: Epoch) -> bool:
        return clock.end_epoch(lambda: epoch.score("test").accuracy)

    train(config.override(overrides), dataset=task.dataset, on_epoch=on_epoch)


def run_tutorial(task: Task, clock: Clock) -> None:
    """The tutorial's per-sample pipeline (a PIL image per sample, ToTensor, Normalize) on the
    fixed split, without augmentation; its validation pass and best-weights copy included."""
    torch.manual_seed(task.seed)  # the DataLoader's shuffling draws from the global generator
    train_split, val_split, test_split, mean, std = fixed_split(task)
    transforms = tp.Compose(
        [tp.ToTensor(), tp.Normalize(mean=[torch.tensor(mean)], std=[torch.tensor(std)])]
    )

    def loader(split: Split, shuffle: bool = False) -> DataLoader:
        dataset = tp.MNISTDataset(split.images[:, 0], split.labels, transform=transforms)
        return DataLoader(dataset, shuffle=shuffle, batch_size=BATCH)

    train_iterator, valid_iterator = loader(train_split, shuffle=True), loader(val_split)
    test_iterator = loader(test_split)
    model = tp.MLP(tp.INPUT_DIM, tp.OUTPUT_DIM)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    device = torch.device("cpu")
    best_valid_loss, best_state = math.inf, None
    for _ in range(task.max_epochs):
        tp.train(model, train_iterator, optimizer, criterion, device)
        valid_loss, _, _ = tp.evaluate(model, valid_iterator, criterion, device)
        if valid_loss < best_valid_loss:
            best_valid_loss = valid_loss
            best_state = copy.deepcopy(model.state_dict())  # the notebook saves it to a file
        if clock.end_epoch(lambda: tp.evaluate(model, test_iterator, criterion, device)[2]):
            break
    del best_state


def run_plain(task: Task, clock: Clock) -> None:
    """The loop of pytorch/examples' mnist: TensorDataset, DataLoader, zero_grad/backward/step."""
    torch.manual_seed(task.seed)
    train_loader, test_loader = tensor_loaders(task)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(task.max_epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        if clock.end_epoch(lambda: loader_accuracy(model, test_loader)):
            break


def run_sklearn(task: Task, clock: Clock) -> None:
    """``MLPClassifier`` with ``alpha=0`` (its default L2 of 1e-4 would change the recipe);
    float32 inputs, which it keeps as float32."""
    from sklearn.neural_network import MLPClassifier

    train_split, _, test_split, mean, std = fixed_split(task)
    x, y = (t.numpy() for t in standardized(train_split, mean, std))
    x_test, y_test = (t.numpy() for t in standardized(test_split, mean, std))
    classifier = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        shuffle=True,
        random_state=task.seed,
    )
    classes = np.arange(10)
    for _ in range(task.max_epochs):
        classifier.partial_fit(x, y, classes=classes)  # one pass over the data
        if clock.end_epoch(lambda: classifier.score(x_test, y_test)):
            break


def run_keras(task: Task, clock: Clock) -> None:
    """Keras 3 on its torch backend; Adam's epsilon set to torch's 1e-8 (Keras: 1e-7); no
    training metrics compiled in (the other peers compute none either)."""
    import keras

    keras.utils.set_random_seed(task.seed)
    train_split, _, test_split, mean, std = fixed_split(task)
    x, y = (t.numpy() for t in standardized(train_split, mean, std))
    x_test, y_test = (t.numpy() for t in standardized(test_split, mean, std))
    model = keras.Sequential(
        [
            keras.Input(shape=(28 * 28,)),
            keras.layers.Dense(HIDDEN[0], activation="relu"),
            keras.layers.Dense(HIDDEN[1], activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LR, epsilon=1e-8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def score() -> float:
        logits = model.predict(x_test, batch_size=EVAL_BATCH, verbose=0)
        return float((logits.argmax(1) == y_test).mean())

    for _ in range(task.max_epochs):
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        if clock.end_epoch(score):
            break


def run_lightning(task: Task, clock: Clock) -> None:
    """One ``Trainer.fit`` for all epochs; a callback scores the test split after each."""
    pl = _lightning()
    torch.manual_seed(task.seed)
    train_loader, test_loader = tensor_loaders(task)

    class LitNet(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = Net()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=LR)

    class TestEachEpoch(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if clock.end_epoch(lambda: loader_accuracy(pl_module.net, test_loader)):
                trainer.should_stop = True

    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=task.max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[TestEachEpoch()],
    )
    trainer.fit(LitNet(), train_dataloaders=train_loader)


def run_skorch(task: Task, clock: Clock) -> None:
    """``NeuralNetClassifier`` on ``Net`` with cross-entropy on logits (skorch's default
    criterion, NLLLoss, expects log-probabilities); predictions in batches of EVAL_BATCH."""
    from skorch import NeuralNetClassifier

    torch.manual_seed(task.seed)
    train_split, _, test_split, mean, std = fixed_split(task)
    x, y = (t.numpy() for t in standardized(train_split, mean, std))
    x_test, y_test = (t.numpy() for t in standardized(test_split, mean, std))
    classifier = NeuralNetClassifier(
        Net,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH,
        max_epochs=1,  # per partial_fit call
        train_split=None,
        iterator_train__shuffle=True,
        iterator_valid__batch_size=EVAL_BATCH,
        device="cpu",
        verbose=0,
    )
    for _ in range(task.max_epochs):
        classifier.partial_fit(x, y)
        if clock.end_epoch(lambda: classifier.score(x_test, y_test)):
            break


def _lightning() -> Any:
    """The ``pytorch_lightning`` package, else the unified ``lightning.pytorch``."""
    try:
        return importlib.import_module("pytorch_lightning")
    except ImportError:
        return importlib.import_module("lightning.pytorch")


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    run: Callable[[Task, Clock], None]
    needs: tuple[str, ...]  # modules imported before any clock starts
    packages: tuple[str, ...]  # distributions whose versions are reported
    what: str


CONTENDERS = {
    c.name: c
    for c in (
        Contender("mlplab", run_mlplab, ("mlplab",), ("mlplab",), "Config defaults, train(on_epoch=...)"),
        Contender("mlplab-fast", run_mlplab_fast, ("mlplab",), ("mlplab",), "the `fast` preset (its own recipe), train(on_epoch=...)"),
        Contender("tutorial", run_tutorial, ("PIL",), ("pillow",), "per-sample Dataset + DataLoader (ToTensor, Normalize)"),
        Contender("plain", run_plain, (), (), "TensorDataset + DataLoader(shuffle=True), plain loop"),
        Contender("sklearn", run_sklearn, ("sklearn.neural_network",), ("scikit-learn",), "MLPClassifier(solver='adam').partial_fit"),
        Contender("keras", run_keras, ("keras",), ("keras",), "Keras 3, torch backend, Sequential.fit(epochs=1)"),
        Contender("lightning", run_lightning, ("pytorch_lightning|lightning.pytorch",), ("pytorch-lightning", "lightning"), "Trainer(accelerator='cpu'), callback scores test"),
        Contender("skorch", run_skorch, ("skorch",), ("skorch",), "NeuralNetClassifier.partial_fit"),
    )
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Running, summarizing and reporting
# --------------------------------------------------------------------------------------------


def missing(contender: Contender) -> str | None:
    """Import what a contender needs (outside every clock); the reason if it cannot."""
    for need in contender.needs:
        errors = []
        for module in need.split("|"):  # alternatives
            try:
                importlib.import_module(module)
                break
            except Exception as exc:  # an ImportError, or a broken install raising anything
                errors.append(f"{module}: {type(exc).__name__}: {exc}")
        else:
            return "; ".join(errors) + " (pip install -r benchmarks/requirements-peers.txt)"
    return None


def quiet_frameworks() -> None:
    """Silence the peers' banners and advice (the same for all, outside every clock); after
    the imports, which set their loggers' levels."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)`.*")


def run_one(contender: Contender, task: Task) -> dict[str, Any]:
    """One contender's run under a fresh clock; its per-epoch timeline."""
    torch.set_num_threads(task.threads)
    gc.collect()
    clock = Clock(task)
    contender.run(task, clock)
    done = time.perf_counter() - clock.start
    return {
        "seed": task.seed,
        "epochs": clock.epochs,
        "total_seconds": done,  # incl. what follows the last epoch (mlplab: saving the model)
        "threads_after": torch.get_num_threads(),
    }


def repeat_summary(run: dict[str, Any], n_train: int) -> dict[str, Any]:
    """Per-repeat figures from a timeline (``inf`` when a target was not reached)."""
    epochs = run["epochs"]
    starts = [0.0] + [e["elapsed"] for e in epochs[:-1]]
    train_seconds = [
        e["elapsed"] - s - e["test_seconds"] for e, s in zip(epochs, starts, strict=True)
    ]
    # Epoch 1 carries the set-up (split, tensors, model, framework); the later ones do not.
    steady = train_seconds[1:] or train_seconds
    out = {
        "epoch_seconds": statistics.median(steady),
        "first_epoch_seconds": epochs[0]["elapsed"],
        "test_seconds": statistics.median(e["test_seconds"] for e in epochs),
        "final_test_accuracy": epochs[-1]["test_accuracy"],
    }
    out["samples_per_second"] = n_train / out["epoch_seconds"]
    for target in TARGETS:
        reached = [e["elapsed"] for e in epochs if e["test_accuracy"] >= target]
        out[f"seconds_to_{target}"] = reached[0] if reached else math.inf
    return out


def summarize(runs: list[dict[str, Any]], n_train: int) -> dict[str, Any]:
    """Medians over the repeats, the spread of seconds per epoch, and the accuracy curve."""
    per = [repeat_summary(r, n_train) for r in runs]
    summary = {key: statistics.median(p[key] for p in per) for key in per[0]}
    summary["epoch_seconds_range"] = [
        min(p["epoch_seconds"] for p in per),
        max(p["epoch_seconds"] for p in per),
    ]
    summary["epoch_seconds_include_setup"] = all(len(r["epochs"]) == 1 for r in runs)
    longest = max(len(r["epochs"]) for r in runs)
    summary["curve"] = [
        {
            "epoch": k + 1,
            "elapsed": statistics.median(r["epochs"][k]["elapsed"] for r in runs if len(r["epochs"]) > k),
            "test_accuracy": statistics.median(r["epochs"][k]["test_accuracy"] for r in runs if len(r["epochs"]) > k),
        }
        for k in range(longest)
    ]  # fmt: skip
    return summary


def versions(names: list[str]) -> dict[str, str]:
    found = {}
    for name in ["python", "torch", "numpy", *names]:
        try:
            found[name] = platform.python_version() if name == "python" else metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_info(threads: int, names: list[str]) -> dict[str, Any]:
    blas = sorted(
        {f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads)".replace("  ", " ")
         for p in threadpool_info()}
    )  # fmt: skip
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "native_pools": blas,
        "platform": platform.platform(),
        "versions": versions(names),
    }


def fmt_seconds(value: float) -> str:
    return "not reached" if math.isinf(value) else f"{value:.1f}"


def fmt_ratio(value: float, reference: float | None) -> str:
    if reference is None or math.isinf(value) or math.isinf(reference) or reference <= 0:
        return "-"
    return f"{value / reference:.1f}x"


def table_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    reference = results.get("mlplab")
    rows = []
    for name, s in results.items():
        ref = lambda key: reference[key] if reference else None  # noqa: E731
        rows.append(
            [
                name,
                f"{s['epoch_seconds']:.2f}",
                f"{s['samples_per_second']:,.0f}",
                fmt_ratio(s["epoch_seconds"], ref("epoch_seconds")),
                f"{s['first_epoch_seconds']:.1f}",
                f"{s['final_test_accuracy']:.2%}",
                fmt_seconds(s[f"seconds_to_{TARGETS[0]}"]),
                fmt_ratio(s[f"seconds_to_{TARGETS[0]}"], ref(f"seconds_to_{TARGETS[0]}")),
                fmt_seconds(s[f"seconds_to_{TARGETS[1]}"]),
                fmt_ratio(s[f"seconds_to_{TARGETS[1]}"], ref(f"seconds_to_{TARGETS[1]}")),
            ]
        )
    return rows


HEADERS = ["contender", "s/epoch", "samples/s", "x mlplab", "epoch 1 s", "final acc",
           "s to 97.5%", "x mlplab", "s to 98.0%", "x mlplab"]  # fmt: skip


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown(
    results: dict[str, dict[str, Any]], machine: dict[str, Any], settings: dict[str, Any]
) -> str:
    """The README section's table: machine, settings, versions, then the results."""
    v = ", ".join(f"{k} {val}" for k, val in machine["versions"].items())
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['threads']} thread(s) for every "
        f"contender; {v}.",
        f"MNIST, {settings['n_train']:,} training samples, up to {settings['max_epochs']} epoch(s), "
        f"median of {settings['repeats']} repeat(s) in rotated order.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + " |",
        *("| " + " | ".join(r) + " |" for r in table_rows(results)),
        "",
        "Test accuracy after each epoch (median):",
        "",
    ]
    longest = max(len(s["curve"]) for s in results.values())
    lines.append("| contender | " + " | ".join(str(k + 1) for k in range(longest)) + " |")
    lines.append("| --- | " + " | ".join(["---:"] * longest) + " |")
    for name, s in results.items():
        accs = [f"{p['test_accuracy']:.2%}" for p in s["curve"]]
        lines.append(f"| {name} | " + " | ".join(accs + [""] * (longest - len(accs))) + " |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Any]], machine: dict[str, Any], path: Path) -> None:
    """Test accuracy against wall time, one line per contender (median over repeats)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in results.items():
        xs = [p["elapsed"] for p in s["curve"]]
        ys = [100 * p["test_accuracy"] for p in s["curve"]]
        ax.plot(xs, ys, marker="o", lw=2.5 if name == "mlplab" else 1.5, label=name)
    for target in TARGETS:
        ax.axhline(100 * target, color="grey", ls=":", lw=1)
        ax.annotate(f"{target:.1%}", (1, 100 * target), xycoords=("axes fraction", "data"),
                    ha="right", va="bottom", fontsize=8, color="grey")  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("wall time since the start of the contender (s, log scale)")
    ax.set_ylabel("test accuracy after each epoch (%)")
    low = min(100 * p["test_accuracy"] for s in results.values() for p in s["curve"])
    ax.set_ylim(max(low - 0.5, 0), 100)
    ax.set_title(
        f"MNIST 784-250-100-10, Adam 1e-3, batch 64: {machine['cpu']}, {machine['threads']} thread(s)",
        fontsize=9,
    )
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"),
                        help="folder with mnist/ ($MLPLAB_DATA_DIR, else the usual places)")  # fmt: skip
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS),
                        help="which to run")  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=2, help="torch/OMP/MKL/BLAS threads for every contender"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each contender (seed = repeat index), rotated order",
    )
    parser.add_argument("--max-epochs", type=int, default=10, help="epochs per run")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="stratified subset of N training samples (quick checks)",
    )
    parser.add_argument("--stop-at", type=float, default=None,
                        help="stop a run after the first epoch at or above this test accuracy (e.g. 0.98)")  # fmt: skip
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="one tiny run of each contender first, off the clock (one-time lazy imports and caches)")  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=None, help="write every run and the summary here"
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="write accuracy vs wall time here (PNG)"
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the README table here"
    )
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.max_epochs < 1:
        parser.error("--threads, --repeats and --max-epochs must be at least 1")

    torch.set_num_threads(args.threads)
    chosen, skipped = [], {}
    for name in args.contenders:
        reason = missing(CONTENDERS[name])
        if reason:
            skipped[name] = reason
            print(f"skipped {name}: {reason}", flush=True)
        else:
            chosen.append(CONTENDERS[name])
    if not chosen:
        sys.exit("no contender can run")
    quiet_frameworks()

    dataset = load_dataset("mnist", args.data_dir)  # read once, outside every clock
    n_train = len(run_splits(dataset, args.limit, VAL_SIZE, SPLIT_SEED)[0])
    # The first optimizer in a process imports torch._dynamo (~1 s): paid before any clock.
    torch.optim.Adam(nn.Linear(1, 1).parameters())
    packages = [
        *sorted({p for c in chosen for p in c.packages if p != "mlplab"}),
        "mlplab",
        "threadpoolctl",
        "matplotlib",
    ]
    settings = {"n_train": n_train, "n_test": len(dataset.test), "max_epochs": args.max_epochs,
                "repeats": args.repeats, "limit": args.limit, "stop_at": args.stop_at,
                "batch_size": BATCH, "lr": LR, "hidden": list(HIDDEN), "eval_batch": EVAL_BATCH,
                "contenders": {c.name: c.what for c in chosen}}  # fmt: skip

    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in chosen}
    with threadpool_limits(limits=args.threads), tempfile.TemporaryDirectory() as runs_dir:
        machine = machine_info(args.threads, packages)
        print(f"machine: {machine['cpu']}, {machine['cores']} cores, {args.threads} thread(s) "
              f"(native pools: {'; '.join(machine['native_pools'])})")  # fmt: skip
        print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
        print(f"MNIST: {n_train:,} training samples (fixed stratified split), {len(dataset.test):,} test; "
              f"up to {args.max_epochs} epoch(s), {args.repeats} repeat(s)", flush=True)  # fmt: skip

        if args.warmup:
            tiny = dataclasses.replace(dataset, train=dataset.train[:640], test=dataset.test[:200])
            for c in list(chosen):
                task = Task(tiny, None, 0, 1, None, args.threads, runs_dir)
                try:
                    run_one(c, task)
                except Exception as exc:
                    skipped[c.name] = f"failed in the warm-up: {type(exc).__name__}: {exc}"
                    print(f"skipped {c.name}: {skipped[c.name]}", flush=True)
                    chosen.remove(c)
                    runs.pop(c.name)

        for repeat in range(args.repeats):
            k = repeat % max(len(chosen), 1)
            order = chosen[k:] + chosen[:k]
            print(
                f"repeat {repeat + 1}/{args.repeats} (seed {repeat}): {' '.join(c.name for c in order)}",
                flush=True,
            )
            for c in order:
                if c.name in skipped:
                    continue
                task = Task(
                    dataset,
                    args.limit,
                    repeat,
                    args.max_epochs,
                    args.stop_at,
                    args.threads,
                    runs_dir,
                )
                try:
                    run = run_one(c, task)
                except Exception as exc:
                    skipped[c.name] = f"failed: {type(exc).__name__}: {exc}"
                    print(f"  {c.name:<9} {skipped[c.name]}", flush=True)
                    runs.pop(c.name, None)
                    continue
                runs[c.name].append(run)
                accs = " ".join(f"{e['test_accuracy']:.4f}" for e in run["epochs"])
                warn = (
                    ""
                    if run["threads_after"] == args.threads
                    else f"  (left torch at {run['threads_after']} threads)"
                )
                print(
                    f"  {c.name:<9} {run['epochs'][-1]['elapsed']:7.1f} s  test accuracy by epoch: {accs}{warn}",
                    flush=True,
                )

    results = {name: summarize(r, n_train) for name, r in runs.items() if r}
    if not results:
        sys.exit("no contender finished")
    order = ["mlplab", *[name for name in CONTENDERS if name != "mlplab"]]
    results = {name: results[name] for name in order if name in results}
    print()
    print(text_table(HEADERS, table_rows(results)))
    if any(s["epoch_seconds_include_setup"] for s in results.values()):
        print("s/epoch from a single epoch includes the set-up; run 2+ epochs for the steady rate")
    print("x mlplab: the contender's time over mlplab's (above 1: mlplab is faster)")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    md = markdown(results, machine, settings)
    print("\nREADME table:\n\n" + md)
    if args.markdown:
        args.markdown.write_text(md + "\n")
    if args.plot:
        try:
            plot(results, machine, args.plot)
            print(f"plot: {args.plot}")
        except ImportError as exc:
            print(f"no plot: {exc} (pip install matplotlib)")
    if args.json:

        def finite(value: Any) -> Any:  # JSON has no infinity: "not reached" is null
            if isinstance(value, float) and math.isinf(value):
                return None
            if isinstance(value, dict):
                return {k: finite(v) for k, v in value.items()}
            if isinstance(value, list):
                return [finite(v) for v in value]
            return value

        payload = {"machine": machine, "settings": settings, "targets": list(TARGETS),
                   "results": results, "runs": runs, "skipped": skipped}  # fmt: skip
        args.json.write_text(json.dumps(finite(payload), indent=2))
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
