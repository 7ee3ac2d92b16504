"""Resume after any interruption: a killed run, resumed, ends exactly as if left alone.

The CLI tests run ``mlplab train`` as a real child process and kill it (SIGKILL: no
chance to clean up) or interrupt it (SIGINT, as Ctrl-C) after a few epochs.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mlplab import Config, Epoch, Run, RunError, resume, train
from mlplab.training.optim import Plan, lr_at

# dropout, rotation and shift draw from every RNG stream; batch 4 makes epochs last long
# enough (~0.2 s each) to kill the child between two of them
RECIPE = shlex.split(
    "--dataset digits --hidden 32 --dropout 0.1 --rotation 10 --shift 1 --batch-size 4 "
    "--lr 0.003 --scheduler cosine --epochs 8 --threads 1"
)
TIME_FIELDS = ("epoch_seconds", "elapsed_seconds")


def mlplab(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "MLPLAB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlplab", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def finished(*args: str) -> tuple[int, str, str]:
    proc = mlplab(*args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def wait_for_epochs(runs: Path, epochs: int, proc: subprocess.Popen) -> Path:
    """The run directory, once its checkpoint holds ``epochs`` epochs (polling the files)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for run in runs.glob("*"):
            metrics = run / "metrics.jsonl"
            if (
                (run / "checkpoint.pt").exists()
                and metrics.exists()
                and len(metrics.read_text().splitlines()) >= epochs
            ):
                return run
        assert proc.poll() is None, f"the run ended before epoch {epochs}: {proc.communicate()}"
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the run's epochs")


def metrics_without_times(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIME_FIELDS} for line in lines]


