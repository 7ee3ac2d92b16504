"""A newcomer's first hour, from the wheel (issue 24, item 3).

``python -m build`` makes the sdist and the wheel; the wheel is installed, not editable, into a
fresh venv that cannot see this checkout; then, in an empty folder with no repository around,
the newcomer's commands run with that venv's ``mlplab`` and ``python``: ``mlplab demo`` (what
``make demo`` runs), the README's tour (train, evaluate, report, predict, export, serve and
its drawing page) and the README's Python snippet. So a packaging or docs regression fails
here: a data file the wheel lost (the drawing page), a module or dependency that only the
checkout provides, a console script that does not start.

Bounded by default (about a minute of CPU): the venv's dependencies are linked in from this
environment (exactly the closure the wheel declares, see ``fresh_install``), MNIST is a tiny
stand-in (``standins``) and the demo trains one epoch. ``MLPLAB_FIRST_HOUR`` widens it:

- ``full``: the demo as ``make demo`` runs it (the preset's 10 epochs on the real MNIST in
  ``MLPLAB_DATA_DIR``, skipped with the reason when absent);
- ``index``: ``full``, and the venv's dependencies installed by pip from the package index with
  ``constraints.txt`` (minutes; needs the index).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import real_data
from fresh_install import ROOT, build_wheel, fresh_venv, source_files
from standins import write_mnist_stand_in

pytest.importorskip("build", reason="the wheel is built by python -m build: pip install build")

MODE = os.environ.get("MLPLAB_FIRST_HOUR", "bounded")
if MODE not in ("bounded", "full", "index"):
    raise ValueError(f"MLPLAB_FIRST_HOUR must be bounded, full or index; got {MODE!r}")
EXTRAS = {"all"}  # the tour needs report, export and serve; a newcomer installs everything
COMMAND_TIMEOUT = 600  # s: one command; the slowest here (report) takes ~30 s of CPU
# Files a newcomer's commands read from the installed package, not from Python code alone:
PACKAGE_DATA = {
    "mlplab/serve/static/index.html": "the drawing page of `mlplab serve`",
    "mlplab/report/page.py": "the report's style and layout (inline: report.html is one file)",
    "mlplab/config/presets.py": "the presets (`--preset tutorial`): Python, no YAML files",
}
SNIPPET = re.compile(r"^```python\n(?P<code>.*?)^```", re.M | re.S)
SKIP_MARKER = re.compile(r"<!--\s*doc:.*\bskip=")


@dataclass
class Install:
    sdist: Path
    wheel: Path
    sources: list[str]  # the files of mlplab the wheel was built from, as wheel paths
    bin: Path
    site: Path
    env: dict[str, str]  # a newcomer's shell: the venv first on PATH, the tiny MNIST
    home: Path  # folders for the commands: far from this checkout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("first-hour")
    sdist, wheel, checkout = build_wheel(root / "build")
    mode = "index" if MODE == "index" else "linked"
    bin_dir, site = fresh_venv(root / "venv", wheel, EXTRAS, mode=mode)
    write_mnist_stand_in(root / "data", root / "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPLAB_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(bin_dir.parent),
        MLPLAB_DATA_DIR=str(root / "data"),
        MLPLAB_CACHE_DIR=str(root / "cache"),
        MLPLAB_THREADS="1",  # tests share the machine
        MLPLAB_PROGRESS="0",
        MPLBACKEND="Agg",
        BROWSER="true",  # `--open` opens nothing
    )
    home = root / "home"
    home.mkdir()
    assert ROOT not in home.parents
    return Install(sdist, wheel, source_files(checkout), bin_dir, site, env, home)


def run(install: Install, folder: Path, *argv: str, **env: str) -> str:
    """Run a newcomer's command in ``folder``; its output (stdout then stderr), or fail."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        argv, cwd=folder, env={**install.env, **env}, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"`{' '.join(argv)}` exited {proc.returncode}:\n{output[-4000:]}"
    return output


def run_directory(output: str, folder: Path) -> Path:
    """The run a training command reports (its last line says where)."""
    found = re.findall(r"run directory: (\S+)", output)
    assert found, f"no 'run directory:' line in:\n{output[-2000:]}"
    path = folder / found[-1]
    assert (path / "summary.json").is_file(), f"{path}: no summary.json"
    return path


# --- the package ----------------------------------------------------------------------------


def test_the_wheel_holds_every_file_of_the_package(installed: Install) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = archive.namelist()
    in_wheel = sorted(n for n in names if n.startswith("mlplab/"))
    missing = sorted(set(installed.sources) - set(in_wheel))
    assert not missing, f"files of src/mlplab the wheel lacks (MANIFEST.in?): {missing}"
    stray = sorted(set(in_wheel) - set(installed.sources))
    assert not stray, f"files in the wheel that src/mlplab does not hold: {stray}"
    for name, what in PACKAGE_DATA.items():
        assert name in names, f"the wheel lacks {name}: {what}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(installed.wheel) as archive:
        assert "mlplab = mlplab.cli:entry" in archive.read(entry_points).decode()
    with tarfile.open(installed.sdist) as archive:  # the wheel was built from this sdist
        in_sdist = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"src/{name}" for name in PACKAGE_DATA} <= in_sdist


