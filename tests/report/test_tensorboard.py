"""TensorBoard event files from a run directory: read back, they hold the run's own numbers."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors.torch import load_file

from mlplab import Config, RunError, load_dataset, train
from mlplab.cli import main
from mlplab.report.tensorboard import write_events
from mlplab.run.directory import MAX_TEXT_BYTES, Run

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    config = Config().override({"data.dataset": "digits", "model.hidden": [16], "train.epochs": 3,
                                "train.lr": 0.01, "train.threads": 1,
                                "run.dir": str(tmp_path_factory.mktemp("runs"))})  # fmt: skip
    return train(config, dataset=load_dataset("digits")).run_dir


def events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0}
    )
    accumulator.Reload()
    return accumulator


def test_curves_histograms_and_images(run_dir: Path, tmp_path: Path) -> None:
    out = write_events(run_dir, tmp_path / "tb")
    assert out == tmp_path / "tb"
    ea = events(out)
    history, summary = Run(run_dir).metrics(), Run(run_dir).summary()
    for key, tag in (("train_loss", "loss/train"), ("val_accuracy", "accuracy/val"), ("lr", "lr")):
        got = [(e.step, e.value) for e in ea.Scalars(tag)]
        assert got == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in history]
    (test,) = ea.Scalars("test/accuracy")
    assert (test.step, test.value) == (
        summary["best_epoch"],
        pytest.approx(summary["test_accuracy"], rel=1e-6),
    )
    weights = load_file(str(run_dir / "model.safetensors"))
    assert set(ea.Tags()["histograms"]) == {f"weights/{k}" for k in weights}
    (hist,) = ea.Histograms("weights/hidden.0.linear.weight")
    assert hist.histogram_value.num == weights["hidden.0.linear.weight"].numel()
    assert hist.histogram_value.min == pytest.approx(float(weights["hidden.0.linear.weight"].min()))
    assert set(ea.Tags()["images"]) == {"first_layer/hidden.0", "samples/test"}
    image = ea.Images("first_layer/hidden.0")[0]
    assert (image.width, image.height) == (64, 16)  # 16 units of 8x8 pixels, 8 to a row
    assert {"config/text_summary", "summary/text_summary"} <= set(ea.Tags()["tensors"])


def test_writing_again_replaces_the_events(run_dir: Path) -> None:
    first = write_events(run_dir, samples=0)
    second = write_events(run_dir, samples=0)
    assert first == second == run_dir / "tensorboard"
    assert len(list(first.glob("events.out.tfevents.*"))) == 1
    assert len(events(first).Scalars("loss/train")) == 3  # not 6
    assert "samples/test" not in events(first).Tags()["images"]


def test_regression_run_has_no_pictures(tmp_path: Path) -> None:
    config = Config.preset("linreg").override({"train.epochs": 2, "data.val_size": 0.2, "train.threads": 1,
                                                "run.dir": str(tmp_path)})  # fmt: skip
    ea = events(write_events(train(config).run_dir))
    assert "r2/val" in ea.Tags()["scalars"] and "test/r2" in ea.Tags()["scalars"]
    assert "test/accuracy" not in ea.Tags()["scalars"] and ea.Tags()["images"] == []


def test_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    with pytest.raises(RunError, match="run directory .*nope does not exist"):
        write_events(tmp_path / "nope")
    empty = Run.create(tmp_path, "empty")
    Config().save(empty.path / "config.yaml")
    with pytest.raises(
        RunError, match=r"has no metrics.jsonl yet: no epoch finished, nothing to show$"
    ):
        write_events(empty.path)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert main(["tensorboard", str(empty.path)]) == 2
    assert capsys.readouterr().err == (
        "mlplab: error: mlplab tensorboard needs the Python package 'tensorboard', which is not "
        "installed; install it with: pip install 'mlplab[tensorboard]'\n"
    )


def test_cli(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["tensorboard", str(run_dir), "--out", str(tmp_path / "tb"), "--samples", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'tb'}\n"
    assert captured.err == f"view with: tensorboard --logdir {tmp_path / 'tb'}\n"
    assert main(["runs", str(run_dir.parent), "--tensorboard", str(tmp_path / "all")]) == 0
    assert (tmp_path / "all" / run_dir.name).is_dir()


# ----- hostile run files: one line, exit 2, nothing written -------------------------------
@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail (instead of hanging the suite) if the test blocks for 30 s: e.g. on a FIFO."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("blocked for 30 s (reading a FIFO?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _plant(file: Path, kind: str) -> None:
    """Replace a run file by something hostile."""
    if kind == "fifo":
        file.unlink()
        os.mkfifo(file)
    elif kind == "device":  # /dev/null: harmless to the code before, which read it as empty
        file.unlink()
        file.symlink_to("/dev/null")
    elif kind == "huge":  # sparse, just over what the run reader takes for a text file
        with open(file, "r+b") as f:
            f.truncate(MAX_TEXT_BYTES + 1)
    elif kind == "binary":
        file.write_bytes(file.read_bytes() + b"\xff\xfe not UTF-8\n")


@pytest.mark.parametrize(
    "name, kind, message",
    [
        ("config.yaml", "fifo", r"config\.yaml: a FIFO \(named pipe\), not a regular file; "),
        ("config.yaml", "device", r"config\.yaml: a character device, not a regular file; "),
        ("config.yaml", "huge", r"config\.yaml: 16,777,217 bytes, more than the 16,777,216 "),
        ("config.yaml", "binary", r"config file .*config\.yaml is not UTF-8 text "),
        ("model.safetensors", "fifo", r"model\.safetensors: a FIFO \(named pipe\), not a regular"),
        ("model.safetensors", "device", r"model\.safetensors: a character device, not a regular"),
    ],
)
def test_hostile_run_files_write_nothing(
    run_dir: Path, tmp_path: Path, capsys, deadline, name: str, kind: str, message: str
) -> None:
    # before: read_text() hung on a FIFO, read a device or gigabytes whole, died on
    # UnicodeDecodeError ("internal error"), and left a partial event file in --out
    run = tmp_path / run_dir.name
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("tensorboard"))
    _plant(run / name, kind)
    out = tmp_path / "tb"
    assert main(["tensorboard", str(run), "--out", str(out), "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.match(r"mlplab: error: .*" + message, err), err
    assert not out.exists()
    assert main(["tensorboard", str(run), "--samples", "0"]) == 2  # the default RUN/tensorboard
    assert not (run / "tensorboard").exists()


def test_a_failed_write_leaves_the_earlier_events(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # fmt: skip
    run = tmp_path / run_dir.name
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("tensorboard"))
    folder = write_events(run, samples=0)
    (earlier,) = folder.iterdir()
    kept = earlier.read_bytes()

    def full(self, *args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(SummaryWriter, "add_text", full)
    assert main(["tensorboard", str(run), "--samples", "0"]) == 1  # the machine refused
    assert re.match(rf"^mlplab: error: no space left on device writing {folder}: ",
                    capsys.readouterr().err)  # fmt: skip
    # before: the earlier file was deleted first, and a partial new one was left beside it
    assert list(folder.iterdir()) == [earlier] and earlier.read_bytes() == kept
    out = tmp_path / "elsewhere"
    assert main(["tensorboard", str(run), "--out", str(out), "--samples", "0"]) == 1
    assert not out.exists()  # no event file, no temporary folder, not even the folder


def test_write_events_for_runs_skips_an_unreadable_run_and_says_why(tmp_path: Path) -> None:
    from mlplab.errors import RunError
    from mlplab.report.tensorboard import write_events_for_runs

    broken = tmp_path / "runs" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.yaml").write_text("train: {epochs: 1}\n")  # no metrics.jsonl: nothing to show
    skipped = write_events_for_runs([broken], tmp_path / "runs", tmp_path / "tb")
    assert [type(e) for e in skipped] == [RunError]
    assert "broken" in str(skipped[0])


def test_negative_samples_are_refused_by_the_api() -> None:
    from mlplab.errors import ConfigError
    from mlplab.report.tensorboard import write_events

    with pytest.raises(ConfigError, match=r"^--samples must be >= 0; got -1$"):
        write_events("no-such-run", samples=-1)
