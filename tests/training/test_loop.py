"""The training loop: it learns, it is reproducible, it keeps the best weights, it fails clearly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mlplab import Config, Dataset, Epoch, Run, Split, evaluate, train
from mlplab.errors import ConfigError, TrainingError
from mlplab.training.device import select_device
from mlplab.training.loop import format_epoch
from mlplab.training.metrics import evaluate_split

METRIC_KEYS = {
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "epoch_seconds",
    "elapsed_seconds",
}


def test_loss_falls_and_run_directory_is_complete(tiny, quick_config: Config) -> None:
    result = train(quick_config, dataset=tiny)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0] * 0.5
    assert result.summary["test_accuracy"] > 0.9  # the synthetic classes are easy
    files = sorted(p.name for p in result.run_dir.iterdir())
    assert files == [
        "README.md",  # the model card (mlplab.run.card); sorted() puts capitals first
        "checkpoint.pt",
        "config.yaml",
        "dataset.json",
        "metrics.jsonl",
        "model.json",
        "model.safetensors",
        "rejection.safetensors",  # the rejection of unfamiliar inputs (it has a val split)
        "summary.json",
        "train.log",
    ]
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert all(set(json.loads(line)) >= METRIC_KEYS for line in lines)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    for key in (
        "test_accuracy",
        "test_loss",
        "best_epoch",
        "train_seconds",
        "parameters",
        "versions",
        "device",
        "threads",
    ):
        assert key in summary
    assert summary["parameters"] == 64 * 16 + 16 + 16 * 4 + 4
    assert Config.load(result.run_dir / "config.yaml") == quick_config


def test_same_seed_same_metrics(tiny, quick_config: Config) -> None:
    config = quick_config.override(
        {"augment.rotation": 10, "augment.shift": 1, "model.dropout": 0.2}
    )
    a, b = train(config, dataset=tiny), train(config, dataset=tiny)
    strip = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert a.summary["test_loss"] == b.summary["test_loss"]
    c = train(config.override({"train.seed": 1}), dataset=tiny)
    assert strip(c.history) != strip(a.history)


def test_best_validation_weights_are_kept(tiny, quick_config: Config) -> None:
    epochs_seen = []

    def sabotage(epoch: Epoch) -> None:
        epochs_seen.append(epoch.record["epoch"])
        if epoch.record["epoch"] == 3:  # ruin the last epoch's weights: they must not be kept
            with torch.no_grad():
                for p in epoch.model.parameters():
                    p.mul_(0)

    result = train(quick_config, dataset=tiny, on_epoch=sabotage)
    assert epochs_seen == [1, 2, 3]
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.summary["best_epoch"] == best["epoch"]
    assert result.summary["test_accuracy"] > 0.9
    model, _, _ = Run.open(result.run_dir).load_model()
    assert any(float(p.detach().abs().sum()) > 0 for p in model.parameters())


def test_on_epoch_can_stop_early(tiny, quick_config: Config) -> None:
    result = train(quick_config, dataset=tiny, on_epoch=lambda e: e.record["epoch"] == 2)
    assert len(result.history) == 2 and result.summary["epochs_run"] == 2


def test_on_epoch_print_is_one_short_line(tiny, quick_config: Config, capsys) -> None:
    """`train(config, on_epoch=print)` prints one line per epoch: its numbers, no tensors
    (an Epoch holds the model and a scorer over the data; printing showed ~400 lines)."""
    result = train(quick_config, dataset=tiny, on_epoch=print)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(result.history) == 3
    r = result.history[0]
    assert lines[0] == (
        f"Epoch(epoch=1, train_loss={r['train_loss']:.4f}, train_accuracy="
        f"{r['train_accuracy']:.2%}, val_loss={r['val_loss']:.4f}, val_accuracy="
        f"{r['val_accuracy']:.2%}, epoch_seconds={r['epoch_seconds']:.2f})"
    )
    regression = {"epoch": 7, "train_loss": 0.5, "train_accuracy": None, "val_loss": None,
                  "val_accuracy": None, "val_r2": 0.91234, "lr": 0.1, "epoch_seconds": 1.5}  # fmt: skip
    shown = repr(Epoch(regression, None, None))  # type: ignore[arg-type]
    assert shown == (
        "Epoch(epoch=7, train_loss=0.5000, train_accuracy=None, val_loss=None, "
        "val_accuracy=None, val_r2=0.9123, epoch_seconds=1.50)"
    )
    assert str(Epoch(regression, None, None)) == shown  # type: ignore[arg-type]


def test_the_config_line_holds_the_keys_of_the_data_task(tiny, quick_config: Config) -> None:
    """A classifier's config line said loss=mse (a regression key): each run's train.log
    shows only the keys of its data's task, the regression's chosen by the dataset even with
    model.task=auto and no data.target."""
    sizes = Dataset(
        "sizes",
        Split(torch.rand(64, 1, 4, 4), torch.rand(64)),
        Split(torch.rand(16, 1, 4, 4), torch.rand(16)),
        (),
        "memory",
        task="regression",
    )
    for dataset, shown, left_out in (
        (tiny, ["head=logits", "label_smoothing=0.0", "accept=0.98", "tta=[]"], ["loss=", "target="]),
        (sizes, ["loss=mse", "target=None"], ["head=", "label_smoothing=", "accept=", "tta="]),
    ):  # fmt: skip
        result = train(quick_config.override({"train.epochs": 1}), dataset=dataset)
        log = (result.run_dir / "train.log").read_text().split("\ndata     ")[0]
        assert log.startswith("config   data: ")
        words = log.split()
        assert all(word in words for word in shown), log
        assert not any(word.startswith(tuple(left_out)) for word in words), log


def test_interrupt_keeps_a_usable_run(tiny, quick_config: Config) -> None:
    def interrupt(epoch: Epoch) -> None:
        if epoch.record["epoch"] == 2:
            raise KeyboardInterrupt

    result = train(quick_config, dataset=tiny, on_epoch=interrupt)
    assert result.summary["interrupted"] is True and len(result.history) == 2
    assert Run.open(result.run_dir).load_model()[0] is not None


def test_runs_never_overwrite(tiny, quick_config: Config) -> None:
    config = quick_config.override({"train.epochs": 1})
    dirs = {train(config, dataset=tiny).run_dir for _ in range(3)}
    assert len(dirs) == 3


def test_dry_run(tiny, quick_config: Config) -> None:
    result = train(quick_config.override({"train.dry_run": True, "train.epochs": 10}), dataset=tiny)
    assert len(result.history) == 2 and result.summary["dry_run"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"train.optimizer": "sgd", "train.momentum": 0.9, "train.nesterov": True},
        {"train.optimizer": "adamw", "train.weight_decay": 0.01},
        {"train.optimizer": "rmsprop", "train.lr": 0.003},
        {"train.scheduler": "step", "train.step_size": 1, "train.gamma": 0.5},
        {"train.scheduler": "cosine"},
        {"train.scheduler": "onecycle"},
        {"train.scheduler": "onecycle", "train.cycle_momentum": True},
        {"train.l1": 1e-4},
        {"train.weight_decay": 0.05},
        {"model.head": "softmax"},
        {"model.activation": "gelu"},
        {"model.activation": "tanh"},
        {"model.init": "kaiming"},
        {"model.dropout": 0.1},
        {"augment.rotation": 10.0},
        {"augment.shift": 1},
        {"data.normalize": "symmetric"},
        {"train.batch_size": 48},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_every_option_trains_and_changes_the_run(
    tiny, quick_config: Config, overrides: dict, baseline_history: list
) -> None:
    """Each option is really used: the run learns, and differs from the run without it."""
    result = train(quick_config.override(overrides), dataset=tiny)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert _without_times(result.history) != baseline_history


def test_log_softmax_head_trains_exactly_like_logits(tiny, quick_config: Config) -> None:
    """log-softmax + NLL is cross-entropy on logits: the same run, with log-probabilities out."""
    plain = train(quick_config, dataset=tiny)
    logs = train(quick_config.override({"model.head": "log_softmax"}), dataset=tiny)
    for a, b in zip(plain.history, logs.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    out = logs.model(tiny.test.images[:5].float())
    torch.testing.assert_close(out.exp().sum(1), torch.ones(5))


def test_plateau_drops_the_rate_as_torch_does(tiny, quick_config: Config) -> None:
    config = quick_config.override(
        {
            "train.scheduler": "plateau",
            "train.patience": 0,
            "train.gamma": 0.5,
            "train.epochs": 8,
            "train.lr": 0.05,
        }
    )
    history = train(config, dataset=tiny).history
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05), factor=0.5, patience=0
    )
    expected = []
    for record in history:
        expected.append(reference.get_last_lr()[0])
        reference.step(record["val_loss"])
    assert [r["lr"] for r in history] == pytest.approx(expected)
    assert len(set(expected)) > 1, "the settings must make the rate drop at least once"


@pytest.fixture(scope="module")
def baseline_history() -> list:
    import tempfile

    from conftest import make_dataset

    with tempfile.TemporaryDirectory() as runs:
        config = Config().override(
            {
                "model.hidden": [16],
                "train.epochs": 3,
                "train.batch_size": 32,
                "train.lr": 0.01,
                "train.eval_batch_size": 100,
                "run.dir": runs,
            }
        )
        return _without_times(train(config, dataset=make_dataset()).history)


def _without_times(history: list) -> list:
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in history]


def test_step_schedule_lowers_the_rate(tiny, quick_config: Config) -> None:
    result = train(
        quick_config.override(
            {"train.scheduler": "step", "train.step_size": 1, "train.gamma": 0.5}
        ),
        dataset=tiny,
    )
    assert [r["lr"] for r in result.history] == pytest.approx([0.01, 0.005, 0.0025])


def test_l1_shrinks_weights(tiny, quick_config: Config) -> None:
    plain = train(quick_config, dataset=tiny).model
    sparse = train(quick_config.override({"train.l1": 1e-2}), dataset=tiny).model

    def norm(model: torch.nn.Module) -> float:
        return sum(
            float(p.detach().abs().sum())
            for n, p in model.named_parameters()
            if n.endswith("weight")
        )

    assert norm(sparse) < 0.8 * norm(plain)


def test_no_validation_split(tiny, quick_config: Config) -> None:
    result = train(quick_config.override({"data.val_size": 0}), dataset=tiny)
    assert result.history[0]["val_loss"] is None and result.summary["best_val_loss"] is None
    assert "val        -" in format_epoch(result.history[0], 3)


def test_divergence_is_explained(tiny, quick_config: Config) -> None:
    config = quick_config.override({"train.optimizer": "sgd", "train.lr": 1e12})
    with pytest.raises(
        TrainingError,
        match=r"training diverged: the train loss became (nan|inf) in epoch 1; "
        r"lower train.lr \(now 1e\+12\)",
    ):
        train(config, dataset=tiny)


def test_missing_device() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(
        TrainingError,
        match="train.device='cuda' but this torch .* sees 0 CUDA device\\(s\\); use --device cpu",
    ):
        select_device("cuda")
    assert select_device("auto").type in ("cpu", "mps")


def test_epoch_line() -> None:
    record = {
        "epoch": 3,
        "train_loss": 0.12341,
        "train_accuracy": 0.9612,
        "val_loss": 0.0812,
        "val_accuracy": 0.975,
        "lr": 0.001,
        "epoch_seconds": 1.234,
    }
    assert format_epoch(record, 10) == (
        "epoch  3/10  train loss 0.1234 acc  96.12%  "
        "val loss 0.0812 acc  97.50%  lr 1.00e-03    1.23s"
    )


def test_train_on_a_slice_with_digits(tmp_path: Path) -> None:
    """The bundled dataset end to end, through the public API only."""
    config = Config().override(
        {
            "data.dataset": "digits",
            "data.limit": 600,
            "model.hidden": [32],
            "train.epochs": 5,
            "train.lr": 0.01,
            "run.dir": str(tmp_path / "runs"),
        }
    )
    result = train(config)
    assert result.summary["samples"] == {"train": 540, "val": 60, "test": 450}
    assert result.summary["test_accuracy"] > 0.8
    assert math.isfinite(result.summary["test_loss"])


def test_run_files_have_ordinary_permissions(tiny, quick_config: Config) -> None:
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    run_dir = train(quick_config.override({"train.epochs": 1}), dataset=tiny).run_dir
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
    assert not list(run_dir.glob(".*")), "no temporary file is left behind"


def test_progress_bar_when_asked(tiny, quick_config: Config, capsys, monkeypatch) -> None:
    """On a terminal (forced here with MLPLAB_PROGRESS=1) a bar with rate and ETA runs on stderr."""
    monkeypatch.setenv("MLPLAB_PROGRESS", "1")
    train(quick_config, dataset=tiny)
    err = capsys.readouterr().err
    assert (
        "train:" in err and "step/s" in err and "45/45" in err
    )  # 3 epochs x ceil(461 / 32) batches


def test_no_progress_bar_by_default_off_a_terminal(tiny, quick_config: Config, capsys) -> None:
    train(quick_config, dataset=tiny)
    assert capsys.readouterr().err == ""


def test_test_split_is_scored_once_at_the_end(tiny, quick_config: Config, monkeypatch) -> None:
    import sys

    sizes = []
    real = sys.modules["mlplab.training.metrics"].evaluate_split

    def spy(model, split, *args, **kwargs):
        sizes.append(len(split))
        return real(model, split, *args, **kwargs)

    # the loop checks a fresh model's loss; the session scores validation and test
    for module in ("mlplab.training.loop", "mlplab.training.session"):
        monkeypatch.setattr(sys.modules[module], "evaluate_split", spy)
    train(quick_config, dataset=tiny)
    # the initial-loss check (461 training samples), 3 validation passes (51), one test pass (128)
    assert sizes == [461, 51, 51, 51, 128]


def test_normalization_comes_from_the_training_split_only(tiny, quick_config: Config) -> None:
    from mlplab import Normalization, split_train_val

    result = train(quick_config, dataset=tiny)
    fitted = json.loads((result.run_dir / "model.json").read_text())["normalization"]
    train_part, _ = split_train_val(tiny.train, 0.1, seed=0)
    assert fitted == Normalization.fit(train_part.images).to_dict()
    assert fitted != Normalization.fit(tiny.train.images).to_dict()  # the held-out part differs


class _NoFloat64(torch.overrides.TorchFunctionMode):
    """Fails any torch call that makes a float64 tensor: the MPS backend has no float64."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                raise AssertionError(f"{func} made a float64 tensor")
        return out


