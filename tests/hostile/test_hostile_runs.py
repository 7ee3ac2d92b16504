"""Run directories from others are untrusted input: hostile or damaged files in a run are
refused with one line naming the file, the key and the value, before anything is
allocated or built from them, and never stop a listing of the other runs.

Each case is one an attacker sharing a run folder (or a tired user) could make: sizes that
would exhaust memory, JSON nested too deeply or with numbers of thousands of digits,
FIFOs and devices named like run files, files of gigabytes (sparse: no disk is used),
YAML tags, names with terminal escape codes, links to ``/``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlplab import MLP, Config, ConfigError, Run, RunError, train
from mlplab.cli import main
from mlplab.run.table import list_runs, runs_table, to_json
from mlplab.training.loop import resume

BUDGET_MB = 256  # the memory budget pinned for these tests (MLPLAB_MAX_ALLOC_MB)
GB = 1024**3


@pytest.fixture(autouse=True)
def pinned_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", str(BUDGET_MB))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run (digits, 64-16-10, 2 epochs), copied by each test."""
    root = tmp_path_factory.mktemp("trained")
    config = Config().override({"data.dataset": "digits", "model.hidden": [16], "train.epochs": 2,
                                "train.threads": 1, "run.dir": str(root), "run.name": "good"})  # fmt: skip
    return train(config).run_dir


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished run, under tmp_path/runs/."""
    return Path(shutil.copytree(trained, tmp_path / "runs" / trained.name, symlinks=True))


def edit_model_json(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    info = json.loads((run / "model.json").read_text())
    change(info)
    (run / "model.json").write_text(json.dumps(info))


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], expected: str) -> str:
    """The CLI refuses with exit 2 and one line, ``mlplab: error: ...``, holding ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlplab: error: ") and len(err.strip().splitlines()) == 1, err[:500]
    assert expected in err, err[:500]
    return err


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result, failing (not hanging the suite) when it takes longer."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked on a FIFO?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk (and no memory, unless someone reads it)."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


# ----- model.json: sizes, before any tensor is made -------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(hidden=[10**9]),
         "model.json: the MLP of model.input_shape=[1, 8, 8], model.hidden=[1000000000], "
         "model.classes=10 (widths 64-1000000000-10: 75,000,000,010 parameters) would need "
         "279.4 GiB of memory, more than the 200.0 MiB mlplab allows one array"),
        (lambda s: s.update(input_shape=[1, 10**6, 10**6]),
         "(widths 1000000000000-16-10: 16,000,000,000,186 parameters) would need 59,604.6 GiB"),
        (lambda s: s.update(hidden=[4000] * 5),  # fits malloc, not the budget
         "(widths 64-4000-4000-4000-4000-4000-10: 64,316,010 parameters) would need 245.3 MiB"),
        (lambda s: s.update(hidden=[2] * 1000, input_shape=[1, 10**4, 10**4]),
         "(widths 100000000-2-2-2-...-2-2-10: 200,006,026 parameters) would need 763.0 MiB"),
    ],
)  # fmt: skip
def test_a_model_too_big_for_memory_is_refused_before_it_is_built(
    run: Path, change, message: str, capsys, monkeypatch
) -> None:
    """Was: 'internal error' (the allocator's RuntimeError), or the memory taken first."""
    monkeypatch.setenv("MLPLAB_MAX_ALLOC_MB", "200")
    edit_model_json(run, lambda info: change(info["model"]))
    built = []
    monkeypatch.setattr(MLP, "__init__", lambda *a, **k: built.append(1) or 1 / 0)
    with pytest.raises(RunError, match="would need .* of memory, more than the 200.0 MiB mlplab allows"):  # fmt: skip
        Run.open(run).load_model()
    assert not built
    one_line_error(["evaluate", str(run)], capsys, message)


