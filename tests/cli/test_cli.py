"""The command line: a thin shell; one-line errors with exit code 2 and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplab.cli import main

QUICK = ["--dataset", "digits", "--hidden", "32", "--epochs", "2", "--lr", "0.01", "--threads", "1"]


def run_dir_from(out: str) -> Path:
    return Path(out.strip().splitlines()[-1].split("run directory: ")[-1])


def test_train_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "runs"), "--name", "cli"]) == 0
    out = capsys.readouterr().out
    assert "config   data: dataset=digits" in out
    assert "normalize standard: mean " in out and "(training split)" in out
    assert "initial loss" in out and "= ln(10))" in out
    assert "epoch 1/2  train loss" in out and "epoch 2/2" in out
    assert "total" in out and "2,410" in out  # 64*32+32 + 32*10+10 parameters
    run = run_dir_from(out)
    assert run.parent == tmp_path / "runs" and run.name.endswith("-cli")

    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert metrics["samples"] == 450 and len(metrics["per_class_accuracy"]) == 10

    assert main(["evaluate", str(run)]) == 0
    table = capsys.readouterr().out
    assert "digits test, 450 samples" in table and "accuracy" in table


def test_quiet_prints_only_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "r"), "-q"]) == 0
    out = capsys.readouterr().out.strip()
    assert Path(out).is_dir() and "\n" not in out


def test_config_file_and_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "my.yaml").write_text("train:\n  epochs: 7\nmodel:\n  hidden: [20]\n")
    assert (
        main(
            [
                "config",
                "--preset",
                "tutorial",
                "--config",
                str(tmp_path / "my.yaml"),
                "--set",
                "train.epochs=3",
                "--lr",
                "0.5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "epochs: 3" in out and "hidden: [20]" in out and "lr: 0.5" in out and "rotation: 5.0" in out
    )


def test_incomplete_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("{}\n")
    assert main(["evaluate", str(tmp_path / "half")]) == 2
    assert (
        "is empty: training stopped before its first epoch ended (missing model.safetensors, model.json)"
        in capsys.readouterr().err
    )
    (tmp_path / "nothing").mkdir()
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "is not a run directory (no config.yaml)" in capsys.readouterr().err


def test_datasets_and_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert f"mnist            missing   downloads to {tmp_path / 'cache' / 'mnist'}" in out
    assert "digits           bundled" in out
    assert main(["presets"]) == 0
    assert "tutorial    784-250-100-10 ReLU, Adam 1e-3" in capsys.readouterr().out
    assert main(["config", "--list"]) == 0
    assert "train.lr" in capsys.readouterr().out


def test_demo_falls_back_to_digits_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPLAB_MIRROR", "http://127.0.0.1:9/")
    assert main(["demo", "--epochs", "2", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "MNIST is not available here: dataset 'mnist' not found" in out
    assert "running the same pipeline on scikit-learn's bundled 8x8 digits instead" in out
    assert "evaluate: test accuracy" in out and "450 digits images" in out
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-demo-digits")
    assert f"run directory: {runs[0]}  (try: mlplab evaluate {runs[0]})" in out


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_run_name_with_a_slash(tmp_path: Path, capsys) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path), "--name", "a/b"]) == 2
    assert "config key 'run.name' must be a plain folder-name part" in one_line_error(capsys)


def test_runs_folder_that_cannot_be_made(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "file" / "runs")]) == 2
    assert one_line_error(capsys) == (
        f"mlplab: error: cannot write {tmp_path / 'file' / 'runs'}: part of {tmp_path / 'file'} "
        "is a file, not a folder; choose another --runs-dir"
    )
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "file")]) == 2
    assert one_line_error(capsys) == (
        f"mlplab: error: runs folder {tmp_path / 'file'} is not a folder (a file of 12 bytes); "
        "choose another --runs-dir"
    )


def test_full_disk_is_one_line_and_leaves_no_run(tmp_path: Path, capsys, monkeypatch) -> None:
    import errno
    import os

    import mlplab.files.atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(mlplab.files.atomic.os, "replace", full)
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "runs")]) == 1  # the machine failed
    err = one_line_error(capsys)
    assert err.startswith("mlplab: error: no space left on device writing ") and "free space" in err
    assert list((tmp_path / "runs").iterdir()) == []


def test_cache_that_cannot_be_written(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MLPLAB_CACHE_DIR", str(tmp_path / "file" / "cache"))
    monkeypatch.setenv("MLPLAB_MIRROR", "http://127.0.0.1:9/")
    assert main(["train", "--dataset", "fashion-mnist", "--runs-dir", str(tmp_path / "runs")]) == 1
    assert "Not a directory" in one_line_error(capsys)


def test_report_on_a_regression_run_says_why_not(tmp_path: Path, capsys) -> None:
    assert (
        main(["train", "--preset", "linreg", "--epochs", "2", "--runs-dir", str(tmp_path), "-q"])
        == 0
    )
    run = capsys.readouterr().out.strip()
    assert main(["report", run]) == 2
    assert (
        "is a regression: the report's analyses (confusion, mistakes, class prototypes) are for classifiers"
        in one_line_error(capsys)
    )


def test_run_name_with_a_newline(tmp_path: Path, capsys) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path), "--name", "a\nb"]) == 2
    assert "config key 'run.name' must be a plain folder-name part" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["abc", "-3", "0", "99999"])
def test_mlplab_threads_out_of_range_is_one_line(
    value: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """99,999 threads crashed torch (SIGSEGV) and 'abc' was an internal error."""
    monkeypatch.setenv("MLPLAB_THREADS", value)
    argv = QUICK[: QUICK.index("--threads")]  # --threads 1 would win over the variable
    assert main(["train", *argv, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert one_line_error(capsys) == (
        f"mlplab: error: environment variable MLPLAB_THREADS must be a whole number in [1, 512]; "
        f"got '{value}' (unset it for the automatic choice)"
    )
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_train_threads_are_capped(tmp_path: Path, capsys) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path), "--threads", "10000"]) == 2
    assert "config key 'train.threads' must be in [0, 512]; got 10000" in one_line_error(capsys)


def test_calibrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *QUICK, "--runs-dir", str(tmp_path / "runs"), "-q"]) == 0
    run = Path(capsys.readouterr().out.strip())
    trained = json.loads((run / "model.json").read_text())["temperature"]
    assert main(["calibrate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["temperature_before"] == trained and result["split"] == "val"
    assert result["temperature"] == pytest.approx(trained, rel=1e-6)  # the same split, again

    assert main(["calibrate", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    r = result
    assert lines == [
        f"{run}: temperature {r['temperature']:.3f} -> {r['temperature']:.3f}, fitted on digits "
        f"val ({r['samples']:,} samples)",
        f"  ECE {r['ece_after']:.2%} -> {r['ece_after']:.2%}   NLL {r['nll_after']:.4f} -> "
        f"{r['nll_after']:.4f}   Brier {r['brier_after']:.4f} -> {r['brier_after']:.4f}",
    ]
    # the run's own test split never fits; a regression has no temperature: one line each
    assert main(["calibrate", str(run), "--dataset", "digits"]) == 2
    assert "its test split is for scoring, never for fitting" in capsys.readouterr().err
    argv = ["--dataset", "make-regression", "--hidden", "8", "--epochs", "1", "--threads", "1"]
    assert main(["train", *argv, "--runs-dir", str(tmp_path / "runs"), "-q"]) == 0
    regression = capsys.readouterr().out.strip()
    assert main(["calibrate", regression]) == 2
    assert capsys.readouterr().err == (
        f"mlplab: error: calibration applies to classification runs; {regression} is a regression\n"
    )
