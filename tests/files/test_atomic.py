"""The write rules of mlplab.files.atomic: what an output may replace, temporary files, one-line errors.

Disks that are really full or read-only are in tests/hostile/test_hostile_writes.py (they need root).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

import mlplab.files.atomic
import mlplab.run.directory
import mlplab.sweep
from mlplab.errors import MlplabError, WriteError
from mlplab.files.atomic import (
    RUN_FILES,
    SWEEP_FILES,
    atomic_write,
    check_folder,
    check_outputs,
    check_target,
    is_figure,
    is_page,
    owner,
    temporary_sibling,
    write_bytes_atomic,
    write_error,
    write_text_atomic,
)


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def make_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("config.yaml", "model.json", "model.safetensors", "metrics.jsonl"):
        (folder / name).write_text(name)
    return folder


# ----- the list of protected files stays sweep.py's (run.py takes its names from atomic) ---
def test_protected_names_are_the_sweep_files() -> None:
    s = mlplab.sweep
    assert {s.SWEEP_JSON, s.BASE, s.SPACE, s.STUDY_DB} == SWEEP_FILES


# ----- check_target -------------------------------------------------------------------------
def test_nothing_there_is_fine_and_an_existing_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    assert check_target(out) == out
    out.write_bytes(b"precious")
    with pytest.raises(
        WriteError,
        match=r"^refusing to replace .*model\.pt: it already exists \(a file of 8 bytes\); "
        r"pass --force to replace it, or choose another --out$",
    ) as caught:
        check_target(out)
    assert caught.value.errno == errno.EEXIST and isinstance(caught.value, OSError | MlplabError)
    assert check_target(out, force=True) == out
    assert check_target(out, replaceable=lambda p: p.read_bytes() == b"precious") == out
    with pytest.raises(WriteError, match=r"a file of 8 bytes\) and is not an earlier page; choose"):
        check_target(out, replaceable=is_page, ours_is="an earlier page", force_flag=None)


def test_never_anything_but_a_regular_file_even_with_force(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    target = tmp_path / "target"
    target.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for path, what in ((fifo, r"a FIFO \(named pipe\)"), (folder, "a folder"),
                       (link, r"a symbolic link to .*target \(a file of 1 bytes\)"),
                       (dangling, r"a symbolic link to .*nowhere \(nothing \(a dangling link\)\)"),
                       (Path("/dev/null"), "a character device")):  # fmt: skip
        link_fix = r" \(remove the link, or name its target\)" if path.is_symlink() else ""
        with pytest.raises(
            WriteError,
            match=rf"^refusing to write {path}: it is {what}; mlplab replaces only regular files, "
            rf"even with --force{link_fix}: choose another --out$",
        ):
            check_target(path, force=True, replaceable=True)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink() and target.read_text() == "x"


def test_never_a_run_or_sweep_file_even_with_force(tmp_path: Path) -> None:
    run = make_run(tmp_path / "runs" / "r")
    for name in sorted(RUN_FILES):
        with pytest.raises(WriteError, match=rf"^refusing to write {run / name}: {name} is one of "
                           rf"the own files of the run directory {run}, which no output may "
                           "replace or create, even with --force: choose another --out$"):  # fmt: skip
            check_target(run / name, force=True, replaceable=True)  # there (4) or not (4)
    # through '..' and a folder link too: the rule looks at the folder, not the spelling
    (tmp_path / "alias").symlink_to(run)
    (tmp_path / "runs" / "x").mkdir()
    dotted = tmp_path / "runs" / "x" / ".." / "r"
    assert owner(dotted / "model.json") == ("run directory", dotted)
    with pytest.raises(WriteError, match="model.safetensors is one of the own files of the run"):
        check_target(tmp_path / "alias" / "model.safetensors", force=True)
    # a lone config.yaml is somebody's config, not a run: the ordinary rule
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.yaml").write_text("a: 1")
    assert owner(tmp_path / "cfg" / "config.yaml") is None
    assert check_target(tmp_path / "cfg" / "config.yaml", force=True)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    (sweep / "study.db").write_bytes(b"SQLite")
    with pytest.raises(WriteError, match=r"study\.db is one of the own files of the sweep folder"):
        check_target(sweep / "study.db", force=True)


def test_a_name_too_long_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        WriteError,
        match=r"^cannot write .*: a name in it is too long for the file system \(the longest has "
        r"300 bytes; 255 is the usual limit\); choose another --out$",
    ):
        check_target(tmp_path / ("a" * 300) / "x.pt")


def test_folders(tmp_path: Path) -> None:
    assert check_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match=r"^refusing to write into .*file: it is a file of 1 bytes, "
                       "not a folder; choose another --out$"):  # fmt: skip
        check_folder(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path / "new", target_is_directory=True)
    (tmp_path / "new").mkdir()
    assert check_folder(tmp_path / "link")  # the folder the user named may be a link
    with pytest.raises(WriteError, match="it is a symbolic link to"):
        check_folder(tmp_path / "link", link_ok=False)  # one inside it (figures/) may not


def test_outputs_replace_only_their_own_earlier_files(tmp_path: Path) -> None:
    page, figure = tmp_path / "out" / "page.html", tmp_path / "out" / "figures" / "a.png"
    check_outputs(page, [figure], ours=is_page, ours_is="an earlier mlplab page")  # nothing there
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"\x89PNG\r\n\x1a\nmine")  # the user's own figure, no page beside it
    with pytest.raises(WriteError, match=r"a\.png: it already exists .* and is not part of an "
                       r"earlier page\.html \(none is beside it\); choose another --out$"):  # fmt: skip
        check_outputs(page, [figure], ours=is_page, ours_is="an earlier mlplab page")
    page.write_text("<html>my notes</html>")
    with pytest.raises(WriteError, match=r"page\.html: .* and is not an earlier mlplab page"):
        check_outputs(page, [figure], ours=is_page, ours_is="an earlier mlplab page")
    page.write_text("<!DOCTYPE html>\n<html>...<footer>Made by mlplab 1.0</footer></html>\n")
    check_outputs(page, [figure], ours=is_page, ours_is="an earlier mlplab page")  # ours: fine
    assert not is_figure(figure) and not is_figure(page)  # a PNG, but not one mlplab wrote
    figure.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\x10tEXtSoftware\0mlplab 1.0")
    assert is_figure(figure)


# ----- atomic_write ----------------------------------------------------------------------------
def test_atomic_write_never_replaces_a_fifo_or_a_link(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(WriteError, match=r"^refusing to write .*fifo: it is a FIFO"):
        write_text_atomic(fifo, "data")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and leftovers(tmp_path) == []
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(WriteError, match="it is a symbolic link to"):
        write_bytes_atomic(tmp_path / "link", b"data")
    assert (tmp_path / "link").is_symlink() and target.read_text() == "keep"


def test_a_link_planted_at_the_temporary_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    monkeypatch.setattr(mlplab.files.atomic.secrets, "token_hex", lambda n: "0" * 2 * n)
    planted = temporary_sibling(tmp_path / "out.txt")
    planted.symlink_to(victim)  # what a hostile user of a shared folder could do
    with pytest.raises(WriteError, match=r"^cannot write .*out\.txt: File exists"):
        write_text_atomic(tmp_path / "out.txt", "data")
    with pytest.raises(WriteError, match=r"^cannot write .*out\.txt: File exists"):
        atomic_write(tmp_path / "out.txt", lambda tmp: tmp.write_text("data"))
    assert victim.read_text() == "keep" and not (tmp_path / "out.txt").exists()
    assert planted.is_symlink()  # and what is not ours is not removed either


def test_no_temporary_file_is_left_on_any_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        atomic_write(out, fail)
    assert out.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_full_disk_is_one_line_naming_the_disk(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"

    def full(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(
        WriteError,
        match=rf"^no space left on device writing {out}: the disk mounted at /\S* has [\d.,]+ "
        r"\w+ free; free space on that disk or choose another --out$",
    ) as caught:
        atomic_write(out, full, fix="choose another --out")
    assert caught.value.errno == errno.ENOSPC and caught.value.strerror == "No space left on device"
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EROFS, r"^cannot write .*x: the disk mounted at /\S* is read-only; fix it$"),
        (
            errno.EACCES,
            r"^cannot write .*x: permission denied \(.* or the file is not writable by "
            r"this user, or is immutable\); fix it$",
        ),
        (errno.ENOENT, r"^cannot write .*x: the folder .* does not exist; create it or fix it$"),
        (errno.EIO, r"^cannot write .*x: Input/output error; fix it$"),
    ],
)
def test_each_refusal_of_the_system_is_one_line(tmp_path: Path, code: int, message: str) -> None:
    error = write_error(OSError(code, os.strerror(code)), tmp_path / "x", "fix it")
    assert isinstance(error, MlplabError) and error.errno == code
    assert str(error) == error.message and "\n" not in str(error)
    with pytest.raises(WriteError, match=message):
        raise error


def test_a_long_name_still_has_room_for_its_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / ("é" * 120 + ".pt")  # 245 bytes: the temporary name is cut, not the file's
    write_bytes_atomic(out, b"ok")
    assert out.read_bytes() == b"ok" and leftovers(tmp_path) == []
    assert len(temporary_sibling(out).name.encode()) <= 255


def test_overwrite_false_never_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_text_atomic(out, "first", overwrite=False)
    with pytest.raises(WriteError, match=r"^refusing to replace .*out: it already exists"):
        write_text_atomic(out, "second", overwrite=False)
    assert out.read_text() == "first" and leftovers(tmp_path) == []
    write_text_atomic(out, "second")  # overwrite=True: a regular file is replaced
    assert out.read_text() == "second"


def test_the_umask_applies(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "f", "x")
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o666 & ~mlplab.files.atomic._UMASK


def test_ctrl_c_inside_torchs_zip_writer_stays_a_ctrl_c(tmp_path: Path) -> None:
    """torch's zip writer turns a KeyboardInterrupt raised inside its write into
    RuntimeError('[enforce fail ...] unexpected pos'): Ctrl-C during a checkpoint was an
    'internal error' instead of exit 130 and the resume command."""
    import torch

    class Interrupted:
        def __init__(self, file) -> None:
            self.file, self.written = file, 0

        def write(self, data) -> int:
            self.written += len(data)
            if self.written > 1000:
                raise KeyboardInterrupt
            return self.file.write(data)

        def flush(self) -> None:
            self.file.flush()

    target = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt), mlplab.files.atomic.atomic_file(target) as file:
        torch.save({"w": torch.zeros(10_000)}, Interrupted(file))
    assert list(tmp_path.iterdir()) == []  # no checkpoint, no temporary file
