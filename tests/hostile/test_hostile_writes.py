"""Never destroy: every output goes only where it was asked, only over what may be replaced,
and a full or read-only disk ends in one line with no temporary file left.

Written as a careless or hostile user would try it: export over an unrelated file, a FIFO,
a device, a symbolic link, the run's own weights, another run's folder; pages and plots
pointed at other people's files; a disk that is really full (a 200 KiB tmpfs) or really
read-only (a tmpfs remounted read-only, an immutable folder), which need root and skip
with the reason otherwise; each also has a monkeypatched twin that always runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch
from PIL import Image
from shipping import tiny_run

import mlplab.files.atomic
import mlplab.inference.export as mlplab_export
import mlplab.run.directory
from mlplab import MLP, Normalization, Run, RunError
from mlplab.cli import main
from mlplab.errors import ConfigError, WriteError
from mlplab.inference.export import export

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


# ----- fixtures: a run, a tiny disk, a read-only disk, an immutable folder -----------------
@pytest.fixture
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run, shared with the other shipping tests (trained once per session)."""
    return tiny_run(tmp_path_factory.getbasetemp() / "shipping")


def _mount_tmpfs(folder: Path, size: str) -> None:
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root (run the suite as root to test a real full disk)"
        pytest.skip(reason=why)
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(reason=f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 200 KiB tmpfs that a filler file has filled to the last byte."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "200k")
    try:
        with contextlib.suppress(OSError), open(disk / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs remounted read-only (root ignores permission bits, not this)."""
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "1m")
    try:
        (disk / "old.pt").write_bytes(b"old")
        done = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(reason=f"remounting read-only is not permitted here: {done.stderr!r}")
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def immutable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with the immutable attribute (chattr +i): not even root may add files."""
    folder = tmp_path / "immutable"
    folder.mkdir()
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(reason=f"chattr +i is not possible here (not root, or the file system has no "
                    f"such attribute): {done.stderr.strip()}")  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def hidden(folder: Path) -> list[str]:
    """Temporary (hidden) files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def loads(run: Path) -> bool:
    Run.open(run).load_model()
    return True


# ----- export: what it may replace ----------------------------------------------------------
def test_export_refuses_an_existing_file_unless_force(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "thesis.pdf"
    precious.write_bytes(b"%PDF my thesis")
    assert main(["export", str(run), "--out", str(precious)]) == 2
    assert one_line(capsys) == (
        f"mlplab: error: refusing to replace {precious}: it already exists (a file of 14 bytes); "
        "pass --force to replace it, or choose another --out"
    )
    assert precious.read_bytes() == b"%PDF my thesis" and hidden(tmp_path) == []
    assert not (tmp_path / "export.json").exists()  # refused before any work or any write
    assert main(["export", str(run), "--out", str(precious), "--force"]) == 0
    assert torch.jit.load(str(precious))(torch.rand(2, 1, 8, 8))[0].shape == (2, 4)


def test_export_replaces_its_own_default_file_without_force(run: Path) -> None:
    first = export(run, "torchscript")
    assert first.path == run / "model.torchscript.pt"
    again = export(run, "torchscript")  # an earlier export at the default path: replaced
    assert again.path == first.path
    assert export(run, "torchscript", f"{run}/").path == first.path  # the same file, named
    elsewhere = run.parent / "elsewhere.pt"
    elsewhere.unlink(missing_ok=True)
    export(run, "torchscript", elsewhere)
    with pytest.raises(WriteError, match=r"refusing to replace .*elsewhere\.pt: it already exists"):
        export(run, "torchscript", elsewhere)  # a second export to a path the user named: --force
    assert export(run, "torchscript", elsewhere, force=True).path == elsewhere


@pytest.mark.parametrize("force", [False, True])
def test_export_never_replaces_what_is_not_a_regular_file(
    run: Path, tmp_path: Path, force: bool
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(WriteError, match=rf"^refusing to write {fifo}: it is a FIFO \(named pipe\); "
                       r"mlplab replaces only regular files, even with --force: choose another --out$"):  # fmt: skip
        export(run, out=fifo, force=force)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        device = Path("/dev/null")  # not root: the real one (never touched either way)
    with pytest.raises(WriteError, match=r"it is a character device; mlplab replaces only regular"):
        export(run, out=device, force=force)
    assert stat.S_ISCHR(device.lstat().st_mode)
    target = tmp_path / "target.pt"
    target.write_bytes(b"keep")
    (tmp_path / "link.pt").symlink_to(target)
    with pytest.raises(
        WriteError, match=r"it is a symbolic link to .*target\.pt \(a file of 4 bytes\)"
    ):
        export(run, out=tmp_path / "link.pt", force=force)
    assert (tmp_path / "link.pt").is_symlink() and target.read_bytes() == b"keep"
    (tmp_path / "folder" / "model.torchscript.pt").mkdir(parents=True)  # where the file goes
    with pytest.raises(WriteError, match=r"model\.torchscript\.pt: it is a folder; mlplab repl"):
        export(run, "torchscript", tmp_path / "folder", force=force)
    assert hidden(tmp_path) == [] and not (tmp_path / "export.json").exists()


@pytest.mark.parametrize("name", ["model.safetensors", "model.json", "config.yaml", "metrics.jsonl",
                                  "summary.json", "checkpoint.pt", "dataset.json", "train.log"])  # fmt: skip
def test_export_never_writes_over_a_runs_own_files(
    run: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (run / name).read_bytes() if (run / name).exists() else None
    assert main(["export", str(run), "--out", str(run / name), "--force"]) == 2
    assert one_line(capsys) == (
        f"mlplab: error: refusing to write {run / name}: {name} is one of the own files of the "
        f"run directory {run}, which no output may replace or create, even with --force: "
        "choose another --out"
    )
    after = (run / name).read_bytes() if (run / name).exists() else None
    assert after == before and loads(run)


def test_export_over_a_hard_link_to_the_weights_leaves_the_run_intact(
    run: Path, tmp_path: Path
) -> None:
    """A guard (already true before): the rename replaces the name, never the linked bytes."""
    weights = (run / "model.safetensors").read_bytes()
    os.link(run / "model.safetensors", tmp_path / "weights-link")
    export(run, out=tmp_path / "weights-link", force=True)  # the user's own name: allowed
    assert (run / "model.safetensors").read_bytes() == weights and loads(run)
    assert (tmp_path / "weights-link").read_bytes() != weights


def test_export_does_not_go_into_another_runs_directory(run: Path, tmp_path: Path) -> None:
    # the other run is this test's own: the cached ones are exported into by other tests
    other = tiny_run.__wrapped__(run.parent.parent, "log_softmax")  # a new folder beside run
    for out in (f"{other}/", other / "model.pt", run / ".." / other.name / "model.onnx"):
        with pytest.raises(WriteError, match=rf"{other.name} is another run's directory, and an "
                           rf"export of {run} there would pass for that run's model; choose"):  # fmt: skip
            export(run, out=out, force=True)
    assert not {"model.pt", "model.onnx", "model.torchscript.pt", "export.json"} & {
        p.name for p in other.iterdir()
    }
    # '..' and relative paths go where they say (here: beside the runs)
    os.chdir(run)
    assert export(run, out="../../beside.pt").path.resolve() == (run / "../../beside.pt").resolve()


def test_export_leaves_a_foreign_export_json_alone(run: Path, tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text('{"my": "settings"}')  # the user's, same name
    with pytest.raises(WriteError, match=rf"^refusing to write {tmp_path / 'model.onnx'}: export "
                       r"records its parity check beside it in .*export\.json, and what is there "
                       r"\(a file of 18 bytes\) is not an export record; choose another --out folder$"):  # fmt: skip
        export(run, "onnx", tmp_path / "model.onnx")
    assert (tmp_path / "export.json").read_text() == '{"my": "settings"}'
    assert not (tmp_path / "model.onnx").exists()
    os.mkfifo(tmp_path / "sub.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "export.json").symlink_to(tmp_path / "sub.json")
    with pytest.raises(
        WriteError, match=r"what is there \(a symbolic link to .*sub\.json \(a FIFO"
    ):
        export(run, out=tmp_path / "sub" / "m.pt")
    # an export record of mlplab is updated, entry by entry
    result = export(run, out=tmp_path / "ok" / "a.pt")
    export(run, out=tmp_path / "ok" / "b.pt")
    record = json.loads((tmp_path / "ok" / "export.json").read_text())
    assert sorted(record) == ["a.pt", "b.pt"] and record["a.pt"]["images"] == result.images


def test_export_names_too_long_are_one_line_and_long_ones_work(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(run), "--out", str(tmp_path / ("x" * 300 + ".pt"))]) == 2
    assert one_line(capsys).endswith(
        "a name in it is too long for the file system (the longest has 303 bytes; 255 is the "
        "usual limit); choose another --out"
    )
    long = tmp_path / ("y" * 250 + ".pt")  # fits in a name; its temporary file must fit too
    assert export(run, out=long).path == long and long.is_file() and hidden(tmp_path) == []


def test_export_refuses_an_onnx_file_over_2_gib_before_any_work(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(mlplab_export, "ONNX_MAX_BYTES", 100)  # as if the weights took > 2 GiB
    with pytest.raises(mlplab_export.ExportError, match=r"one ONNX file holds less than 2 GiB: "
                       r"export it as torchscript \(--format torchscript\)$"):  # fmt: skip
        export(run, "onnx", run.parent / "big.onnx")
    assert not (run.parent / "big.onnx").exists()


# ----- export: full and read-only disks ----------------------------------------------------
@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_export_on_a_really_full_disk(
    run: Path, full_disk: Path, format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if format == "onnx":
        pytest.importorskip("onnxruntime")
    out = full_disk / f"model.{format}"
    assert main(["export", str(run), "--format", format, "--out", str(out)]) == 1  # the machine
    assert one_line(capsys) == (
        f"mlplab: error: no space left on device writing {out}: the disk mounted at {full_disk} "
        "has 0 bytes free; free space on that disk or choose another --out"
    )
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no temporary file left


def test_export_full_disk_monkeypatched(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(module, file, **kwargs) -> None:
        file.write(b"half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch.jit, "save", full)
    out = tmp_path / "m.pt"
    with pytest.raises(WriteError, match=rf"^no space left on device writing {out}: the disk "
                       r"mounted at /\S* has .* free; free space on that disk or choose another --out$"):  # fmt: skip
        export(run, out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_export_into_a_read_only_disk(
    run: Path, read_only_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = read_only_disk / "new.pt"
    assert main(["export", str(run), "--out", str(out)]) == 1  # the machine refused
    assert one_line(capsys) == (
        f"mlplab: error: cannot write {out}: the disk mounted at {read_only_disk} is read-only; "
        "choose another --out"
    )
    assert main(["export", str(run), "--out", str(read_only_disk / "sub" / "m.pt")]) == 1
    assert "Read-only file system" in one_line(capsys)


def test_predict_outputs_on_a_read_only_disk_exit_1(
    run: Path, read_only_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--show and --explain on a read-only disk: the system refused, exit 1 (they said 2)."""
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    for flag, out, where in (
        ("--show", read_only_disk, read_only_disk / "a.png"),
        ("--show", read_only_disk / "show", read_only_disk / "show"),
        ("--explain", read_only_disk / "ex", read_only_disk / "ex"),
    ):
        assert main(["predict", str(run), str(image), flag, str(out)]) == 1
        assert one_line(capsys) == (
            f"mlplab: error: cannot write {where}: the disk mounted at {read_only_disk} is "
            f"read-only; choose another {flag}{' folder' if flag == '--show' else ''}"
        )


def test_export_into_an_immutable_folder(
    run: Path, immutable_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = immutable_folder / "m.pt"
    assert main(["export", str(run), "--out", str(out)]) == 1  # was torch's "internal error"
    assert one_line(capsys) == (
        f"mlplab: error: cannot write {out}: permission denied ({immutable_folder} or the file is "
        "not writable by this user, or is immutable); choose another --out"
    )
    assert list(immutable_folder.iterdir()) == []


def test_export_permission_denied_monkeypatched(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def denied(path, flags, mode=0o777, **kwargs):
        if str(path).startswith(str(tmp_path / ".m.pt.")):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(mlplab.files.atomic.os, "open", denied)
    with pytest.raises(WriteError, match=r"^cannot write .*m\.pt: permission denied \("):
        export(run, out=tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


# ----- the run directory: never overwritten, never escaped, saves fail in one line ------------
def test_two_runs_in_the_same_second_never_share_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlplab.run.directory.time, "strftime", lambda fmt: "20260101-000000")
    (tmp_path / "20260101-000000-x").mkdir()  # a pre-existing folder: never reused
    (tmp_path / "20260101-000000-x-2").write_text("a file")  # nor a file or a link's name
    (tmp_path / "20260101-000000-x-3").symlink_to(tmp_path / "elsewhere")
    made: list[Path] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        made.append(Run.create(tmp_path, "x").path)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(made) == sorted(tmp_path / f"20260101-000000-x-{i}" for i in range(4, 12))
    assert all(list(p.iterdir()) == [] for p in made) and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "a\\b", "new\nline", "\x1b[31mred"])
def test_a_run_name_cannot_escape_the_runs_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(RunError, match=r"^run name .* is not a plain folder name; use letters"):
        Run.create(tmp_path / "runs", name)
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "runs"])
    assert not (tmp_path / "escape").exists()


