"""Safe writes: only where asked, only over what may be replaced, whole files or none.

A leaf module (it imports only :mod:`mlplab.errors` and :mod:`mlplab.files.limits`): the run
directory, the config, the downloads, the pages and the exports all write through it.

- :func:`atomic_write` / :func:`atomic_file` write a temporary sibling (created new, never
  through a link planted at its name), then rename it into place, so readers see whole files
  or none. The temporary file is removed on any failure, and every failure the machine can
  cause (no space left, a read-only disk, no permission, a name too long) becomes one
  :class:`~mlplab.errors.WriteError` line naming the path and the disk.
- Whatever the caller, they never replace anything but a regular file (a FIFO, a device, a
  folder or a symbolic link at the path is refused), and with ``overwrite=False`` nothing at
  all (the rename is a hard link, which fails on an existing name: no race with another
  writer).
- :func:`check_not_inside_owned` refuses an output folder that is, or lies inside, a run
  directory or a sweep folder (``predict --show``).
- :func:`check_target` is the rule for an output the user names (``--out``): it refuses, in
  one line saying what is there and what to do, anything that is not a regular file and any
  file of a run directory (even with ``--force``), and an existing file unless it may be
  replaced (``--force``, or an earlier output of the same command).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import WriteError
from .limits import file_kind

__all__ = [
    "CARD",
    "EXPORT_RECORD",
    "RUN_FILES",
    "RUN_FILE_NAMES",
    "SWEEP_FILES",
    "atomic_file",
    "atomic_write",
    "check_folder",
    "check_not_inside_owned",
    "check_outputs",
    "check_target",
    "describe",
    "is_figure",
    "is_page",
    "is_run_directory",
    "os_errors",
    "owner",
    "owning_folder",
    "temporary_sibling",
    "write_bytes_atomic",
    "write_error",
    "write_text_atomic",
]

# A run directory's own files, in the order run.py names them (CONFIG, DATASET, ...: it takes
# them from here, so the two never drift). No output replaces one, even with --force: after
# that the run no longer loads or resumes.
RUN_FILE_NAMES = (
    "config.yaml",
    "dataset.json",
    "metrics.jsonl",
    "model.safetensors",
    "model.json",
    "summary.json",
    "checkpoint.pt",
    "train.log",
    "rejection.safetensors",  # the rejection's constants (mlplab.trust.rejection)
)
RUN_FILES = frozenset(RUN_FILE_NAMES)
# Written into a run directory by one command each, which alone may replace it there: the
# parity record of `export` (beside any exported file) and the model card of `card`.
EXPORT_RECORD, CARD = "export.json", "README.md"
RUN_MARKER = "config.yaml"  # with one more of RUN_FILES beside it, the folder is a run
# A sweep folder's own files (sweep.py): the study database, recipe and search space.
SWEEP_FILES = frozenset({"sweep.json", "base.yaml", "space.yaml", "study.db"})
SWEEP_MARKER = "sweep.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# how mlplab's figures say so: a PNG text chunk "Software" beginning "mlplab" (base.save_png),
# written before the image data
FIGURE_MARK = b"tEXtSoftware\x00mlplab"
PAGE_START, PAGE_MARK = b"<!DOCTYPE html>", b"Made by mlplab"  # how page.py's pages begin, end
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it: put it straight back
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where O_EXCL alone is enough


# ----- what is at a path ----------------------------------------------------------------
def describe(path: str | os.PathLike[str]) -> str | None:
    """What is at ``path`` in words ("a FIFO (named pipe)", "a file of 1,234 bytes"), without
    following a final symbolic link; None when nothing is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # e.g. ENAMETOOLONG, ENOTDIR: reported where it is written
        return f"unreadable ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        try:
            pointed = file_kind(os.stat(path).st_mode, os.stat(path).st_size)
        except OSError:
            pointed = "nothing (a dangling link)"
        return f"a symbolic link to {target} ({pointed})"
    return file_kind(st.st_mode, st.st_size)


def _is_regular(path: Path) -> bool:
    """A regular file itself, not a link to one (a replace would lose the link)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_run_directory(folder: str | os.PathLike[str]) -> bool:
    """``folder`` holds a run: its ``config.yaml`` and at least one more of :data:`RUN_FILES`."""
    folder = Path(folder)
    return (folder / RUN_MARKER).is_file() and any(
        (folder / name).exists() for name in RUN_FILES - {RUN_MARKER}
    )


def owner(path: str | os.PathLike[str]) -> tuple[str, Path] | None:
    """("run directory", folder) when ``path`` is one of a run's own files, ("sweep folder",
    folder) for a sweep's; else None."""
    path = Path(path)
    folder = path.parent
    if path.name in RUN_FILES and is_run_directory(folder):
        return "run directory", folder
    if path.name in SWEEP_FILES and (folder / SWEEP_MARKER).is_file():
        return "sweep folder", folder
    return None