def test_training_steps_and_evaluation_make_no_float64(tiny, quick_config, monkeypatch) -> None:
    """Apple GPUs (MPS) have no float64: nothing in the epoch loop or the scoring may use it."""
    import sys

    loop, session = sys.modules["mlplab.training.loop"], sys.modules["mlplab.training.session"]
    for module, name in (
        (loop, "_train_epoch"),
        (loop, "evaluate_split"),
        (session, "evaluate_split"),
    ):
        real = getattr(module, name)

        def guarded(*args, _real=real, **kwargs):
            with _NoFloat64():
                return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, guarded)
    # The rotation maps are built once per image size on the host, in float64 so that their
    # rounding matches PIL's; only their int32 indices go to the device. Build them first.
    from mlplab.training.augment import _rotation_maps

    _rotation_maps(8, 8, 5.0, 0, torch.device("cpu"))
    result = train(quick_config.override({"train.l1": 1e-4, "augment.rotation": 5.0}), dataset=tiny)
    assert result.summary["test_accuracy"] > 0.9


def test_train_leaves_the_callers_threads_and_global_rng_alone(tiny, quick_config) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(quick_config.override({"train.threads": 2, "model.dropout": 0.2}), dataset=tiny)
    assert torch.get_num_threads() == 1
    assert torch.equal(torch.rand(3), expected)