def test_run_folder_on_a_read_only_disk_is_one_line(read_only_disk: Path) -> None:
    """The system's refusal: a WriteError that exits 1, naming the read-only disk."""
    with pytest.raises(WriteError, match=rf"^cannot write {re.escape(str(read_only_disk))}/runs: "
                       "the disk mounted at .* is read-only; choose another --runs-dir$") as refused:  # fmt: skip
        Run.create(read_only_disk / "runs", "x")
    assert refused.value.exit_code == 1
    with pytest.raises(WriteError, match=r"^cannot write .*-x: the disk mounted at .* is read-only; "
                       "choose another --runs-dir or a shorter --name$") as refused:  # fmt: skip
        Run.create(read_only_disk, "x")
    assert refused.value.exit_code == 1


def test_run_saves_on_a_really_full_disk(full_disk: Path) -> None:
    run = Run(full_disk)
    state = {"weights": torch.zeros(100_000)}  # 400 kB: more than the disk
    with pytest.raises(WriteError, match=r"^no space left on device writing .*checkpoint\.pt"):
        run.save_checkpoint(state)  # torch.save to a path aborted the process on a full disk
    model = MLP((1, 64, 64), [64], 4)  # 1 MB of weights
    normalization = Normalization.fit(torch.zeros(2, 1, 64, 64, dtype=torch.uint8) + 9)
    with pytest.raises(WriteError, match=r"^no space left on device writing .*model\.safetensors"):
        run.save_model(model, normalization, ("a", "b", "c", "d"))  # was a SafetensorError
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_run_saves_full_disk_monkeypatched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", lambda state, file: file.write(b"x") and full())
    with pytest.raises(WriteError, match=r"^no space left on device writing .*checkpoint\.pt: "):
        Run(tmp_path).save_checkpoint({"a": torch.zeros(3)})
    assert list(tmp_path.iterdir()) == []