def test_the_api_refuses_a_model_too_big_for_memory_too() -> None:
    with pytest.raises(ConfigError, match=r"an MLP \(widths 64-16-1000000000000: 17,000,000,001,040 "
                       r"parameters\) would need 63,329.9 GiB of memory"):  # fmt: skip
        MLP((1, 8, 8), [16], 10**12)


def test_a_regression_with_a_trillion_outputs_is_refused(run: Path, capsys) -> None:
    """A regression's model.json lists no class names, so nothing else bounded its outputs."""

    def change(info: dict) -> None:
        info.update(task="regression", classes=[])
        info["model"]["classes"] = 10**12

    edit_model_json(run, change)
    one_line_error(["evaluate", str(run)], capsys,
                   "model.json: not a model description made by mlplab (ValueError: a regression "
                   "has 1 output; model.classes is 1000000000000)")  # fmt: skip


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hidden", [16.0], "model.hidden[0] must be a whole number >= 1; got 16.0"),
        ("hidden", [True], "model.hidden[0] must be a whole number >= 1; got True"),
        ("hidden", [-16], "model.hidden[0] must be a whole number >= 1; got -16"),
        ("hidden", ["16"], "model.hidden[0] must be a whole number >= 1; got '16'"),
        ("hidden", 16, "model.hidden must be a list of at most 1,000 layer widths; got 16"),
        ("hidden", [1] * 1001, "model.hidden must be a list of at most 1,000 layer widths; got [1, 1, "),
        ("classes", True, "model.classes must be a whole number >= 1 (the outputs); got True"),
        ("classes", 10.0, "model.classes must be a whole number >= 1 (the outputs); got 10.0"),
        ("input_shape", [1, 8, 8.0], "model.input_shape must be 3 whole numbers >= 1 (channels, height, width); got [1, 8, 8.0]"),
        ("input_shape", [1, -8, -8], "model.input_shape must be 3 whole numbers >= 1"),
        ("dropout", "0.1", "model.dropout must be a number from 0 to below 1; got '0.1'"),
        ("dropout", True, "model.dropout must be a number from 0 to below 1; got True"),
        ("activation", ["relu"], "model.activation must be one of relu, sigmoid, tanh, gelu; got ['relu']"),
        ("crop", True, "model.crop must be a whole number >= 0; got True"),
        ("deskew", 1, "model.deskew must be true or false; got 1"),
        ("tta", "shift", "model.tta must be a list of view names (shift, rotate, flip); got 'shift'"),
        ("tta", ["x" * 10**6], "model.tta must be a list of view names (shift, rotate, flip); got ['xxxxx"),
        ("evil", 1, "model has an unknown key 'evil'; the keys are kind, input_shape, hidden"),
        ("kind", "cnn", "model.kind must be 'mlp'; got 'cnn'"),
    ],
)  # fmt: skip
def test_each_value_of_the_architecture_is_checked_for_its_type(
    run: Path, key: str, value: Any, message: str, capsys
) -> None:
    """Was: a float or bool width loaded silently (int(16.0), True as 1), others ended in a
    TypeError or a message echoing the whole value."""
    edit_model_json(run, lambda info: info["model"].update({key: value}))
    with pytest.raises(RunError) as error:
        Run.open(run).model_info()
    assert f"model.json: not a model description made by mlplab (ConfigError: {message}" in str(error.value)  # fmt: skip
    assert len(str(error.value)) < 500  # a megabyte value is not echoed
    one_line_error(["evaluate", str(run)], capsys, message)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.update(normalization={"mean": [0.1], "std": [0.0]}),
         "normalization.std must be 1 finite numbers > 0 (one per channel); got [0.0]"),
        (lambda i: i.update(normalization={"mean": [0.1, 0.2], "std": [1.0, 1.0]}),
         "normalization.mean must be 1 finite numbers (one per channel); got [0.1, 0.2]"),
        (lambda i: i.update(normalization={"mean": [float("nan")], "std": [1.0]}),
         "normalization.mean must be 1 finite numbers (one per channel); got [nan]"),
        (lambda i: i.update(classes=list(range(10))), "classes must be a list of names; got [0, 1, 2"),
        (lambda i: i.update(task="ranking"), "task must be classification or regression; got 'ranking'"),
        (lambda i: i.update(classes=["a"]), "classes must list one name per output: 1 names, 10 outputs"),
    ],
)  # fmt: skip
def test_normalization_classes_and_task_are_checked(run: Path, change, message: str) -> None:
    """Was: a std of 0 divided by zero at evaluation, a mean per wrong channel count failed
    in a broadcast, numbers as class names and unknown tasks went through."""
    edit_model_json(run, change)
    with pytest.raises(RunError, match="not a model description made by mlplab") as error:
        Run.open(run).load_model()
    assert message in str(error.value)