def test_non_finite_validation_loss_is_one_clear_error(tiny, quick_config, monkeypatch) -> None:
    import sys

    from mlplab.training.metrics import Scores

    session = sys.modules["mlplab.training.session"]  # where validation is scored
    real = session.evaluate_split

    def nan_on_validation(model, split, *args, **kwargs):
        scores = real(model, split, *args, **kwargs)
        return Scores(float("nan"), scores.accuracy, scores.samples) if len(split) == 51 else scores

    monkeypatch.setattr(session, "evaluate_split", nan_on_validation)
    with pytest.raises(
        TrainingError, match=r"the validation loss became nan in epoch 1; lower train.lr"
    ):
        train(quick_config, dataset=tiny)
    assert not list(Path(quick_config.run.dir).glob("*")), "no run directory is left behind"


def test_bf16_autocast_trains(tiny, quick_config) -> None:
    result = train(quick_config.override({"train.precision": "bf16"}), dataset=tiny)
    assert result.summary["test_accuracy"] > 0.9


def test_label_smoothing_is_the_training_loss_only(tiny, quick_config) -> None:
    import torch.nn.functional as F

    from mlplab.model.heads import loss_fn

    logits, target = torch.randn(8, 10), torch.randint(0, 10, (8,))
    smoothed = loss_fn("logits", None, 0.1)(logits, target)
    uniform = -F.log_softmax(logits, 1).mean(1)  # cross-entropy against the uniform target
    plain = F.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(smoothed, (0.9 * plain + 0.1 * uniform).mean())
    plain_run = train(quick_config, dataset=tiny)
    smooth_run = train(quick_config.override({"train.label_smoothing": 0.1}), dataset=tiny)
    assert smooth_run.summary["test_accuracy"] > 0.9
    # the training loss carries the smoothing's floor; the validation loss is plain NLL
    assert smooth_run.history[-1]["train_loss"] > plain_run.history[-1]["train_loss"] + 0.1
    assert smooth_run.history[-1]["val_loss"] < smooth_run.history[-1]["train_loss"]
    with pytest.raises(ConfigError, match="train.label_smoothing=0.1 needs model.head=logits"):
        quick_config.override({"train.label_smoothing": 0.1, "model.head": "log_softmax"})