def assert_same_run(a: Path, b: Path) -> None:
    assert metrics_without_times(a) == metrics_without_times(b)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key  # bit for bit
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    kept = ("test_accuracy", "test_loss", "best_epoch")
    assert [sa[k] for k in kept] == [sb[k] for k in kept]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recipe, left alone."""
    runs = tmp_path_factory.mktemp("reference")
    code, out, err = finished("train", *RECIPE, "--runs-dir", str(runs), "-q")
    assert code == 0, err
    return Path(out.strip())


def test_sigkill_then_resume_ends_bit_for_bit_as_the_run_left_alone(
    tmp_path: Path, reference: Path
) -> None:
    proc = mlplab("train", *RECIPE, "--runs-dir", str(tmp_path))
    run = wait_for_epochs(tmp_path, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.safetensors").exists()  # killed mid-run: no finished model yet
    code, out, err = finished("train", "--resume", str(run))
    assert code == 0, err
    assert f"resume   {run} from epoch" in out and "epoch 8/8" in out
    assert_same_run(run, reference)
    log = (run / "train.log").read_text()
    assert "epoch 1/8" in log and "resume   " in log and "epoch 8/8" in log


def test_ctrl_c_exits_130_and_prints_the_resume_command(tmp_path: Path, reference: Path) -> None:
    proc = mlplab("train", *RECIPE, "--runs-dir", str(tmp_path))
    run = wait_for_epochs(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    command = f"mlplab train --resume {run}"
    assert err.strip().splitlines()[-1] == f"mlplab: interrupted; continue with: {command}"
    assert json.loads((run / "summary.json").read_text())["interrupted"] is True
    code, _, err = finished(*command.split()[1:])  # the very command it printed
    assert code == 0, err
    assert_same_run(run, reference)


def test_interrupted_before_the_first_epoch_leaves_no_run_directory(tmp_path: Path) -> None:
    slow = [*RECIPE[:-4], "--batch-size", "1", "--threads", "1"]  # a first epoch of ~1 s
    proc = mlplab("train", *slow, "--runs-dir", str(tmp_path))
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob("*/config.yaml")) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not any(tmp_path.glob("*/metrics.jsonl")), "the first epoch ended too soon"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted before the first epoch ended: no run directory was kept" in err + _
    assert list(tmp_path.iterdir()) == []


# ----- the same through the API, in process ---------------------------------------------------
@pytest.mark.parametrize("ema", [0.0, 0.9])  # the weights' average is state too
def test_resume_in_process_matches(tiny, quick_config: Config, ema: float) -> None:
    # the last epoch on plain images: a resumed run must know which epochs are which
    config = quick_config.override(
        {
            "model.dropout": 0.2,
            "augment.shift": 1,
            "train.epochs": 4,
            "train.scheduler": "onecycle",
            "augment.clean_epochs": 1,
            "train.ema": ema,
        }
    )
    alone = train(config, dataset=tiny)

    def stop(epoch: Epoch) -> None:
        if epoch.record["epoch"] == 2:
            raise KeyboardInterrupt

    stopped = train(config, dataset=tiny, on_epoch=stop)
    assert stopped.interrupted and len(stopped.history) == 2
    resumed = resume(stopped.run_dir, dataset=tiny)
    assert not resumed.interrupted
    assert_same_run(stopped.run_dir, alone.run_dir)


def test_a_run_that_aligns_once_resumes_bit_for_bit(tiny, quick_config: Config) -> None:
    """The images aligned once are made again by the resumed process, the same as before."""
    config = quick_config.override(
        {"model.deskew": True, "model.center": True, "model.crop": 1, "train.epochs": 3}
    )
    alone = train(config, dataset=tiny)

    def stop(epoch: Epoch) -> None:
        if epoch.record["epoch"] == 1:
            raise KeyboardInterrupt

    stopped = train(config, dataset=tiny, on_epoch=stop)
    resume(stopped.run_dir, dataset=tiny)
    assert_same_run(stopped.run_dir, alone.run_dir)


def test_resume_keeps_the_automatic_thread_count(tiny, quick_config: Config, monkeypatch) -> None:
    from mlplab.training import threads

    monkeypatch.delenv("MLPLAB_THREADS")
    picks = iter([2, 1])  # the machine got busier between the two calls
    monkeypatch.setattr(threads, "auto_threads", lambda *args: next(picks))
    caller = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = train(quick_config.override({"train.epochs": 1}), dataset=tiny)
        assert first.summary["threads"] == 2
        longer = resume(first.run_dir, epochs=2, dataset=tiny)
        assert longer.summary["threads"] == 2  # the run's count, not a new pick
        assert next(picks) == 1  # resume never asked
    finally:
        torch.set_num_threads(caller)


def test_extending_follows_the_schedule_for_the_new_length(tiny, quick_config: Config) -> None:
    config = quick_config.override({"train.scheduler": "cosine", "train.epochs": 2})
    first = train(config, dataset=tiny)
    with pytest.raises(
        RunError, match=r"has trained 2 epochs of its 2; pass --epochs N \(more than 2\) to"
    ):
        resume(first.run_dir, dataset=tiny)
    config_file = (first.run_dir / "config.yaml").read_bytes()
    with pytest.raises(  # refused, and the run's plan untouched (it was rewritten to 1 epoch)
        RunError,
        match=r"has trained 2 epochs of its 2 \(--epochs 1 asked for\); pass --epochs N \(more",
    ):
        resume(first.run_dir, epochs=1, dataset=tiny)
    assert (first.run_dir / "config.yaml").read_bytes() == config_file
    longer = resume(first.run_dir, epochs=4, dataset=tiny)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3, 4]
    steps = 15  # ceil(461 / 32)
    new = config.override({"train.epochs": 4}).train
    assert longer.history[2]["lr"] == pytest.approx(lr_at(new, 2 * steps, Plan(4, steps)))
    assert Config.load(first.run_dir / "config.yaml").train.epochs == 4


def test_resume_needs_the_same_data(tiny, quick_config: Config) -> None:
    from conftest import make_dataset

    run = train(quick_config.override({"train.epochs": 1}), dataset=tiny).run_dir
    with pytest.raises(RunError, match="was trained on dataset 'synthetic' .* passed in memory"):
        resume(run, epochs=2)
    with pytest.raises(RunError, match=r"images are 1x6x6, the model takes 1x8x8"):
        resume(run, epochs=2, dataset=make_dataset(size=6))


def test_resume_refuses_options_that_change_the_recipe(tmp_path: Path, capsys) -> None:
    from mlplab.cli import main

    assert main(["train", "--resume", str(tmp_path), "--lr", "0.1", "--hidden", "8"]) == 2
    assert (
        capsys.readouterr().err == "mlplab: error: --resume continues a run with its own recipe; "
        "--hidden, --lr would change it "
        "(only --epochs N, to extend the run to N epochs, goes with --resume)\n"
    )


def test_turning_ema_on_for_a_resume_is_one_clear_error(tiny, quick_config: Config) -> None:
    def stop(epoch: Epoch) -> None:
        raise KeyboardInterrupt

    run = train(quick_config, dataset=tiny, on_epoch=stop).run
    run.save_config(run.config().override({"train.ema": 0.99}))
    with pytest.raises(
        RunError,
        match=r": its checkpoint.pt was written for another recipe than its config.yaml "
        r"\(train.ema: 0.99 in config.yaml, 0.0 in checkpoint.pt\): one of them was edited",
    ):
        resume(run.path, dataset=tiny)


def test_recipe_changes_are_refused_before_the_run_is_read(tmp_path: Path) -> None:
    """The rule behind `mlplab train --resume RUN --lr ...`: a resumed run keeps its recipe."""
    from mlplab import ConfigError

    with pytest.raises(ConfigError) as caught:  # not RunError: the run is not even opened
        resume(tmp_path / "no-such-run", epochs=5, recipe_changes=["--hidden", "--lr"])
    assert str(caught.value) == (
        "--resume continues a run with its own recipe; --hidden, --lr would change it (only "
        "--epochs N, to extend the run to N epochs, goes with --resume)"
    )
    with pytest.raises(RunError, match="does not exist"):  # no changes: on to the run itself
        resume(tmp_path / "no-such-run", recipe_changes=[])


def test_a_checkpoint_of_another_recipe_is_refused(tiny, quick_config: Config) -> None:
    """Another run's checkpoint.pt copied in, or config.yaml edited: resume went on with the
    other run's history and weights, or a new learning rate, without a word."""
    import shutil

    mine = train(quick_config.override({"train.epochs": 1}), dataset=tiny).run_dir
    other = train(quick_config.override({"train.epochs": 1, "train.seed": 5, "train.lr": 0.05}), dataset=tiny).run_dir  # fmt: skip
    kept = (mine / "checkpoint.pt").read_bytes()
    shutil.copy(other / "checkpoint.pt", mine / "checkpoint.pt")
    with pytest.raises(RunError) as refused:
        resume(mine, epochs=2, dataset=tiny)
    assert str(refused.value) == (
        f"run {mine}: its checkpoint.pt was written for another recipe than its config.yaml "
        "(train.lr: 0.01 in config.yaml, 0.05 in checkpoint.pt; train.seed: 0 in config.yaml, "
        "5 in checkpoint.pt): one of them was edited or copied from another run; put the run's "
        "own files back, or train a new run"
    )
    (mine / "checkpoint.pt").write_bytes(kept)
    run = Run.open(mine)
    run.save_config(run.config().override({"train.threads": 1}))  # how it trains: fine
    assert len(resume(mine, epochs=2, dataset=tiny).history) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: nothing is held there")