# ----- model.json: hostile JSON --------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "cannot read a model description (nested too deeply)"),
        ('{"model": {"hidden": [' + "9" * 5000 + "]}}",
         "cannot read a model description (ValueError: Exceeds the limit (4300 digits) for "
         "integer string conversion"),
        (b"\xff\xfe{}", "cannot read a model description (not UTF-8 text: byte 0)"),
    ],
)  # fmt: skip
def test_hostile_json_is_one_line(run: Path, text: str | bytes, message: str, capsys) -> None:
    """Was: 'internal error: RecursionError' / 'ValueError' / 'UnicodeDecodeError'."""
    file = run / "model.json"
    file.write_bytes(text if isinstance(text, bytes) else text.encode())
    one_line_error(["evaluate", str(run)], capsys, f"{file}: {message}")


def test_a_model_json_of_two_gigabytes_is_not_read(run: Path, capsys) -> None:
    """Was: read whole (gigabytes of memory) before failing to parse."""
    sparse(run / "model.json", 2 * GB)
    started = time.perf_counter()
    one_line_error(["evaluate", str(run)], capsys,
                   "model.json: 2,147,483,648 bytes, more than the 16,777,216 mlplab reads for a "
                   "model description")  # fmt: skip
    assert time.perf_counter() - started < 5


def test_a_valid_model_json_padded_past_the_bound_is_refused(run: Path) -> None:
    """The bound is on the bytes, whatever they hold (was: read and accepted)."""
    text = (run / "model.json").read_text()
    (run / "model.json").write_text(text + " " * (16 * 1024**2))
    with pytest.raises(RunError, match=r"model.json: 16,77\d,\d+ bytes, more than the 16,777,216"):
        Run.open(run).model_info()


@pytest.mark.parametrize("name", ["model.json", "model.safetensors", "summary.json",
                                  "metrics.jsonl", "dataset.json"])  # fmt: skip
def test_a_fifo_named_like_a_run_file_never_blocks(run: Path, name: str, capsys) -> None:
    """Was: a FIFO model.json or weights file counted as missing ('training stopped
    before its first epoch'); a reader opening one would wait for a writer forever."""
    (run / name).unlink()
    os.mkfifo(run / name)
    readers = {"model.json": lambda r: r.load_model(), "model.safetensors": lambda r: r.load_model(),
               "summary.json": lambda r: r.summary(), "metrics.jsonl": lambda r: r.metrics(),
               "dataset.json": lambda r: r.dataset_info()}  # fmt: skip
    with pytest.raises(RunError, match=f"{name}: a FIFO \\(named pipe\\), not a regular file"):
        within(10, lambda: readers[name](Run.open(run)))
    rows = within(10, lambda: list_runs(run.parent))
    if name != "dataset.json":  # the listing reads dataset.json only without a summary
        expected = "unreadable" if name not in ("model.safetensors",) else "finished"
        assert [r.status for r in rows] == [expected]


def test_weights_that_are_a_device_are_refused(run: Path, capsys) -> None:
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to("/dev/zero")
    within(10, lambda: one_line_error(["evaluate", str(run)], capsys,
                                      "model.safetensors: a character device, not a regular file"))  # fmt: skip