# ----- pages, plots, reports: only their own earlier files ------------------------------------
def test_explore_and_compare_refuse_other_files_before_any_work(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import make_dataset

    from mlplab.report.compare import compare
    from mlplab.report.explore import explore

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "explore.html").write_text("<html>my notes</html>")
    (notes / "compare.html").write_text("<html>my notes</html>")
    started = time.perf_counter()
    with pytest.raises(WriteError, match=rf"^refusing to replace {notes / 'explore.html'}: it "
                       r"already exists \(a file of 21 bytes\) and is not an earlier mlplab page; "
                       "choose another --out$"):  # fmt: skip
        explore(make_dataset(), notes)
    with pytest.raises(WriteError, match=r"compare\.html: it already exists .* and is not an "
                       "earlier mlplab page; choose another --out$"):  # fmt: skip
        compare([run], notes)
    assert time.perf_counter() - started < 5  # refused before drawing anything
    (notes / "explore.html").unlink()
    (notes / "figures").mkdir()
    (notes / "figures" / "explore-samples.png").write_bytes(b"\x89PNG\r\n\x1a\nmine")
    with pytest.raises(WriteError, match=r"explore-samples\.png: it already exists .* and is not "
                       r"part of an earlier explore\.html \(none is beside it\)"):  # fmt: skip
        explore(make_dataset(), notes)
    (tmp_path / "plain").write_text("a file, not a folder")
    assert main(["compare", str(run), "--out", str(tmp_path / "plain")]) == 2
    assert "it is a file of 20 bytes, not a folder; choose another --out" in one_line(capsys)
    (tmp_path / "fifo-out-dir").mkdir()
    os.mkfifo(tmp_path / "fifo-out-dir" / "compare.html")
    assert main(["compare", str(run), "--out", str(tmp_path / "fifo-out-dir")]) == 2
    assert (
        "compare.html: it is a FIFO (named pipe); mlplab replaces only regular files"
        in one_line(capsys)
    )
    assert (notes / "compare.html").read_text() == "<html>my notes</html>"