def owning_folder(folder: str | os.PathLike[str]) -> tuple[str, Path] | None:
    """("run directory", run) when ``folder`` is a run directory or lies anywhere inside one
    (``RUN/figures``), ("sweep folder", sweep) likewise for a sweep; else None. The folder
    need not exist: its nearest existing ancestor decides (symbolic links resolved, so a link
    into a run counts as the run)."""
    folder = _resolved(Path(folder))
    for candidate in (folder, *folder.parents):
        try:
            if is_run_directory(candidate):
                return "run directory", candidate
            if (candidate / SWEEP_MARKER).is_file():
                return "sweep folder", candidate
        except OSError:  # unreadable, a name too long: not a run we can see
            continue
    return None


def check_not_inside_owned(folder: str | os.PathLike[str], *, flag: str | None = "--out") -> Path:
    """Return ``folder`` unless it is, or lies inside, a run directory or a sweep folder (an
    output there would mix with the run's own files, and a later run's own name could be
    taken): then one WriteError line saying where to write instead."""
    folder = Path(folder)
    owned = owning_folder(folder)
    if owned is None:
        return folder
    kind, where = owned
    inside = "is" if where == _resolved(folder) else "is inside"
    other = f"choose another {flag}" if flag else "write somewhere else"
    raise _refused(
        folder,
        f"refusing to write into {folder}: it {inside} the {kind} {where}, not a place for "
        f"other files; {other} outside it",
    )


def _resolved(folder: Path) -> Path:
    """``folder`` absolute, its links resolved (as written when they loop)."""
    try:
        return folder.resolve()
    except (OSError, RuntimeError):
        return folder.absolute()