def test_mlplab_comes_from_the_wheel_not_the_checkout(installed: Install) -> None:
    probe = (
        "import json, sys, mlplab, importlib.metadata as m, importlib.resources as r\n"
        "from mlplab.config.presets import PRESETS\n"
        "d = m.distribution('mlplab')\n"
        "print(json.dumps({'file': mlplab.__file__, 'path': sys.path,\n"
        "    'version': d.version, 'direct_url': d.read_text('direct_url.json'),\n"
        "    'page': (r.files('mlplab.serve') / 'static' / 'index.html').is_file(),\n"
        "    'presets': sorted(PRESETS)}))\n"
    )
    seen = json.loads(run(installed, installed.home, "python", "-c", probe))
    assert Path(seen["file"]).is_relative_to(installed.site), seen["file"]
    assert not any(p.startswith(str(ROOT)) for p in seen["path"]), seen["path"]
    assert seen["direct_url"] is None or "editable" not in seen["direct_url"]
    assert seen["page"], "the drawing page is not in the installed package"
    assert "tutorial" in seen["presets"]
    assert (installed.bin / "mlplab").is_file(), "pip made no `mlplab` console script"


# --- the first hour -------------------------------------------------------------------------


def make_demo_command() -> list[str]:
    """The command the Makefile's ``demo`` target runs after ``install``, with ``mlplab`` for
    ``$(BIN)/mlplab`` (the venv's script, first on the newcomer's PATH)."""
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no demo target"
    (line,) = recipe[1].splitlines()
    words = shlex.split(line.strip())
    assert words[0] == "$(BIN)/mlplab", f"make demo runs {line.strip()!r}: teach this test"
    return ["mlplab", *words[1:]]


def test_make_demo(installed: Install) -> None:
    """What `make demo` runs, `mlplab demo`: training, then evaluation, then where the run is."""
    folder = installed.home / "demo"
    if MODE == "bounded":  # the tiny MNIST, one epoch
        output = run(installed, folder, *make_demo_command(), "--epochs", "1")
    else:  # as `make demo` runs it: the preset's epochs on the real MNIST
        data = real_data("mnist")
        output = run(installed, folder, *make_demo_command(), MLPLAB_DATA_DIR=str(data))
    assert re.search(r"evaluate: test accuracy [\d.]+% on [\d,]+ mnist images", output), output
    run_directory(output, folder)


def test_the_readme_tour(installed: Install) -> None:
    """The README's commands in a newcomer's order, each on the run the first one made."""
    folder = installed.home / "tour"
    trained = run(installed, folder, "mlplab", "train", "--preset", "tutorial", "--epochs", "2")
    run_dir = run_directory(trained, folder).relative_to(folder)
    assert "test     loss" in trained

    evaluated = run(installed, folder, "mlplab", "evaluate", str(run_dir))
    assert re.search(r"loss [\d.]+.*accuracy [\d.]+%", evaluated), evaluated

    bound = ["--tsne-samples", "100"] if MODE == "bounded" else []  # t-SNE: a third of it
    reported = run(installed, folder, "mlplab", "report", str(run_dir), *bound)
    page = folder / reported.split()[0]
    assert page == folder / run_dir / "report.html"
    text = page.read_text()
    assert text.lower().startswith("<!doctype html>") and "<style>" in text
    assert text.count("data:image/png;base64,") >= 10, "the figures are not inline"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page reaches out"
    assert (folder / run_dir / "analysis.json").is_file()

    _draw_a_one(folder / "one.png")
    predicted = run(installed, folder, "mlplab", "predict", str(run_dir), "one.png")
    assert re.match(r"one\.png\s+\d\s+[\d.]+%", predicted), predicted

    exported = run(installed, folder, "mlplab", "export", str(run_dir), "--format", "onnx")
    assert (folder / run_dir / "model.onnx").is_file()
    assert "parity: max |onnx - eager|" in exported

    _serve(installed, folder, run_dir)


def test_the_readme_python_snippet(installed: Install) -> None:
    """Every ```python block of the README, as written, in a fresh interpreter of the venv."""
    readme = (ROOT / "README.md").read_text()
    blocks = [
        m["code"]
        for m in SNIPPET.finditer(readme)
        if not SKIP_MARKER.search(readme[: m.start()].rstrip().rsplit("\n", 1)[-1])
    ]
    assert blocks, "README.md holds no ```python block"
    folder = installed.home / "python"
    for i, code in enumerate(blocks):
        script = folder / f"snippet_{i}.py"
        folder.mkdir(exist_ok=True)
        script.write_text(code)
        run(installed, folder, "python", script.name)


# --- helpers --------------------------------------------------------------------------------


def _draw_a_one(path: Path) -> None:
    """A dark vertical stroke on white paper, photographed as a newcomer would send it."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).line([(100, 30), (100, 170)], fill="black", width=14)
    image.save(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(install: Install, folder: Path, run_dir: Path) -> None:
    """`mlplab serve RUN`: the drawing page at /, a prediction of JSON pixels."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            ["mlplab", "serve", str(run_dir), "--port", str(port)], cwd=folder,
            env=install.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            assert server.poll() is None, f"serve exited {server.returncode}:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                    assert json.load(reply)["status"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline, f"serve never answered:\n{log.read_text()}"
                time.sleep(0.3)
        with urllib.request.urlopen(f"{url}/", timeout=30) as reply:
            page = reply.read().decode()
        assert "<title>mlplab: draw a digit</title>" in page
        pixels = json.dumps({"pixels": [[0.0] * 28] * 28}).encode()
        request = urllib.request.Request(
            f"{url}/predict", data=pixels, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 200
            assert json.load(reply), "an empty prediction"
    finally:
        server.terminate()
        server.wait(timeout=30)