def test_report_refuses_a_fifo_or_link_planted_in_the_run(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplab.report.run_report import report

    os.mkfifo(run / "report.html")  # a hostile user of a shared runs folder
    try:
        with pytest.raises(WriteError, match=r"report\.html: it is a FIFO \(named pipe\); mlplab "
                           "replaces only regular files: write somewhere else$"):  # fmt: skip
            report(run)
        assert stat.S_ISFIFO((run / "report.html").lstat().st_mode)
    finally:
        (run / "report.html").unlink()
    (run / "figures").mkdir(exist_ok=True)
    (run / "figures" / "curves.png").symlink_to(tmp_path / "victim.png")
    try:
        with pytest.raises(
            WriteError, match=r"curves\.png: it is a symbolic link to .*victim\.png"
        ):
            report(run)
    finally:
        (run / "figures" / "curves.png").unlink()


def test_plot_replaces_only_a_png_and_never_a_run_file(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("my notes")
    assert main(["plot", "curves", str(run), "--out", str(tmp_path / "notes.txt")]) == 2
    assert one_line(capsys) == (
        f"mlplab: error: refusing to replace {tmp_path / 'notes.txt'}: it already exists (a file "
        "of 8 bytes) and is not a figure mlplab wrote; choose another --out"
    )
    assert main(["plot", "curves", str(run), "--out", str(run / "model.safetensors")]) == 2
    assert "model.safetensors is one of the own files of the run directory" in one_line(capsys)
    assert (tmp_path / "notes.txt").read_text() == "my notes" and loads(run)
    # a PNG that is not mlplab's (a photo, a training image) is kept, bit for bit
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(photo)
    before = photo.read_bytes()
    assert main(["plot", "curves", str(run), "--out", str(photo)]) == 2
    assert one_line(capsys) == (
        f"mlplab: error: refusing to replace {photo}: it already exists (a file of "
        f"{len(before)} bytes) and is not a figure mlplab wrote; choose another --out"
    )
    assert photo.read_bytes() == before
    figure = tmp_path / "curves.png"  # an earlier figure of mlplab's is replaced
    assert main(["plot", "curves", str(run), "--out", str(figure)]) == 0
    assert main(["plot", "curves", str(run), "--out", str(figure)]) == 0  # again: replaced
    assert figure.stat().st_size > 1000


def test_tensorboard_deletes_only_its_own_event_files(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from mlplab.report.tensorboard import write_events

    logs = tmp_path / "logs"  # another tool's TensorBoard folder
    logs.mkdir()
    theirs = logs / "events.out.tfevents.1700000000.host.1.0"
    theirs.write_bytes(b"their curves")
    write_events(run, logs, samples=0)
    write_events(run, logs, samples=0)  # again: our first file is replaced, theirs kept
    ours = sorted(p.name for p in logs.iterdir() if p.name.endswith(".mlplab"))
    assert theirs.read_bytes() == b"their curves" and len(ours) == 1
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match=r"file: it is a file of 1 bytes, not a folder"):
        write_events(run, tmp_path / "file", samples=0)


def test_lr_find_outputs_replace_only_earlier_ones(tmp_path: Path) -> None:
    from mlplab.report.lr_find import check_out, save_lr_find
    from mlplab.training.lr_find import LRFind

    (tmp_path / "lr.json").write_text('{"my": "data"}')
    with pytest.raises(WriteError, match=r"lr\.json: it already exists \(a file of 14 bytes\) and "
                       "is not the numbers of an earlier lr-find; choose another --out$"):  # fmt: skip
        check_out(tmp_path / "lr.png")
    with pytest.raises(ConfigError, match=r"the plot and its numbers .* would be one file"):
        check_out(tmp_path / "lr.json")
    result = LRFind(lrs=[1e-3, 1e-2], losses=[1.0, 0.5], smoothed=[1.0, 0.7], suggestion=1e-3,
                    method="minimum/10", steepest=None, minimum=1e-2, stopped="done",
                    setup={"dataset": "d", "model": "m"})  # fmt: skip
    pytest.importorskip("matplotlib")
    with pytest.raises(WriteError, match="is not the numbers of an earlier lr-find"):
        save_lr_find(result, tmp_path / "lr.png")
    assert (tmp_path / "lr.json").read_text() == '{"my": "data"}'
    png, data = save_lr_find(result, tmp_path / "new.png")
    assert check_out(png) == (png, data)  # an earlier lr-find's files may be replaced
    save_lr_find(result, png)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "photo.png")  # not mlplab's
    with pytest.raises(WriteError, match=r"photo\.png: .* is not a figure mlplab wrote"):
        check_out(tmp_path / "photo.png")


def test_compare_refuses_its_out_before_printing_the_tables(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed the whole 24-line table, then refused --out."""
    (tmp_path / "plain").write_text("a file, not a folder")
    assert main(["compare", str(run), "--out", str(tmp_path / "plain")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "not a folder" in captured.err


# ----- training onto a full disk: the checkpoint's zip writer -------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An empty 300 KiB tmpfs: room for a run's small files, not for its checkpoint."""
    disk = tmp_path / "small"
    _mount_tmpfs(disk, "300k")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _train_digits(runs: Path) -> int:
    return main(["train", "--dataset", "digits", "--epochs", "1", "--threads", "1",
                 "--runs-dir", str(runs)])  # fmt: skip


def test_training_onto_a_really_full_disk(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: "internal error: RuntimeError: [enforce fail at inline_container.cc:672] .
    # unexpected pos": torch's zip writer, closing the archive, hid the OSError (rc 1)
    assert _train_digits(small_disk) == 1  # the machine refused
    assert re.match(r"^mlplab: error: no space left on device writing .*/checkpoint\.pt: the "
                    rf"disk mounted at {small_disk} has .* free; ", one_line(capsys))  # fmt: skip
    assert list(small_disk.iterdir()) == []  # no run folder, no temporary file


class _FullAfter:
    """A file whose writes fail with ENOSPC once ``room`` bytes are written (a disk filling)."""

    def __init__(self, file: BinaryIO, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data: bytes) -> int:
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.file, name)

    def __enter__(self) -> _FullAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def test_training_onto_a_full_disk_monkeypatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FullAfter(fdopen(fd, mode), 100_000))
    with pytest.raises(WriteError, match=r"^no space left on device writing .*checkpoint\.pt: "):
        Run(tmp_path).save_checkpoint({"weights": torch.zeros(100_000)})  # the real torch.save
    assert list(tmp_path.iterdir()) == []
    runs = tmp_path / "runs"
    assert _train_digits(runs) == 1  # its small files fit, the 0.5 MB checkpoint does not
    assert re.match(r"^mlplab: error: no space left on device writing .*/checkpoint\.pt: ",
                    one_line(capsys))  # fmt: skip
    assert list(runs.iterdir()) == []


def test_export_and_card_never_take_each_others_files(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export --out RUN/export.json --force` replaced the parity record with the model (and
    every later export refused to run); `--out RUN/README.md` the card; `card --out
    RUN/export.json --force` the record."""
    import shutil

    from mlplab.run.card import write_card

    run = Path(shutil.copytree(run, tmp_path / "run"))  # the shared run stays as it is

    assert main(["export", str(run), "--format", "torchscript"]) == 0  # the record exists
    capsys.readouterr()
    record = (run / "export.json").read_bytes()
    for name, what in (
        ("export.json", "export's parity record, written beside the model file"),
        ("README.md", "the run's model card"),
    ):
        out = run / name
        assert main(["export", str(run), "--format", "torchscript", "--out", str(out), "--force"]) == 2  # fmt: skip
        assert one_line(capsys) == (
            f"mlplab: error: refusing to write {out}: {name} is {what}, not a place for a model; "
            "give the model file another name (choose another --out)"
        )
    with pytest.raises(WriteError, match=r"export\.json is where export records its parity"):
        write_card(run, out=run / "export.json", force=True)
    assert (run / "export.json").read_bytes() == record
    assert main(["export", str(run), "--format", "torchscript"]) == 0  # still works


def test_a_dotdot_through_a_missing_folder_is_refused(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RUN/zz/../summary.json was nothing to lstat while zz did not exist: plot wrote its PNG
    over the run's summary.json (and compare, explore over a user's pages)."""
    summary = (run / "summary.json").read_bytes()
    out = run / "zz" / ".." / "summary.json"
    assert main(["plot", "curves", str(run), "--out", str(out)]) == 2
    assert one_line(capsys) == (
        f"mlplab: error: refusing to write {out}: its '..' climbs out of {run / 'zz'}, which "
        "does not exist (the write would make it, then land beside it); name the path without "
        "'..' through a missing folder: choose another --out"
    )
    assert (run / "summary.json").read_bytes() == summary and not (run / "zz").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "compare.html").write_text("mine")
    assert main(["compare", str(run), "--out", str(tmp_path / "nd" / ".." / "mine")]) == 2
    assert "climbs out of" in one_line(capsys)
    assert (mine / "compare.html").read_text() == "mine"
    (tmp_path / "sub").mkdir()  # a '..' through folders that exist is fine
    assert main(["plot", "curves", str(run), "--out", str(tmp_path / "sub" / ".." / "new.png")]) == 0  # fmt: skip
    capsys.readouterr()
    assert (tmp_path / "new.png").stat().st_size > 1000