def test_select_keeps_the_epoch_it_names(tiny, quick_config) -> None:
    from mlplab.config import selection_score

    config = quick_config.override({"train.epochs": 4})
    by_loss = train(config, dataset=tiny)
    by_accuracy = train(config.override({"train.select": "val_accuracy"}), dataset=tiny)
    last = train(config.override({"train.select": "last"}), dataset=tiny)
    history = by_loss.history  # the same training: only the kept epoch differs
    assert [h["val_loss"] for h in by_accuracy.history] == [h["val_loss"] for h in history]
    losses, accuracies = [h["val_loss"] for h in history], [h["val_accuracy"] for h in history]
    assert by_loss.summary["best_epoch"] == losses.index(min(losses)) + 1
    assert by_accuracy.summary["best_epoch"] == accuracies.index(max(accuracies)) + 1
    assert last.summary["best_epoch"] == 4
    # three epochs where the three choices differ
    history = [
        {"epoch": 1, "val_loss": 0.30, "val_accuracy": 0.90},
        {"epoch": 2, "val_loss": 0.35, "val_accuracy": 0.95},
        {"epoch": 3, "val_loss": 0.40, "val_accuracy": 0.93},
    ]
    for select, kept in (("val_loss", 1), ("val_accuracy", 2), ("last", 3)):
        assert min(history, key=lambda r: selection_score(r, select))["epoch"] == kept
    record = {
        "epoch": 2,
        "val_loss": None,
        "val_accuracy": None,
        "train_loss": 0.5,
        "train_accuracy": 0.8,
    }
    assert selection_score(record, "val_loss") == 0.5  # no validation split: training figures
    assert selection_score(record, "val_accuracy") == -0.8