def test_a_model_json_declaring_more_than_the_weights_hold(run: Path, monkeypatch) -> None:
    """Compared with the weights file's header before anything is built (was: the model of
    model.json was made, and its memory taken, before the weights were found wanting)."""
    edit_model_json(run, lambda info: info["model"].update(hidden=[4096]))
    monkeypatch.setattr(MLP, "__init__", lambda *a, **k: 1 / 0)  # building would fail the test
    with pytest.raises(RunError, match=r"model.safetensors: the weights do not fit the architecture "
                       r"in model.json: wrong shape hidden.0.linear.bias \(16,\) \(expected "
                       r"\(4096,\)\), hidden.0.linear.weight \(16, 64\) \(expected \(4096, 64\)\), "
                       r"output.weight \(10, 16\) \(expected \(10, 4096\)\)$"):  # fmt: skip
        Run.open(run).load_model()


def _header(run: Path) -> tuple[dict[str, Any], bytes]:
    raw = (run / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write(run: Path, header: dict[str, Any], data: bytes, length: int | None = None) -> None:
    text = json.dumps(header).encode()
    prefix = (len(text) if length is None else length).to_bytes(8, "little")
    (run / "model.safetensors").write_bytes(prefix + text + data)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda h, d: (h, d, 2**62), "its header's length 4,611,686,018,427,387,904 does not fit its"),
        (lambda h, d: (h, d[:100], None), "tensor 'hidden.0.linear.weight': ValueError: its bytes lie outside the file"),
        (lambda h, d: ({**h, "output.bias": {**h["output.bias"], "shape": [10**12]}}, d, None),
         "tensor 'output.bias': ValueError: its shape and its bytes disagree"),
        (lambda h, d: ({**h, "output.bias": {**h["output.bias"], "dtype": "EVIL"}}, d, None),
         "tensor 'output.bias': KeyError: 'EVIL'"),
        (lambda h, d: ({**h, "output.bias": {**h["output.bias"], "shape": [True] * 10}}, d, None),
         "tensor 'output.bias': ValueError: shape [True, True"),
    ],
)  # fmt: skip
def test_a_weights_header_that_lies_about_its_bytes(run: Path, mangle, message: str) -> None:
    header, data = _header(run)
    _write(run, *mangle(header, data))
    with pytest.raises(
        RunError, match="model.safetensors: not a readable safetensors file"
    ) as error:
        Run.open(run).load_model()
    assert message in str(error.value)


def test_a_weights_file_larger_than_memory_is_not_loaded(run: Path) -> None:
    """A sparse file of 64 GiB: real bytes by its size, refused by the memory budget."""
    with open(run / "model.safetensors", "r+b") as f:
        f.truncate(64 * GB)
    with pytest.raises(RunError, match=r"model.safetensors would need 64.0 GiB of memory, more than the 256.0 MiB"):  # fmt: skip
        Run.open(run).load_model()


# ----- the other files: summary, metrics, dataset, config, checkpoint --------------------------
def test_a_summary_nested_too_deeply_is_one_unreadable_row(run: Path, capsys) -> None:
    """Was: RecursionError out of `mlplab runs`: the whole listing failed."""
    other = Path(shutil.copytree(run, run.parent / "20260101-000000-other"))
    (run / "summary.json").write_text("{" + '"a":{' * 50_000 + "}" * 50_001)
    with pytest.raises(RunError, match="summary.json: cannot read a run summary \\(nested too deeply\\)"):  # fmt: skip
        Run.open(run).summary()
    rows = {Path(r.path).name: r for r in list_runs(run.parent)}
    assert rows[other.name].status == "finished"
    assert rows[run.name].status == "unreadable"
    assert rows[run.name].problem == "summary.json: cannot read a run summary (nested too deeply)"
    assert main(["runs", str(run.parent)]) == 0