def is_figure(path: str | os.PathLike[str]) -> bool:
    """``path`` is a PNG figure mlplab wrote (an earlier one: what a figure output may
    replace); a PNG of anyone else's, a photo or a training image, is not."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(PNG_SIGNATURE) and FIGURE_MARK in head


def is_page(path: str | os.PathLike[str]) -> bool:
    """``path`` is a page mlplab wrote (its footer says so): one a page output may replace."""
    try:
        with open(path, "rb") as f:
            if f.read(len(PAGE_START)) != PAGE_START:
                return False
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            return PAGE_MARK in f.read()
    except OSError:
        return False


def _climbs_out_of_missing(path: Path) -> Path | None:
    """The first missing folder that a '..' in ``path`` climbs out of, or None.

    ``RUN/zz/../summary.json`` is nothing to ``lstat`` while ``zz`` does not exist, so every
    check saw an empty place; a writer that makes the parent folders then wrote
    ``RUN/summary.json``."""
    current = Path(path.anchor) if path.anchor else Path(".")
    for part in path.parts[1:] if path.anchor else path.parts:
        if part == ".." and not current.exists():
            return current
        current = current / part
    return None


# ----- the rule for a user-named output -----------------------------------------------------
def check_target(
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    replaceable: bool | Callable[[Path], bool] = False,
    ours_is: str = "",
    flag: str | None = "--out",
    force_flag: str | None = "--force",
) -> Path:
    """Return ``path`` if an output may be written there; else raise a one-line WriteError.

    - nothing there: yes;
    - not a regular file (a folder, FIFO, device, socket, or a symbolic link, whatever it
      points to): never, even with ``force``;
    - a file of a run directory (:data:`RUN_FILES` beside the run's ``config.yaml``) or of a
      sweep folder (:data:`SWEEP_FILES`), there or not: never;
    - a regular file: when ``force`` (the user said so), or ``replaceable`` (True, or a test
      of the path: e.g. "this is our own earlier output").

    ``flag`` is the option that named the path, ``force_flag`` the one that allows replacing
    (None: the command has none) and ``ours_is`` what a replaceable file would be ("an
    earlier mlplab page"); they only shape the message.
    """
    path = Path(path)
    other = f"choose another {flag}" if flag else "write somewhere else"
    always = f", even with {force_flag}" if force_flag else ""
    if (missing := _climbs_out_of_missing(path)) is not None:
        raise _refused(
            path,
            f"refusing to write {path}: its '..' climbs out of {missing}, which does not exist "
            f"(the write would make it, then land beside it); name the path without '..' through "
            f"a missing folder: {other}",
        )
    with os_errors(path, other):  # a name too long, a file where a folder should be: one line
        owned = owner(path)
        try:
            os.lstat(path)
        except FileNotFoundError:
            there = None
        else:
            there = describe(path)
    if owned is not None:  # present or not: a run's weights.json must not appear either
        raise _refused(
            path,
            f"refusing to write {path}: {path.name} is one of the own files of the {owned[0]} "
            f"{owned[1]}, which no output may replace or create{always}: {other}",
        )
    if there is None:
        return path
    if not _is_regular(path):
        link_fix = (
            " (remove the link, or name its target)" if there.startswith("a symbolic") else ""
        )
        raise _refused(
            path,
            f"refusing to write {path}: it is {there}; mlplab replaces only regular files"
            f"{always}{link_fix}: {other}",
        )
    if force or (replaceable(path) if callable(replaceable) else replaceable):
        return path
    how = f"pass {force_flag} to replace it, or {other}" if force_flag else other
    not_ours = f" and is not {ours_is}" if ours_is else ""
    raise _refused(
        path, f"refusing to replace {path}: it already exists ({there}){not_ours}; {how}"
    )


def _refused(path: Path, message: str) -> WriteError:
    """The refusal of an output path: a WriteError with EEXIST, like the OS would give."""
    return WriteError(message, errno.EEXIST, str(path), "File exists")


def check_folder(
    folder: str | os.PathLike[str], *, flag: str | None = "--out", link_ok: bool = True
) -> Path:
    """Return ``folder`` if outputs may go into it: absent (to be made) or a folder; refuse a
    file, FIFO or device there, and with ``link_ok=False`` a symbolic link (a folder the user
    did not name, e.g. ``figures/`` inside theirs, must not send writes elsewhere)."""
    folder = Path(folder)
    other = f"choose another {flag}" if flag else "write somewhere else"
    with os_errors(folder, other):
        try:
            st = os.stat(folder) if link_ok else os.lstat(folder)
        except FileNotFoundError:
            return folder
    if not stat.S_ISDIR(st.st_mode):
        raise WriteError(
            f"refusing to write into {folder}: it is {describe(folder)}, not a folder; {other}",
            errno.ENOTDIR,
            str(folder),
            "Not a directory",
        )
    return folder


def check_outputs(
    main: str | os.PathLike[str],
    extras: Iterable[str | os.PathLike[str]] = (),
    *,
    ours: Callable[[Path], bool],
    ours_is: str,
    flag: str | None = "--out",
) -> None:
    """Check an output made of several files before writing any: ``main`` (a page, a report)
    and ``extras`` written with it (its figures), in folders the user named (or made for).

    ``main`` may replace only a file that ``ours`` recognizes (an earlier one); an extra only
    when ``main`` was there and ours (they were written together). Folders must be folders
    (the extras' own, e.g. ``figures/``, not links); no file may be anything but a regular
    file, nor a run's or sweep's own file. Raises a one-line WriteError.
    """
    main = Path(main)
    check_folder(main.parent, flag=flag)
    extras = [Path(e) for e in extras]
    for folder in dict.fromkeys(e.parent for e in extras):
        if folder != main.parent:
            check_folder(folder, flag=flag, link_ok=False)
    check_target(main, replaceable=ours, ours_is=ours_is, flag=flag, force_flag=None)
    earlier = _is_regular(main) and ours(main)
    for extra in extras:
        check_target(
            extra,
            replaceable=earlier,
            ours_is=f"part of an earlier {main.name} (none is beside it)",
            flag=flag,
            force_flag=None,
        )


# ----- writing ---------------------------------------------------------------------------
def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A unique hidden name beside ``path`` that fits in a file name (long names are cut)."""
    tail = f".{secrets.token_hex(6)}{suffix}"
    room = NAME_MAX - 1 - len(tail.encode())  # the leading dot, then the tail
    stem = path.name.encode()[:room].decode(errors="ignore")  # never half a character
    return path.with_name(f".{stem}{tail}")


def _create_new(tmp: Path) -> int:
    """Create ``tmp`` (it must not exist; a link there is not followed): an open fd."""
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str], *, overwrite: bool = True, fix: str = "write somewhere else"
) -> Iterator[BinaryIO]:
    """A binary file to write; on leaving the block it becomes ``path`` (see module doc).

    Writers that take a file object (``torch.save``, ``torch.jit.save``) should use this
    rather than :func:`atomic_write`: writing to a path, their C++ writer aborts the whole
    process on a full disk instead of raising. Given a file, torch's zip writer still raises
    a RuntimeError ("unexpected pos") over the OSError of a full disk: the OSError is what
    is reported (one WriteError line naming the disk).
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    created = False
    try:
        with os_errors(path, fix):
            fd = _create_new(tmp)
            created = True
            try:
                with os.fdopen(fd, "wb") as file:
                    yield file
            except RuntimeError as exc:
                # torch's zip writer, closing the archive after a write failed (a full disk,
                # or Ctrl-C inside the write), raises "[enforce fail ...] unexpected pos" over
                # that OSError or KeyboardInterrupt: raise the cause
                cause = _hidden_cause(exc)
                if cause is None:
                    raise
                raise cause from None
            _install(tmp, path, overwrite)
    finally:
        if created:  # never remove what someone else put at that name
            with contextlib.suppress(OSError):
                tmp.unlink()


def _hidden_cause(exc: BaseException) -> OSError | KeyboardInterrupt | None:
    """The OSError or KeyboardInterrupt an exception was raised while handling (its context
    chain), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (OSError, KeyboardInterrupt)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], None],
    *,
    overwrite: bool = True,
    fix: str = "write somewhere else",
) -> None:
    """Call ``write(tmp)`` for a temporary sibling of ``path``, then rename it into place.

    The sibling is created (empty, new) before ``write`` opens it. On any failure (a full
    disk, an exception in ``write``) it is removed and ``path`` is left as it was; an OSError
    becomes a one-line :class:`WriteError` ending in ``fix``. Never replaces anything but a
    regular file; with ``overwrite=False``, nothing at all.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    created = False
    try:
        with os_errors(path, fix):
            os.close(_create_new(tmp))
            created = True
            write(tmp)
            _install(tmp, path, overwrite)
    finally:
        if created:  # never remove what someone else put at that name
            with contextlib.suppress(OSError):
                tmp.unlink()


def _install(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give ``tmp`` the name ``path``: replacing only a regular file, or nothing."""
    os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would; some writers (safetensors) use 0600
    if not overwrite:
        try:
            os.link(tmp, path)  # fails if anything has the name: never replaces, no race
            return
        except FileExistsError:
            check_target(path, flag=None, force_flag=None)  # the one-line refusal
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise  # hard links unsupported there (FAT, some network disks): check, rename
        check_target(path, flag=None, force_flag=None)
    elif describe(path) is not None and not _is_regular(path):
        check_target(path, force=True, flag=None, force_flag=None)  # the one-line refusal
    os.replace(tmp, path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename."""
    write_bytes_atomic(path, text.encode(), overwrite=overwrite)


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    with atomic_file(path, overwrite=overwrite) as file:
        file.write(data)


# ----- the machine said no: one line -----------------------------------------------------------
@contextlib.contextmanager
def os_errors(path: str | os.PathLike[str], fix: str = "write somewhere else") -> Iterator[None]:
    """Turn an OSError raised in the block (about writing ``path``) into one WriteError line."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(exc, path, fix) from None


def write_error(
    exc: OSError, path: str | os.PathLike[str], fix: str = "write somewhere else"
) -> WriteError:
    """The one-line WriteError for an OSError met while writing ``path``; ends in ``fix``."""
    path = Path(path)
    code = exc.errno or 0
    why = exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        where, free = _disk(path)
        quota = " (or your quota on it is used up)" if code != errno.ENOSPC else ""
        message = (
            f"no space left on device writing {path}: the disk mounted at {where} has {free} "
            f"free{quota}; free space on that disk or {fix}"
        )
    elif code == errno.EROFS:
        message = f"cannot write {path}: the disk mounted at {_disk(path)[0]} is read-only; {fix}"
    elif code in (errno.EACCES, errno.EPERM):
        message = (
            f"cannot write {path}: permission denied ({path.parent} or the file is not writable "
            f"by this user, or is immutable); {fix}"
        )
    elif code == errno.ENAMETOOLONG:
        longest = max((len(part.encode()) for part in path.parts), default=0)
        message = (
            f"cannot write {path}: a name in it is too long for the file system (the longest "
            f"has {longest} bytes; {NAME_MAX} is the usual limit); {fix}"
        )
    elif code == errno.ENOENT:
        message = (
            f"cannot write {path}: the folder {path.parent} does not exist; create it or {fix}"
        )
    elif code == errno.ENOTDIR:
        message = f"cannot write {path}: part of {path.parent} is a file, not a folder; {fix}"
    else:
        message = f"cannot write {path}: {why}; {fix}"
    return WriteError(message, code, str(path), why)


def _disk(path: Path) -> tuple[Path, str]:
    """The mount point holding ``path`` and its free space, in words."""
    folder = path.parent.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    mount = folder
    with contextlib.suppress(OSError):
        while not os.path.ismount(mount) and mount != mount.parent:
            mount = mount.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return mount, "an unknown amount"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if free >= scale:
            return mount, f"{free / scale:,.1f} {unit}"
    return mount, f"{free} bytes"