def test_a_run_is_trained_by_one_process_at_a_time(tiny, quick_config: Config) -> None:
    """Two --resume of one run at once both went on, interleaving their checkpoints and
    metrics; now the run directory is held (flock on the folder) while a process trains
    there, and another training or resume of it is one RunError that writes nothing."""
    busy = []

    def probe(epoch: Epoch) -> bool:  # while train() runs, the folder is held
        with pytest.raises(RunError) as refused, Run(epoch_run[0]).exclusive():
            pass
        busy.append(str(refused.value))
        return epoch.record["epoch"] == 1

    epoch_run: list[Path] = []
    config = quick_config.override({"train.epochs": 3})
    original = Run.create

    def create(root, name):  # learn the run folder's name as train() makes it
        run = original(root, name)
        epoch_run.append(run.path)
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Run, "create", create)
        first = train(config, dataset=tiny, on_epoch=probe)
    assert busy == [
        f"run {first.run_dir} is being trained by another process right now (a training or a "
        "--resume still running); wait for it to end, then resume it"
    ]
    files = {p.name: p.read_bytes() for p in first.run_dir.iterdir()}
    held = Run(first.run_dir).exclusive()  # as if another process were resuming it
    with held, pytest.raises(RunError, match="is being trained by another process right now"):
        resume(first.run_dir, dataset=tiny, epochs=4)
    assert {p.name: p.read_bytes() for p in first.run_dir.iterdir()} == files
    assert len(resume(first.run_dir, dataset=tiny).history) == 3  # free again: it goes on
