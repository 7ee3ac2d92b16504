"""mlplab as a newcomer gets it: a wheel built by ``python -m build``, installed into a fresh venv.

:func:`build_wheel` builds the sdist and the wheel from a copy of the checkout (so the
checkout gets no ``build/`` or ``*.egg-info``, and a stale ``build/lib`` cannot leak into the
wheel), the wheel from the sdist as ``python -m build`` does. :func:`fresh_venv` makes a venv
that does not see the checkout, installs the wheel there (not editable), and gives it its
dependencies one of two ways:

- ``linked`` (the default, seconds): the distributions the wheel declares (``Requires-Dist``
  with the extras asked for, followed recursively) are linked in from the environment running
  the tests, top-level entries of their ``RECORD`` only, so the new venv holds exactly the
  declared closure and an undeclared runtime import fails there;
- ``index`` (minutes, needs the package index): ``pip install`` resolves them from the index
  with ``constraints.txt``, as a user's ``pip install`` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "src")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info")
BUILD_TIMEOUT = 180  # s: the sdist and the wheel, without an isolated environment ~5 s
INSTALL_TIMEOUT = 900  # s: only the 'index' mode downloads anything


def _run(argv: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(map(str, argv))}` exited {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def source_files(root: Path = ROOT) -> list[str]:
    """Every file of the package in the checkout, as its path inside a wheel (mlplab/...)."""
    package = root / "src"
    return sorted(
        str(path.relative_to(package))
        for path in (package / "mlplab").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo")
    )


def build_wheel(out: Path, root: Path = ROOT) -> tuple[Path, Path, Path]:
    """(sdist, wheel, the copy they were built from) made by ``python -m build`` from a copy
    of ``root``'s sources (compare the wheel with the copy: the checkout may change meanwhile).

    ``--no-isolation``: the build backend (setuptools) comes from this environment instead
    of a download; what goes into the files is the same."""
    copy = out / "checkout"
    copy.mkdir(parents=True)
    for name in SOURCES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=JUNK)
        elif source.exists():
            shutil.copy2(source, copy / name)
    dist = out / "dist"
    _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(copy)],
        BUILD_TIMEOUT,
    )
    (sdist,) = dist.glob("mlplab-*.tar.gz")
    (wheel,) = dist.glob("mlplab-*.whl")
    return sdist, wheel, copy


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    return message.get_all("Requires-Dist") or []


def closure(requires: list[str], extras: set[str], own: str = "mlplab") -> list[str]:
    """The installed distributions that ``requires`` (with ``extras``) needs, recursively.

    Raises AssertionError naming a declared requirement that this environment lacks or holds
    at a version outside the declared range."""
    seen: dict[str, str] = {}
    todo: list[tuple[str, set[str]]] = [(line, extras) for line in requires]
    while todo:
        line, wanted = todo.pop()
        requirement = Requirement(line)
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": e}) for e in (wanted or {""})):
            continue
        name = canonicalize_name(requirement.name)
        if name == own:  # mlplab[report,export,...] inside its own 'all' extra
            todo += [(line, set(requirement.extras)) for line in requires]
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{line}: declared, but not installed here") from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise AssertionError(f"{line}: declared, but {dist.version} is installed here")
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen[key] = name
        todo += [(line, set(requirement.extras)) for line in dist.requires or []]
    return sorted(set(seen.values()))


def link_distributions(names: list[str], site_packages: Path) -> None:
    """Link each distribution's top-level entries (packages, modules, .libs, .dist-info)."""
    for name in names:
        dist = metadata.distribution(name)
        if dist.files is None:
            raise AssertionError(f"{name}: no RECORD, so its files cannot be linked")
        tops = {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}
        for top in sorted(tops):
            target = Path(str(dist.locate_file(top)))
            link = site_packages / top
            if target.exists() and not link.exists():
                link.symlink_to(target)


def fresh_venv(
    folder: Path, wheel: Path, extras: set[str], mode: str = "linked"
) -> tuple[Path, Path]:
    """(bin folder, site-packages) of a new venv holding the wheel (not editable) and its
    dependencies (``linked`` or from the ``index``, see the module's docstring)."""
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(folder)], 120)
    bin_dir = folder / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            60,
        ).stdout.strip()
    )
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    spec = f"{wheel}[{','.join(sorted(extras))}]" if extras else str(wheel)
    if mode == "linked":
        link_distributions(closure(wheel_requirements(wheel), extras), site)
        _run([*pip, "install", "--no-deps", "--no-index", "--quiet", str(wheel)], 120)
        _run([*pip, "check"], 120)  # every declared requirement is met by what was linked
    elif mode == "index":
        constraints = ROOT / "constraints.txt"
        _run([*pip, "install", "--quiet", "-c", str(constraints), spec], INSTALL_TIMEOUT)
    else:
        raise ValueError(f"mode must be 'linked' or 'index'; got {mode!r}")
    return bin_dir, site