@pytest.mark.parametrize(
    "file, content, problem",
    [
        ("summary.json", {"test_accuracy": "99%"}, "summary.json: test_accuracy must be a number or null; got '99%'"),
        ("summary.json", {"best_epoch": -5}, "summary.json: best_epoch must be a whole number >= 0 or null; got -5"),
        ("summary.json", {"train_seconds": [1] * 10**5}, "summary.json: train_seconds must be a number or null; got [1, 1, 1"),
        ("summary.json", {"dataset": {"a": 1}}, "summary.json: dataset must be a string or null; got {'a': 1}"),
        ("metrics.jsonl", "[1, 2]\n", "metrics.jsonl: line 1 is not an epoch's record (a JSON object)"),
        ("metrics.jsonl", '{"epoch": 1, "val_accuracy": "high"}\n', "metrics.jsonl: line 1: val_accuracy must be a number or null; got 'high'"),
        ("metrics.jsonl", '{"epoch": "1"}\n', "metrics.jsonl: line 1: epoch must be a whole number >= 0 or null; got '1'"),
    ],
)  # fmt: skip
def test_figures_of_the_wrong_kind_make_one_unreadable_row(
    run: Path, file: str, content: Any, problem: str, capsys
) -> None:
    """Was: 'internal error' from the table (formatting '99%' as a percentage), a crash on
    a record that is not an object, or the wrong epoch kept (best_epoch -5)."""
    path = run / file
    if isinstance(content, dict):
        path.write_text(json.dumps({**json.loads(path.read_text()), **content}))
    else:
        path.write_text(content)
    (row,) = list_runs(run.parent)
    assert row.status == "unreadable" and row.problem.startswith(problem[:100])
    assert main(["runs", str(run.parent)]) == 0
    out = capsys.readouterr().out
    assert "unreadable (" in out


def test_a_summary_with_nan_and_infinity_is_listed(run: Path, capsys) -> None:
    """NaN is a number (a run scored on an empty split): shown, sorted and written as such."""
    summary = json.loads((run / "summary.json").read_text())
    summary.update(test_accuracy=float("nan"), train_seconds=float("inf"))
    (run / "summary.json").write_text(json.dumps(summary))
    (row,) = list_runs(run.parent)
    assert (
        row.status == "finished" and row.cells()["test"] == "nan%" and row.cells()["time"] == "infs"
    )
    assert main(["runs", str(run.parent), "--sort", "test"]) == 0
    assert main(["runs", str(run.parent), "--json"]) == 0


def test_metrics_of_a_gigabyte_are_not_read(run: Path, capsys) -> None:
    """A 1 GiB line (sparse): refused by its size, before a byte is read (was: read whole)."""
    sparse(run / "metrics.jsonl", GB)
    with pytest.raises(RunError, match=r"metrics.jsonl: 1,073,741,824 bytes, more than the 16,777,216 mlplab reads for metrics"):  # fmt: skip
        Run.open(run).metrics()
    (row,) = list_runs(run.parent)
    assert row.status == "unreadable" and row.problem.startswith(
        "metrics.jsonl: 1,073,741,824 bytes"
    )


def test_a_real_line_of_seventeen_megabytes_is_refused(run: Path) -> None:
    (run / "metrics.jsonl").write_text('{"epoch": 1, "pad": "' + "x" * 17 * 1024**2 + '"}\n')
    with pytest.raises(
        RunError, match=r"metrics.jsonl: 17,825,\d+ bytes, more than the 16,777,216"
    ):
        Run.open(run).metrics()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(classes=5), "dataset.json: classes must be a list of names; got 5"),
        (lambda d: d.update(image_shape="1x8x8"), "dataset.json: image_shape must be 3 whole numbers >= 1; got '1x8x8'"),
        (lambda d: d.update(name=None), "dataset.json: name must be a string; got None"),
        (lambda d: d.update(reload={"dataset": "digits", "download": True}),
         "dataset.json: reload has an unknown key 'download'; it may hold dataset, format"),
        (lambda d: d.update(reload={"dataset": "digits", "split_seed": "0"}),
         "dataset.json: reload.split_seed must be a whole number >= 0 or null; got '0'"),
        (lambda d: d.update(reload=["digits"]), "dataset.json: reload must be an object naming a dataset; got ['digits']"),
    ],
)  # fmt: skip
def test_a_hostile_dataset_json_is_one_line(run: Path, change, message: str, capsys) -> None:
    """Was: 'internal error' (len() of an int; load_dataset given download twice)."""
    info = json.loads((run / "dataset.json").read_text())
    change(info)
    (run / "dataset.json").write_text(json.dumps(info))
    one_line_error(["evaluate", str(run)], capsys, message)