def test_warped_training_is_reproducible(tiny, quick_config) -> None:
    config = quick_config.override(
        {"augment.elastic": 20.0, "augment.scale": 0.1, "augment.rotation": 5.0}
    )
    a, b = train(config, dataset=tiny), train(config, dataset=tiny)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.summary["test_accuracy"] > 0.8


def test_limit_says_what_it_took(tiny, quick_config, caplog) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="mlplab"):
        train(quick_config.override({"data.limit": 200}), dataset=tiny)
    assert (
        "limit    a seeded, class-stratified 200 of the 512 training samples "
        "(data.limit, split_seed 0)" in caplog.text
    )


def test_clean_epochs_drop_the_augmentation_at_the_end(tiny, quick_config) -> None:
    augmented = quick_config.override({"augment.rotation": 10.0, "augment.shift": 1})
    always = train(augmented, dataset=tiny).history
    last_clean = train(augmented.override({"augment.clean_epochs": 1}), dataset=tiny).history
    assert _without_times(last_clean[:2]) == _without_times(always[:2])
    assert last_clean[2]["train_loss"] != always[2]["train_loss"]
    # every epoch clean: the draws and the run are those of no augmentation at all
    never = train(augmented.override({"augment.clean_epochs": 3}), dataset=tiny).history
    assert _without_times(never) == _without_times(train(quick_config, dataset=tiny).history)


