"""The run directory: safe loading refuses what is not what it claims, one line each."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mlplab import Config, Run, RunError, train
from mlplab.cli import main


@pytest.fixture
def run_dir(tiny, quick_config: Config) -> Path:
    return train(quick_config.override({"train.epochs": 1}), dataset=tiny).run_dir


def test_model_json_that_is_json_but_not_a_model(run_dir: Path, capsys) -> None:
    (run_dir / "model.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(
        RunError, match=r"model.json: not a model description made by mlplab \(KeyError: 'model'\)"
    ):
        Run.open(run_dir).load_model()
    (run_dir / "model.json").write_text("[1, 2]")
    assert main(["evaluate", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlplab: error: ") and "model.json: not a model description" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "crop, why",
    [
        ("2", "ConfigError: model.crop must be a whole number >= 0; got '2'"),
        (4, "ConfigError: model.crop=4 leaves no pixels of 1x8x8 inputs; it takes 0 to 3 pixels off each border"),
    ],
)  # fmt: skip
def test_a_crop_that_does_not_fit_the_input_is_refused(run_dir: Path, crop, why: str) -> None:
    info = json.loads((run_dir / "model.json").read_text())
    info["model"]["crop"] = crop
    (run_dir / "model.json").write_text(json.dumps(info))
    with pytest.raises(RunError) as error:
        Run.open(run_dir).load_model()
    assert str(error.value).endswith(f"model.json: not a model description made by mlplab ({why})")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("output.bias"), r"missing output.bias"),
        (lambda s: s.update(extra=torch.zeros(2)), r"unexpected extra"),
        (
            lambda s: s.update({"output.bias": torch.zeros(7)}),
            r"wrong shape output.bias \(7,\) \(expected \(4,\)\)",
        ),
    ],
)
def test_weights_that_do_not_fit_are_refused(run_dir: Path, change, message: str) -> None:
    state = load_file(run_dir / "model.safetensors")
    change(state)
    save_file(state, run_dir / "model.safetensors")
    with pytest.raises(
        RunError, match=r"the weights do not fit the architecture in model.json: " + message
    ):
        Run.open(run_dir).load_model()


def test_a_file_that_is_not_safetensors(run_dir: Path) -> None:
    (run_dir / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(RunError, match=r"model.safetensors: not a readable safetensors file"):
        Run.open(run_dir).load_model()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_checkpoint_is_read_with_the_restricted_loader(run_dir: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    (run_dir / "checkpoint.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(RunError, match=r"checkpoint.pt: not a readable mlplab checkpoint"):
        Run.open(run_dir).load_checkpoint()


def test_dataset_json_records_what_the_run_was_trained_on(run_dir: Path, tiny) -> None:
    info = Run.open(run_dir).dataset_info()
    assert info["name"] == "synthetic" and info["image_shape"] == [1, 8, 8]
    assert info["classes"] == list(tiny.classes) and info["reload"] is None
    assert info["samples"] == {"train": 461, "val": 51, "test": 128}


def test_evaluate_refuses_data_it_cannot_reload(run_dir: Path, capsys) -> None:
    """An in-memory dataset is not quietly replaced by the config's default (MNIST)."""
    assert main(["evaluate", str(run_dir)]) == 2
    assert (
        "was trained on dataset 'synthetic' (generated), which was passed in memory"
        in capsys.readouterr().err
    )


def test_evaluate_another_dataset_of_the_same_shape(tmp_path: Path, capsys) -> None:
    from mlplab import evaluate

    runs = str(tmp_path / "runs")
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "16",
                "--epochs",
                "1",
                "--runs-dir",
                runs,
                "-q",
            ]
        )
        == 0
    )
    run = capsys.readouterr().out.strip()
    for split, samples in (("test", 450), ("val", 135), ("train", 1212)):
        assert evaluate(run, split=split)["samples"] == samples
    assert main(["evaluate", run, "--dataset", "mnist"]) == 2
    assert (
        "mlplab: error: dataset 'mnist' not found" in capsys.readouterr().err
    )  # not MNIST's shape, nor here


def test_a_run_directory_that_is_missing_or_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    os.mkfifo(tmp_path / "fifo")
    for name, what in (("nope", "does not exist"), ("notes.txt", "is not a folder"), ("fifo", "is not a folder")):  # fmt: skip
        with pytest.raises(RunError) as refused:
            Run.open(tmp_path / name)
        assert str(refused.value) == (
            f"run directory {tmp_path / name} {what}; pass a folder under runs/ made by "
            "`mlplab train`"
        )


def test_a_run_directory_that_is_not_a_path_is_one_error() -> None:
    with pytest.raises(RunError) as refused:
        Run.open(5)  # type: ignore[arg-type]
    assert str(refused.value) == "a run directory is a path (a str or a pathlib.Path); got int 5"


def test_a_run_on_a_bare_folder_name_reads_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_config: Config
) -> None:
    """`--dataset photos` is relative to where training ran: from another folder (or once
    the data moved) config.yaml failed its own check, and card, runs, report with it."""
    import numpy as np
    from PIL import Image

    for k in range(2):
        (tmp_path / "photos" / f"c{k}").mkdir(parents=True)
        for i in range(12):
            pixels = np.full((6, 6), 40 + 150 * k + i, np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / f"c{k}" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    config = quick_config.override({"data.dataset": "photos", "train.epochs": 1})
    run = train(config).run_dir
    assert Run.open(run).config().data.dataset == "photos"  # where it ran: as written
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "photos").rename(tmp_path / "moved")
    assert Run.open(run).config().data.dataset == str(tmp_path / "photos")  # its record
    assert "{dataset: photos," in (run / "config.yaml").read_text()  # the file: as written