def test_a_config_with_yaml_tags_runs_nothing(run: Path, tmp_path: Path, capsys) -> None:
    """config.yaml stays YAML's safe subset: a tag is refused, its code never runs."""
    marker = tmp_path / "executed"
    (run / "config.yaml").write_text(
        f"model: !!python/object/apply:os.system ['touch {marker}']\n"
        "train: !!python/object/new:subprocess.Popen [['touch', '" + str(marker) + "']]\n"
    )
    one_line_error(["evaluate", str(run)], capsys, "could not determine a constructor for the tag")
    (row,) = list_runs(run.parent)
    assert row.status == "unreadable" and "constructor for the tag" in row.problem
    assert not marker.exists()


def test_a_config_of_two_gigabytes_is_not_read(run: Path, capsys) -> None:
    """Was: read whole before YAML refused it."""
    sparse(run / "config.yaml", 2 * GB)
    one_line_error(["evaluate", str(run)], capsys,
                   "config.yaml: 2,147,483,648 bytes, more than the 16,777,216 mlplab reads for a config")  # fmt: skip
    (row,) = list_runs(run.parent)
    assert row.status == "unreadable"


def test_a_yaml_alias_bomb_is_one_short_line(run: Path, capsys) -> None:
    """Aliases repeat a list without copying it, until a message prints it whole."""
    levels = ['&a ["x","x","x","x","x","x","x","x","x","x"]']
    levels += [f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(9)]
    (run / "config.yaml").write_text("model:\n  hidden: [" + ", ".join(levels) + "]\n")
    started = time.perf_counter()
    err = one_line_error(["evaluate", str(run)], capsys, "model.hidden")
    assert len(err) < 2000 and time.perf_counter() - started < 5


# ----- checkpoint.pt ---------------------------------------------------------------------------
def test_a_fifo_checkpoint_never_blocks_a_resume(run: Path) -> None:
    (run / "checkpoint.pt").unlink()
    os.mkfifo(run / "checkpoint.pt")
    with pytest.raises(RunError, match=r"checkpoint.pt: a FIFO \(named pipe\), not a regular file"):
        within(10, lambda: Run.open(run).load_checkpoint())


def test_a_checkpoint_larger_than_memory_is_not_loaded(run: Path) -> None:
    with open(run / "checkpoint.pt", "r+b") as f:
        f.truncate(64 * GB)
    with pytest.raises(RunError, match=r"checkpoint.pt would need 64.0 GiB of memory"):
        Run.open(run).load_checkpoint()