def test_a_dry_run_augments_as_the_run_would(tiny, quick_config) -> None:
    dry = quick_config.override(
        {"train.dry_run": True, "train.epochs": 10, "augment.rotation": 10.0}
    )
    plain = train(dry, dataset=tiny).history
    clean_end = train(dry.override({"augment.clean_epochs": 1}), dataset=tiny).history
    assert _without_times(clean_end) == _without_times(plain)  # its 2 epochs are not the last


def test_ema_validates_keeps_and_saves_the_weights_average(tiny, quick_config) -> None:
    from safetensors.torch import load_file

    from mlplab.analysis.evaluate import evaluate

    config = quick_config.override({"train.epochs": 4, "train.select": "last"})
    plain = train(config, dataset=tiny)
    averaged = train(config.override({"train.ema": 0.9}), dataset=tiny)
    # the same training steps: the average changes what is scored, not what is trained
    assert [h["train_loss"] for h in averaged.history] == [h["train_loss"] for h in plain.history]
    assert [h["val_loss"] for h in averaged.history] != [h["val_loss"] for h in plain.history]
    checkpoint = averaged.run.load_checkpoint()
    saved = load_file(averaged.run_dir / "model.safetensors")
    for key, value in checkpoint["average"].items():
        assert torch.equal(saved[key], value), key
    assert not torch.equal(saved["output.weight"], checkpoint["model"]["output.weight"])
    # the recorded validation figures are those of the saved (averaged) weights
    val = evaluate(averaged.run_dir, split="val", dataset=tiny)
    assert val["loss"] == pytest.approx(averaged.history[-1]["val_loss"], rel=1e-6)
    # what train() returns is a model to go on training, not the frozen average
    assert all(p.requires_grad for p in averaged.model.parameters())
    # a decay near 0 averages nothing: the run of the plain weights
    instant = train(config.override({"train.ema": 1e-9}), dataset=tiny)
    assert [h["val_loss"] for h in instant.history] == pytest.approx(
        [h["val_loss"] for h in plain.history], rel=1e-5
    )


def test_a_crop_too_large_for_the_images_stops_before_the_run(tiny, quick_config) -> None:
    runs = Path(quick_config.run.dir)
    with pytest.raises(ConfigError, match="model.crop=4 leaves no pixels of 1x8x8 inputs"):
        train(quick_config.override({"model.crop": 4}), dataset=tiny)
    assert not runs.exists() or not any(runs.iterdir())
    cropped = train(quick_config.override({"model.crop": 1}), dataset=tiny)
    assert cropped.model.widths == [36, 16, 4] and cropped.summary["test_accuracy"] > 0.5