def test_a_checkpoint_member_declaring_more_than_it_stores(run: Path) -> None:
    """A zip member's declared size is what torch allocates before reading it."""
    raw = bytearray((run / "checkpoint.pt").read_bytes())
    with zipfile.ZipFile(run / "checkpoint.pt") as archive:
        member = max(archive.infolist(), key=lambda m: m.file_size)
    central = raw.index(b"PK\x01\x02")  # the central directory's entries, in turn
    while raw[central + 46 : central + 46 + len(member.filename)] != member.filename.encode():
        central = raw.index(b"PK\x01\x02", central + 4)
    raw[central + 24 : central + 28] = (2**31).to_bytes(4, "little")  # uncompressed size
    (run / "checkpoint.pt").write_bytes(bytes(raw))
    with pytest.raises(RunError, match=r"checkpoint.pt: not a readable mlplab checkpoint \(member .* declares "
                       r"2,147,483,648 bytes and stores"):  # fmt: skip
        Run.open(run).load_checkpoint()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(epoch="2"), "checkpoint.pt: epoch must be a whole number >= 0; got '2'"),
        (lambda s: s.update(step=True), "checkpoint.pt: step must be a whole number >= 0; got True"),
        (lambda s: s.update(threads=10**6), "checkpoint.pt: threads must be a whole number from 1 to 4096; got 1000000"),
        (lambda s: s.update(history="x"), "checkpoint.pt: history must be a list of epoch records; got 'x'"),
        (lambda s: s.update(epoch=1), "checkpoint.pt: epoch is 1 but the history has 2 epochs"),
    ],
)  # fmt: skip
def test_a_checkpoint_of_the_wrong_kinds_is_refused_before_a_resume(run: Path, change, message: str) -> None:  # fmt: skip
    """Was: 'internal error' comparing a string epoch with the planned epochs; a million
    threads asked of torch."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    change(state)
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(RunError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resume(run, epochs=3)


# ----- the listing -----------------------------------------------------------------------------
def test_links_to_folders_are_not_searched(run: Path, tmp_path: Path) -> None:
    """Was: a link to / walked the machine four levels down (/proc, /sys, ...)."""
    elsewhere = tmp_path / "elsewhere" / "deep"
    shutil.copytree(run, elsewhere / "20260101-000000-hidden")
    (run.parent / "root").symlink_to("/")
    (run.parent / "elsewhere").symlink_to(tmp_path / "elsewhere")
    (run.parent / "20260202-000000-linked").symlink_to(elsewhere / "20260101-000000-hidden")
    started = time.perf_counter()
    rows = list_runs(run.parent)
    assert time.perf_counter() - started < 5
    assert sorted(Path(r.path).name for r in rows) == ["20260202-000000-linked", run.name]


def test_a_folder_that_cannot_be_read_is_skipped(run: Path, monkeypatch) -> None:
    (run.parent / "locked").mkdir()
    iterdir = Path.iterdir

    def refuse(self: Path):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert [r.status for r in list_runs(run.parent)] == ["finished"]


def test_names_with_control_characters_are_escaped(run: Path, capsys) -> None:
    """A folder named with a terminal escape code and a newline (was: echoed raw, so a
    listing could clear the screen or forge rows)."""
    evil = run.parent / "20260101-000000-\x1b[2Jevil\nfinished"
    shutil.copytree(run, evil)
    summary = json.loads((evil / "summary.json").read_text())
    summary["dataset"] = "digits\x1b]0;owned\x07"
    (evil / "summary.json").write_text(json.dumps(summary))
    assert main(["runs", str(run.parent)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and len(out.splitlines()) == 3
    assert "\\x1b[2Jevil\\nfinished" in out and "digits\\x1b]0;owned\\x07" in out
    assert main(["runs", str(run.parent), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # JSON escapes them itself; the values are exact
    assert {r["path"] for r in rows} == {str(run), str(evil)}
    assert "\x1b" not in runs_table(list_runs(run.parent), "markdown", root=run.parent)
    assert to_json(list_runs(run.parent)).count("\\u001b") == 2  # the path, the dataset


def test_a_folder_stamped_with_no_date_is_listed(run: Path) -> None:
    """Was: ValueError (month 13) out of the listing."""
    odd = run.parent / "20261399-999999-odd"
    shutil.copytree(run, odd)
    rows = {Path(r.path).name: r for r in list_runs(run.parent)}
    assert rows[odd.name].status == "finished" and rows[odd.name].date[:4].isdigit()


def test_tensorboard_events_skip_a_damaged_run(run: Path, tmp_path: Path, capsys) -> None:
    """One finished run whose weights are damaged: said on stderr, the others written."""
    pytest.importorskip("tensorboard")
    bad = Path(shutil.copytree(run, run.parent / "20260101-000000-bad"))
    (bad / "model.safetensors").write_bytes(b"\x00" * 8)
    assert main(["runs", str(run.parent), "--tensorboard", str(tmp_path / "tb")]) == 0
    err = capsys.readouterr().err
    assert (
        "mlplab: warning: " in err and "model.safetensors: not a readable safetensors file" in err
    )
    assert (tmp_path / "tb" / run.name).is_dir()


def test_a_run_directory_that_is_a_link_to_root(tmp_path: Path, capsys) -> None:
    (tmp_path / "run").symlink_to("/")
    one_line_error(
        ["evaluate", str(tmp_path / "run")], capsys, "is not a run directory (no config.yaml)"
    )


def test_a_hostile_run_among_good_ones_leaves_the_listing_whole(run: Path, capsys) -> None:
    """Every hostile file at once, in one run each: the good run is listed beside them."""
    cases: dict[str, Callable[[Path], None]] = {
        "deep": lambda r: (r / "metrics.jsonl").write_text("[" * 100_000 + "\n"),
        "huge": lambda r: sparse(r / "model.json", 2 * GB),
        "fifo": lambda r: ((r / "summary.json").unlink(), os.mkfifo(r / "summary.json")),
        "tag": lambda r: (r / "config.yaml").write_text("run: !!python/name:os.system\n"),
        "types": lambda r: edit_model_json(r, lambda i: i["model"].update(hidden=[True])),
    }
    for name, damage in cases.items():
        damage(Path(shutil.copytree(run, run.parent / f"20260101-000000-{name}")))
    rows = within(30, lambda: list_runs(run.parent))
    statuses = {Path(r.path).name.split("-")[-1]: r.status for r in rows}
    assert statuses == {**dict.fromkeys(cases, "unreadable"), "good": "finished"}
    assert within(30, lambda: main(["runs", str(run.parent)])) == 0


# ----- fuzzing: any JSON in any place -----------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
MODEL_KEYS = ["kind", "input_shape", "hidden", "classes", "activation", "dropout", "head", "init",
              "crop", "deskew", "center", "tta"]  # fmt: skip


@pytest.mark.fuzz
@given(
    place=st.sampled_from(["model", "normalization", "classes", "task", *MODEL_KEYS]), value=JSON
)
def test_any_value_anywhere_in_model_json_loads_or_is_one_run_error(trained: Path, tmp_path: Path,
                                                                   place: str, value: Any) -> None:  # fmt: skip
    """Outcome: a model, or one RunError; never another exception, never a second line."""
    run = tmp_path / "fuzz-run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(trained, run)
    info = json.loads((run / "model.json").read_text())
    (info["model"] if place in MODEL_KEYS else info)[place] = value
    (run / "model.json").write_text(json.dumps(info))
    try:
        Run.open(run).load_model()
    except RunError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1500
    rows = list_runs(run)
    assert len(rows) == 1 and runs_table(rows)


@pytest.mark.fuzz
@given(file=st.sampled_from(["summary.json", "metrics.jsonl", "dataset.json"]), value=JSON,
       key=st.sampled_from(["test_accuracy", "best_epoch", "epoch", "val_accuracy", "train_seconds",
                            "dataset", "epochs_planned", "classes", "image_shape", "reload"]))  # fmt: skip
def test_any_value_in_a_runs_figures_is_listed(trained: Path, tmp_path: Path, file: str,
                                               value: Any, key: str) -> None:  # fmt: skip
    """The listing shows every run, whatever its summary, metrics or dataset.json hold."""
    run = tmp_path / "fuzz-run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(trained, run)
    path = run / file
    if file == "metrics.jsonl":
        records = [{**json.loads(line), key: value} for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    (row,) = list_runs(run)
    assert row.status in ("finished", "unreadable")
    assert runs_table([row]) and runs_table([row], "markdown") and to_json([row])
    try:
        Run.open(run).dataset_info()
    except RunError as exc:
        assert "\n" not in str(exc)