def test_deskew_is_checked_before_the_run_and_recorded_in_model_json(tiny, quick_config) -> None:
    runs = Path(quick_config.run.dir)
    table = Dataset(
        "table",
        Split(torch.rand(64, 5, 1, 1), torch.randint(0, 2, (64,))),
        Split(torch.rand(16, 5, 1, 1), torch.randint(0, 2, (16,))),
        ("a", "b"),
        "memory",
    )
    with pytest.raises(
        ConfigError, match="model.deskew needs images of at least 2x2 pixels; the inputs are 5x1x1"
    ):
        train(quick_config.override({"model.deskew": True}), dataset=table)
    with pytest.raises(ConfigError, match="model.center needs images of at least 2x2 pixels"):
        train(quick_config.override({"model.center": True}), dataset=table)
    assert not runs.exists() or not any(runs.iterdir())
    result = train(quick_config.override({"model.deskew": True}), dataset=tiny)
    spec = json.loads((result.run_dir / "model.json").read_text())["model"]
    assert spec["deskew"] is True and spec["center"] is False
    model, _, _ = Run.open(result.run_dir).load_model()
    assert model.deskew and not model.center


def test_tta_is_checked_before_the_run_and_scores_validation_and_test(tiny, quick_config) -> None:
    runs = Path(quick_config.run.dir)
    table = Dataset(
        "table",
        Split(torch.rand(64, 5, 1, 1), torch.randint(0, 2, (64,))),
        Split(torch.rand(16, 5, 1, 1), torch.randint(0, 2, (16,))),
        ("a", "b"),
        "memory",
    )
    with pytest.raises(
        ConfigError, match="model.tta needs images of at least 2x2 pixels; the inputs are 5x1x1"
    ):
        train(quick_config.override({"model.tta": ["shift"]}), dataset=table)
    images = lambda n: torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8)  # noqa: E731
    sizes = Dataset(
        "sizes",
        Split(images(64), torch.rand(64)),
        Split(images(16), torch.rand(16)),
        (),
        "memory",
        task="regression",
    )
    with pytest.raises(ConfigError) as error:
        train(quick_config.override({"model.tta": ["flip"], "train.select": "last"}), dataset=sizes)
    assert str(error.value) == (
        "model.tta=flip averages class probabilities; a regression has none (leave it at [])"
    )
    assert not runs.exists() or not any(runs.iterdir())
    config = quick_config.override({"model.tta": ["shift", "flip"], "data.val_size": 0.25})
    result = train(config, dataset=tiny)
    spec = json.loads((result.run_dir / "model.json").read_text())["model"]
    assert spec["tta"] == ["shift", "flip"]
    # the recorded scores are the averaged model's: evaluate (eval mode, views on) agrees
    for split, key in (("val", "val_accuracy"), ("test", "test_accuracy")):
        scores = evaluate(result.run_dir, split=split, dataset=tiny)
        kept = result.history[result.summary["best_epoch"] - 1]
        recorded = kept[key] if split == "val" else result.summary[key]
        assert scores["accuracy"] == pytest.approx(recorded)
    assert evaluate(result.run_dir, dataset=tiny)["loss"] == pytest.approx(
        result.summary["test_loss"]
    )
    plain = result.model  # the same weights on the images alone score another loss
    plain.tta = ()
    norm = Run.open(result.run_dir).load_model()[1]
    alone = evaluate_split(plain.eval(), tiny.test, *norm.affine(), batch_size=100)
    assert abs(alone.loss - result.summary["test_loss"]) > 1e-4


def test_plateau_with_ema_watches_the_averages_validation_loss(tiny, quick_config) -> None:
    from mlplab.training.optim import Plan, lr_at

    config = quick_config.override(
        {
            "train.epochs": 6,
            "train.lr": 0.1,
            "data.val_size": 0.3,
            "train.scheduler": "plateau",
            "train.patience": 0,
            "train.gamma": 0.5,
            "train.ema": 0.9,
        }
    )
    averaged = train(config, dataset=tiny).history
    plain = train(config.override({"train.ema": 0.0}), dataset=tiny).history
    losses = [h["val_loss"] for h in averaged]  # the average's, as recorded
    lrs = [h["lr"] for h in averaged]
    assert lrs == [lr_at(config.train, e, Plan(6, 1), losses) for e in range(6)]
    assert lrs != [h["lr"] for h in plain]  # here the average drops the rate later
